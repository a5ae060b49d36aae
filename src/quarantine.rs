//! The life of a quarantined item: listed while open, then retried (put back
//! through the pipeline once its cause is fixed, e.g. a peer's key added) or
//! dismissed (who and why recorded). Files are never deleted: a dismissed item
//! stays in quarantine/ for the record.

use crate::error::{Error, Result};
use crate::node::Node;
use crate::set::SetName;
use crate::store::{QuarantineKind, QuarantineState, Quarantined};
use std::path::{Path, PathBuf};

/// Who runs the command: the login behind sudo, else the user.
pub fn operator() -> String {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

fn item(node: &Node, id: i64) -> Result<Quarantined> {
    node.store.quarantine_item(id)?.ok_or_else(|| {
        Error::Other(format!(
            "隔离区没有第 {id} 项 / no quarantine item {id}: see `sedx quarantine list --all`"
        ))
    })
}

fn open_item(node: &Node, id: i64) -> Result<Quarantined> {
    let q = item(node, id)?;
    if q.state != QuarantineState::Open {
        return Err(Error::Other(format!(
            "quarantine item {id} is already {} ({} by {})",
            q.state.as_str(),
            q.closed_at.as_deref().unwrap_or("-"),
            q.closed_by.as_deref().unwrap_or("-")
        )));
    }
    Ok(q)
}

/// A free name for `file` in `dir` (NAME, NAME.1, ...): nothing is overwritten.
fn free_name(dir: &Path, stem: &str, ext: &str) -> PathBuf {
    let mut path = dir.join(format!("{stem}{ext}"));
    let mut n = 0;
    while path.exists() {
        n += 1;
        path = dir.join(format!("{stem}.{n}{ext}"));
    }
    path
}

/// Put an item back through the pipeline; returns where it went. The next pass
/// takes it as if it had just arrived or been dropped.
pub fn retry(node: &Node, id: i64, by: &str) -> Result<String> {
    let q = open_item(node, id)?;
    let place = PathBuf::from(&q.place);
    let went = match q.kind {
        QuarantineKind::ReceivedSet | QuarantineKind::OutgoingSet => {
            let name = SetName::new(&q.name)?;
            if !name.marker(&place).exists() {
                return Err(Error::Other(format!(
                    "set {} is no longer in {}",
                    name,
                    place.display()
                )));
            }
            let dest = match (&q.kind, q.peer.as_deref()) {
                (QuarantineKind::ReceivedSet, Some(peer)) => {
                    let cfg = node.cfg.peer(peer).ok_or_else(|| {
                        Error::Other(format!(
                            "peer {peer} is no longer configured: add it to sedx.toml first"
                        ))
                    })?;
                    node.store
                        .end_attempt(&format!("in:{peer}"), name.as_str())?;
                    node.layout.inbound_of(cfg)
                }
                _ => node.layout.outbound.clone(),
            };
            if name.marker(&dest).exists() {
                return Err(Error::Other(format!(
                    "a set named {name} already waits in {}",
                    dest.display()
                )));
            }
            crate::set::move_into(&name, &place, &dest)?;
            dest
        }
        QuarantineKind::Drop => {
            let from = place.join(&q.name);
            let stem = q.name.strip_suffix(".xml").unwrap_or(&q.name);
            let to = free_name(&node.layout.outbound, stem, ".xml");
            crate::fsx::rename(&from, &to)?;
            node.store.end_attempt("out", &q.name)?;
            to
        }
        QuarantineKind::RefusedRecords => {
            // The refused records, fixed by the operator, go out as a new drop.
            let from = place.join(&q.name);
            let stem = q.name.strip_suffix(".rejected.xml").unwrap_or(&q.name);
            let to = free_name(&node.layout.outbound, &format!("{stem}.retry"), ".xml");
            crate::fsx::rename(&from, &to)?;
            to
        }
        QuarantineKind::ImportRefused => {
            return Err(Error::Other(format!(
                "records refused on import are loaded again with `sedx import {}` once fixed; then dismiss this item",
                place.join(&q.name).display()
            )))
        }
        QuarantineKind::UnsafeName | QuarantineKind::NotPulled => {
            return Err(Error::Other(format!(
                "a {} item cannot be retried here: ask {} to send the batch again (under a safe name, or smaller), then dismiss this item",
                q.kind.as_str(),
                q.peer.as_deref().unwrap_or("the peer")
            )))
        }
    };
    let note = format!("put back into {}", went.display());
    node.store
        .close_quarantine(id, QuarantineState::Retried, by, &note)?;
    tracing::info!(id, by, "{note}");
    Ok(note)
}

/// Close an item without retrying it; the files stay.
pub fn dismiss(node: &Node, id: i64, by: &str, reason: &str) -> Result<()> {
    open_item(node, id)?;
    if reason.trim().is_empty() {
        return Err(Error::Other(
            "say why with --reason (it is kept with the item)".into(),
        ));
    }
    node.store
        .close_quarantine(id, QuarantineState::Dismissed, by, reason)?;
    tracing::info!(id, by, reason, "quarantine item dismissed");
    Ok(())
}

/// One line per item.
pub fn line(q: &Quarantined) -> String {
    let closed = match q.state {
        QuarantineState::Open => String::new(),
        _ => format!(
            " [{} {} by {}: {}]",
            q.state.as_str(),
            q.closed_at
                .as_deref()
                .map(crate::store::shanghai_text)
                .unwrap_or_default(),
            crate::text::field(q.closed_by.as_deref().unwrap_or("-")),
            crate::text::field(q.note.as_deref().unwrap_or("-"))
        ),
    };
    format!(
        "{:>4} {} {} {} {}: {} {}{closed}",
        q.id,
        crate::store::shanghai_text(&q.at),
        q.kind.as_str(),
        q.peer.as_deref().unwrap_or("outbound"),
        crate::text::field(&q.name),
        q.code,
        crate::text::field(&q.detail)
    )
}

/// Everything about one item: its line, where its files are, the reasons file.
pub fn show(node: &Node, id: i64) -> Result<String> {
    let q = item(node, id)?;
    let mut out = format!("{}\n  folder: {}\n", line(&q), q.place);
    if let Ok(rd) = std::fs::read_dir(&q.place) {
        let stem = q
            .name
            .strip_suffix(".rejected.xml")
            .or(q.name.strip_suffix(".xml"))
            .unwrap_or(&q.name)
            .to_string();
        let mut files: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|f| f.starts_with(&stem))
            .collect();
        files.sort();
        for f in &files {
            out.push_str(&format!("  file: {}\n", crate::text::field(f)));
            if f.ends_with(".rejected.txt") || f.ends_with(".reason.txt") {
                let path = Path::new(&q.place).join(f);
                let text = crate::set::read_small(&path, 64 << 10).unwrap_or_default();
                for l in String::from_utf8_lossy(&text).lines().take(50) {
                    out.push_str(&format!("    {}\n", crate::text::field(l)));
                }
            }
        }
    }
    out.push_str(match (q.state, q.kind) {
        (QuarantineState::Open, QuarantineKind::ImportRefused) => {
            "  next: fix the records, `sedx import` them, then `sedx quarantine dismiss ID --reason ...`\n"
        }
        (QuarantineState::Open, QuarantineKind::UnsafeName | QuarantineKind::NotPulled) => {
            "  next: ask the peer to send again, then `sedx quarantine dismiss ID --reason ...`\n"
        }
        (QuarantineState::Open, _) => {
            "  next: fix the cause (a key, a peer's setting, the file), then `sedx quarantine retry ID`; or `sedx quarantine dismiss ID --reason ...`\n"
        }
        _ => "",
    });
    Ok(out)
}

//! The quarantine owns every refusal: a received or outgoing set, a dropped
//! file, the refused records of a drop or an import, a set with an unsafe name,
//! a set too large to pull. Each is put aside in quarantine/ with a reason file
//! and a row, and then lives on: listed while open, retried (put back through
//! the pipeline once its cause is fixed, e.g. a peer's key added) or dismissed
//! (who and why recorded). Files are never deleted.

use crate::context::error::{Code, Error, Reject, Result};
use crate::context::node::Node;
use crate::store::{QuarantineKind, QuarantineState, Quarantined};
use crate::wire::set::{self, SetName};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Write a reason file next to a quarantined item: its code, then the detail.
fn write_reason(dir: &Path, stem: &str, code: &str, detail: &str) -> Result<()> {
    let text = format!("{code}\n{detail}\n");
    let path = dir.join(format!("{stem}.reason.txt"));
    crate::context::files::create_dir_all(dir)?;
    crate::context::files::write_atomic(&path, text.as_bytes())
}

/// Put a set aside: from a peer (quarantine/<peer>/) or found in outbound/ not
/// sealed by this node (quarantine/outbound/), in a `dup-N/` below when a set of
/// that name is there, with NAME.reason.txt. Returns the folder it is in.
pub fn set_aside(
    node: &Node,
    peer: Option<&str>,
    name: &SetName,
    from: &Path,
    rej: &Reject,
) -> Result<PathBuf> {
    let (qdir, kind) = match peer {
        Some(p) => (node.layout.quarantine.join(p), QuarantineKind::ReceivedSet),
        None => (
            node.layout.quarantine.join("outbound"),
            QuarantineKind::OutgoingSet,
        ),
    };
    let to = set::destination(name, from, &qdir);
    write_reason(&to, name.as_str(), rej.code.as_str(), &rej.detail)?;
    set::move_into(name, from, &to)?;
    node.store.log_quarantine(
        kind,
        peer,
        name.as_str(),
        rej.code,
        &rej.detail,
        &to.display().to_string(),
    )?;
    Ok(to)
}

/// A set whose name is unsafe, as it will be answered.
pub struct UnsafeName {
    /// The name, printable.
    pub shown: String,
    /// A safe tag its files were renamed to.
    pub tag: String,
    pub detail: String,
}

/// Put aside a set whose name is unsafe, as it is (only the last component of a
/// name is ever used), its files renamed to a tag in quarantine/<peer>/unsafe-names/.
pub fn unsafe_name_aside(
    node: &Node,
    peer: &str,
    dir: &Path,
    marker: &std::ffi::OsStr,
) -> Result<UnsafeName> {
    use sha2::Digest;
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let stem = set::marker_stem(marker.as_bytes()).unwrap_or(marker.as_bytes());
    let shown = set::describe(std::ffi::OsStr::from_bytes(stem));
    let tag = hex::encode(&sha2::Sha256::digest(marker.as_bytes())[..8]);
    let qdir = node.layout.quarantine.join(peer).join("unsafe-names");
    let detail = format!(
        "set name {shown:?} is not a safe name (UTF-8, at most 200 bytes, no control characters)"
    );
    tracing::warn!(peer, name = %shown, "quarantined: unsafe set name");
    write_reason(&qdir, &tag, Code::SetName.as_str(), &detail)?;
    for ext in [set::PAYLOAD, set::SIG, set::MARKER, set::MARKER_SM3] {
        let mut file = stem.to_vec();
        file.extend_from_slice(ext.as_bytes());
        let from = dir.join(std::ffi::OsString::from_vec(file));
        if std::fs::symlink_metadata(&from).is_ok() {
            crate::context::files::create_dir_all(&qdir)?;
            crate::context::files::rename(&from, &qdir.join(format!("{tag}{ext}")))?;
        }
    }
    node.store.log_quarantine(
        QuarantineKind::UnsafeName,
        Some(peer),
        &shown,
        Code::SetName,
        &detail,
        &qdir.display().to_string(),
    )?;
    Ok(UnsafeName { shown, tag, detail })
}

/// A set too large to pull: noted (it is removed from the hub's queue).
pub fn not_pulled(
    node: &Node,
    peer: &str,
    name: &SetName,
    rej: &Reject,
    remote: &str,
) -> Result<()> {
    tracing::warn!(peer, set = %name, code = rej.code.as_str(), detail = %rej.detail, "not pulled");
    node.store.log_quarantine(
        QuarantineKind::NotPulled,
        Some(peer),
        name.as_str(),
        rej.code,
        &rej.detail,
        &format!("{remote} (at the hub, removed)"),
    )
}

/// An invalid drop never leaves: quarantine/NAME.xml (or dup-N/) with NAME.reason.txt.
pub fn file_aside(node: &Node, path: &Path, rej: &Reject) -> Result<()> {
    let file = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("unnamed.xml");
    let stem = file.strip_suffix(".xml").unwrap_or(file);
    tracing::warn!(file = %crate::context::text::field(file), code = rej.code.as_str(), detail = %rej.detail, "dropped file refused");
    let mut dir = node.layout.quarantine.clone();
    let mut n = 0;
    while dir.join(file).exists() {
        n += 1;
        dir = node.layout.quarantine.join(format!("dup-{n}"));
    }
    write_reason(&dir, stem, rej.code.as_str(), &rej.detail)?;
    crate::context::files::rename(path, &dir.join(file))?;
    node.store.log_quarantine(
        QuarantineKind::Drop,
        None,
        file,
        rej.code,
        &rej.detail,
        &dir.display().to_string(),
    )
}

/// One record of a drop refused by the rules, with its XML to fix and drop again.
#[derive(Debug, Clone)]
pub struct RefusedRecord {
    /// Its position in the drop (0-based).
    pub index: u64,
    pub key: String,
    pub reason: Reject,
    pub xml: String,
}

/// Refused records counted per reason code.
pub fn counts_by_code(refused: &[RefusedRecord]) -> BTreeMap<String, u64> {
    let mut by: BTreeMap<String, u64> = BTreeMap::new();
    for r in refused {
        *by.entry(r.reason.code.as_str().to_string()).or_default() += 1;
    }
    by
}

/// "REC-OWNER×2, REC-FIELD×1".
pub fn counts_text(by: &BTreeMap<String, u64>) -> String {
    by.iter()
        .map(|(c, n)| format!("{c}×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Keep a drop's refused records: a batch of them to fix and drop again
/// (NAME.rejected.xml), and a reason per record (NAME.rejected.txt). A name
/// already there gets a number: nothing earlier is overwritten.
pub fn records_aside(
    node: &Node,
    src_name: &str,
    from: &str,
    refused: &[RefusedRecord],
    kind: QuarantineKind,
) -> Result<()> {
    let Some(first) = refused.first() else {
        return Ok(());
    };
    let how = if kind == QuarantineKind::ImportRefused {
        "on import"
    } else {
        "on the way out"
    };
    let q = &node.layout.quarantine;
    let base = src_name.strip_suffix(".xml").unwrap_or(src_name);
    let mut stem = base.to_string();
    let mut n = 0;
    while q.join(format!("{stem}.rejected.xml")).exists() {
        n += 1;
        stem = format!("{base}.{n}");
    }
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<batch xmlns=\"{}\" from=\"{from}\">\n",
        crate::wire::document::BATCH_NS
    );
    let mut reasons = String::new();
    for r in refused {
        xml.push_str(&r.xml);
        let key = crate::context::text::field(&r.key);
        tracing::warn!(file = src_name, index = r.index, key = %key, code = r.reason.code.as_str(), "record refused {how}: {}", r.reason.detail);
        reasons.push_str(&format!(
            "{}\t{key}\t{}\t{}\n",
            r.index, r.reason.code, r.reason.detail
        ));
    }
    xml.push_str("</batch>\n");
    crate::context::files::write_atomic(
        &q.join(format!("{stem}.rejected.txt")),
        reasons.as_bytes(),
    )?;
    crate::context::files::write_atomic(&q.join(format!("{stem}.rejected.xml")), xml.as_bytes())?;
    node.store.log_quarantine(
        kind,
        None,
        &format!("{stem}.rejected.xml"),
        first.reason.code,
        &format!(
            "{} record(s) of {src_name} refused {how}: {}",
            refused.len(),
            counts_text(&counts_by_code(refused))
        ),
        &q.display().to_string(),
    )
}

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
            if !name.is_complete(&place) {
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
            if name.is_complete(&dest) {
                return Err(Error::Other(format!(
                    "a set named {name} already waits in {}",
                    dest.display()
                )));
            }
            crate::wire::set::move_into(&name, &place, &dest)?;
            dest
        }
        QuarantineKind::Drop => {
            let from = place.join(&q.name);
            let stem = q.name.strip_suffix(".xml").unwrap_or(&q.name);
            let to = free_name(&node.layout.outbound, stem, ".xml");
            crate::context::files::rename(&from, &to)?;
            node.store.end_attempt("out", &q.name)?;
            to
        }
        QuarantineKind::RefusedRecords => {
            // The refused records, fixed by the operator, go out as a new drop.
            let from = place.join(&q.name);
            let stem = q.name.strip_suffix(".rejected.xml").unwrap_or(&q.name);
            let to = free_name(&node.layout.outbound, &format!("{stem}.retry"), ".xml");
            crate::context::files::rename(&from, &to)?;
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
                .map(crate::context::clock::shanghai_text)
                .unwrap_or_default(),
            crate::context::text::field(q.closed_by.as_deref().unwrap_or("-")),
            crate::context::text::field(q.note.as_deref().unwrap_or("-"))
        ),
    };
    format!(
        "{:>4} {} {} {} {}: {} {}{closed}",
        q.id,
        crate::context::clock::shanghai_text(&q.at),
        q.kind.as_str(),
        q.peer.as_deref().unwrap_or("outbound"),
        crate::context::text::field(&q.name),
        q.code,
        crate::context::text::field(&q.detail)
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
            out.push_str(&format!("  file: {}\n", crate::context::text::field(f)));
            if f.ends_with(".rejected.txt") || f.ends_with(".reason.txt") {
                let path = Path::new(&q.place).join(f);
                let text = crate::wire::set::read_small(&path, 64 << 10).unwrap_or_default();
                for l in String::from_utf8_lossy(&text).lines().take(50) {
                    out.push_str(&format!("    {}\n", crate::context::text::field(l)));
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

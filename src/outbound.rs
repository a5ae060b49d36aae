//! The outbound folder: plain batches dropped by any program are validated and
//! sealed with the channel's next sequence number; complete sets are shipped.

use crate::document::{self, BatchHeader, DocKind};
use crate::error::{Code, Error, IoContext, Reject, Result};
use crate::faults::crash_point;
use crate::node::{write_reason, Node, PassReport};
use crate::seal;
use crate::set::{self, SetName};
use crate::ship::Link;
use crate::store::now;
use flate2::bufread::MultiGzDecoder;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Plain XML files in outbound/ that are not being written and not part of a set.
fn dropped_files(dir: &Path) -> Result<Vec<(PathBuf, u64, Option<SystemTime>)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if set::is_temporary(name) || !name.to_ascii_lowercase().ends_with(".xml") {
            continue;
        }
        let meta = entry.metadata().at(entry.path())?;
        if meta.is_file() {
            out.push((entry.path(), meta.len(), meta.modified().ok()));
        }
    }
    out.sort();
    Ok(out)
}

/// Seal every dropped file whose size has stopped changing.
pub fn seal_dropped(node: &mut Node, report: &mut PassReport) -> Result<()> {
    let first = dropped_files(&node.layout.outbound)?;
    if first.is_empty() {
        return Ok(());
    }
    // A file still being written is never picked up: look twice, a settle time apart.
    std::thread::sleep(Duration::from_millis(node.cfg.node.settle_ms));
    let second = dropped_files(&node.layout.outbound)?;
    for (path, size, mtime) in second {
        let settled = first
            .iter()
            .any(|(p, s, m)| *p == path && *s == size && *m == mtime);
        if !settled {
            report.unsettled += 1;
            continue;
        }
        match seal_file(node, &path, false) {
            Ok(name) => {
                report.sealed += 1;
                tracing::info!(file = %path.display(), set = %name, "sealed");
            }
            Err(Error::Rejected(rej)) => {
                quarantine_plain(node, &path, &rej)?;
                report.quarantined += 1;
            }
            Err(e) => report.errors.push(format!("{}: {e}", path.display())),
        }
    }
    Ok(())
}

/// An invalid drop never leaves: it goes to quarantine/ with NAME.reason.txt.
fn quarantine_plain(node: &Node, path: &Path, rej: &Reject) -> Result<()> {
    let file = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("unnamed.xml");
    let stem = file.strip_suffix(".xml").unwrap_or(file);
    tracing::warn!(file, code = rej.code.as_str(), detail = %rej.detail, "dropped file refused");
    let mut dir = node.layout.quarantine.clone();
    let mut n = 0;
    while dir.join(file).exists() {
        n += 1;
        dir = node.layout.quarantine.join(format!("dup-{n}"));
    }
    write_reason(&dir, stem, rej.code.as_str(), &rej.detail)?;
    crate::fsx::rename(path, &dir.join(file))?;
    node.store.log_quarantine(
        None,
        file,
        rej.code,
        &rej.detail,
        &dir.display().to_string(),
    )
}

/// File stems become part of set names: keep them short and harmless.
fn safe_stem(path: &Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("batch");
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    if clean.is_empty() {
        "batch".into()
    } else {
        clean
    }
}

/// Validate and seal one plain batch file into outbound/. The original moves to
/// archive/outbound/ unless `keep_source`.
pub fn seal_file(node: &mut Node, path: &Path, keep_source: bool) -> Result<SetName> {
    let meta = fs::metadata(path).at(path)?;
    if meta.len() > node.cfg.node.max_payload_bytes {
        return Err(Reject::new(
            Code::SetTooLarge,
            format!(
                "{} bytes (limit {})",
                meta.len(),
                node.cfg.node.max_payload_bytes
            ),
        )
        .into());
    }
    let scan = node.schemas.check(path, DocKind::Batch)?;
    let me = node.id().to_string();
    let from = scan.root.get("from").unwrap_or(&me);
    if from != me {
        return Err(Reject::new(
            Code::BatchSender,
            format!("batch says it is from {from:?}; this node is {me:?}"),
        )
        .into());
    }
    let to = match scan.root.get("to") {
        Some(to) => to.to_string(),
        None if node.cfg.peers.len() == 1 => node.cfg.peers[0].id.clone(),
        None => {
            return Err(Reject::new(
                Code::BatchReceiver,
                "batch names no receiver (to) and this node has several peers",
            )
            .into())
        }
    };
    if node.cfg.peer(&to).is_none() {
        return Err(Reject::new(
            Code::BatchReceiver,
            format!("receiver {to:?} is not a peer of this node"),
        )
        .into());
    }
    let src_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let given_id = scan.root.get("id").map(str::to_string);
    let reservation = match node.store.reservation(&src_name, given_id.as_deref())? {
        Some(r) if r.peer == to => r,
        _ => {
            let id = given_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let stem = safe_stem(path);
            node.store.reserve(&src_name, &id, &to, |seq| {
                format!("{me}-{to}-{seq:08}-{stem}")
            })?
        }
    };
    let name = SetName::new(&reservation.set_name)?;
    let header = BatchHeader {
        id: reservation.batch_id.clone(),
        from: me.clone(),
        to: to.clone(),
        seq: reservation.seq.unwrap_or(1),
        created: now(),
        count: scan.records,
    };
    let out = node.layout.outbound.clone();
    let sha = if name.marker(&out).exists() {
        // Sealed before a crash took the rest of this step.
        crate::set::Marker::parse(&fs::read(name.marker(&out)).at(name.marker(&out))?)?.sha256_hex
    } else {
        let attrs = header.attrs();
        seal::seal(
            &out,
            &name,
            &node.key,
            DocKind::Batch.sig_namespace(),
            |w| {
                let input = BufReader::with_capacity(1 << 20, File::open(path).at(path)?);
                document::rewrite_root(input, w, &attrs)
                    .map_err(|e| Error::Other(format!("{}: {e}", path.display())))
            },
        )?
        .sha256_hex()
    };
    crash_point("after-seal");
    if !keep_source {
        let dst_dir = node.layout.archive.join("outbound");
        crate::fsx::create_dir_all(&dst_dir)?;
        let mut dst = dst_dir.join(&src_name);
        let mut n = 0;
        while dst.exists() {
            n += 1;
            dst = dst_dir.join(format!("{n}-{src_name}"));
        }
        crate::fsx::rename(path, &dst)?;
    }
    node.store.mark_sealed(name.as_str(), &sha)?;
    Ok(name)
}

/// Who a sealed set is for, read from its document's root element.
#[derive(Debug, Clone)]
pub struct Routing {
    pub to: String,
    pub kind: DocKind,
    pub batch_id: String,
    pub seq: Option<u64>,
}

pub fn route(name: &SetName, dir: &Path) -> Result<Routing, Reject> {
    let f = File::open(name.payload(dir))
        .map_err(|e| Reject::new(Code::SetMarker, format!("payload: {e}")))?;
    let root = document::peek_root(BufReader::new(MultiGzDecoder::new(BufReader::new(f))))?;
    let to = root
        .get("to")
        .ok_or_else(|| Reject::new(Code::BatchHeader, "document names no receiver"))?
        .to_string();
    let batch_id = match root.kind {
        DocKind::Batch => root.get("id").unwrap_or(name.as_str()).to_string(),
        DocKind::Ack => format!("ack:{}", root.get("batch").unwrap_or(name.as_str())),
    };
    Ok(Routing {
        to,
        kind: root.kind,
        batch_id,
        seq: root.get("seq").and_then(|s| s.parse().ok()),
    })
}

/// Ship every complete set in outbound/ to its peer, one SFTP session per peer.
pub fn ship_all(node: &mut Node, report: &mut PassReport) -> Result<()> {
    let out = node.layout.outbound.clone();
    let mut by_peer: BTreeMap<String, Vec<(SetName, Routing)>> = BTreeMap::new();
    for name in set::complete_sets(&out)? {
        if !name.payload(&out).exists() {
            // Half-moved to sent/ before a crash: finish the move.
            if node
                .store
                .outbox(name.as_str())?
                .is_some_and(|e| e.ship_count > 0)
            {
                set::move_set(&name, &out, &node.layout.sent)?;
            } else {
                report
                    .errors
                    .push(format!("{name}: marker without payload in outbound"));
            }
            continue;
        }
        match route(&name, &out) {
            Ok(r) if node.cfg.peer(&r.to).is_some() => {
                by_peer.entry(r.to.clone()).or_default().push((name, r))
            }
            Ok(r) => report.errors.push(format!(
                "{name}: receiver {:?} is not a configured peer; left in outbound",
                r.to
            )),
            Err(rej) => report
                .errors
                .push(format!("{name}: cannot route: {rej}; left in outbound")),
        }
    }
    for (peer_id, mut sets) in by_peer {
        // Batches in sequence order, acknowledgments first (they unblock the peer).
        sets.sort_by_key(|(_, r)| (r.kind == DocKind::Batch, r.seq));
        let Some(peer) = node.cfg.peer(&peer_id).cloned() else {
            continue;
        };
        let login_key = node
            .layout
            .resolve(peer.key.as_ref().unwrap_or(&node.cfg.node.login_key));
        let link = match Link::open(&peer, &login_key) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(peer = %peer_id, error = %e, "cannot reach peer; sets stay queued");
                report.errors.push(e.to_string());
                continue;
            }
        };
        for (name, routing) in sets {
            if let Err(e) = link.upload_set(&name, &out) {
                tracing::error!(peer = %peer_id, set = %name, error = %e, "upload failed; set stays queued");
                report.errors.push(e.to_string());
                break;
            }
            crash_point("after-upload");
            let kind = match routing.kind {
                DocKind::Batch => "batch",
                DocKind::Ack => "ack",
            };
            node.store.record_shipped(
                name.as_str(),
                &routing.batch_id,
                kind,
                &peer_id,
                routing.seq,
            )?;
            set::move_set(&name, &out, &node.layout.sent)?;
            report.shipped += 1;
            tracing::info!(peer = %peer_id, set = %name, "shipped");
        }
    }
    Ok(())
}

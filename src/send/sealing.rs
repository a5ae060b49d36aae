//! Sealing a drop: one set per peer, with the channel's next sequence number,
//! the original archived once done (a restart reuses the reservations).

use super::sift::{sift_checked, Mode};
use crate::context::clock::now;
use crate::context::error::{Code, IoContext, Reject, Result};
use crate::context::faults::crash_point;
use crate::context::node::Node;
use crate::context::quarantine;
use crate::wire::document::{self, BatchHeader, DocKind};
use crate::wire::seal;
use crate::wire::set::SetName;
use quick_xml::events::{BytesDecl, BytesStart, Event};
use quick_xml::Writer;
use std::fs::{self, File};
use std::path::Path;

/// Validate a plain batch file, apply the rules to its records, and seal what may
/// go into one set per peer in outbound/. The original moves to archive/outbound/
/// unless `keep_source`.
pub fn seal_file(node: &mut Node, path: &Path, keep_source: bool) -> Result<Vec<SetName>> {
    // One read of the dropped file, into a private UTF-8 copy that the XSD check
    // and the record reader both read: what is checked is what is sent.
    let (copy, tag) = take_copy(node, path)?;
    let work = copy.path();
    // The copy is checked (well-formed, no DOCTYPE, then the XSD) on the
    // validator's thread while its records are sifted here.
    let root = crate::wire::validate::peek_root_file(work, DocKind::Batch)?;
    let pending = node.validator.submit(work, DocKind::Batch);
    let me = node.id().to_string();
    let from = root.get("from").unwrap_or(&me);
    let to = root.get("to").map(str::to_string);
    let wrong = if from != me {
        Some(Reject::new(
            Code::BatchSender,
            format!("batch says it is from {from:?}; this node is {me:?}"),
        ))
    } else {
        to.as_ref()
            .filter(|to| node.cfg.peer(to).is_none())
            .map(|to| {
                Reject::new(
                    Code::BatchReceiver,
                    format!("receiver {to:?} is not a peer of this node"),
                )
            })
    };
    if let Some(rej) = wrong {
        pending.wait()?; // an invalid file is refused as invalid first
        return Err(rej.into());
    }
    let src_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let mode = if node.store.drop_seen(&tag)? {
        Mode::Replay
    } else {
        Mode::Send
    };
    let sifted = sift_checked(node, work, to.as_deref(), &tag, mode, pending)?;
    quarantine::records_aside(
        node,
        &src_name,
        &me,
        &sifted.refused,
        crate::store::QuarantineKind::RefusedRecords,
    )?;
    let given_id = root
        .get("id")
        .filter(|_| sifted.parts.len() == 1)
        .map(str::to_string);
    let stem = safe_stem(path);
    let mut names = Vec::new();
    for (peer, part) in &sifted.parts {
        let reservation = match node
            .store
            .reservation(&src_name, peer, given_id.as_deref())?
        {
            Some(r) => r,
            None => {
                let id = given_id
                    .clone()
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                let dropped = crate::context::clock::modified(path);
                node.store
                    .reserve(&src_name, &id, peer, dropped.as_deref(), |seq| {
                        format!("{me}-{peer}-{seq:08}-{stem}")
                    })?
            }
        };
        let name = SetName::new(&reservation.set_name)?;
        let header = BatchHeader {
            id: reservation.batch_id.clone(),
            from: me.clone(),
            to: peer.clone(),
            seq: reservation.seq.unwrap_or(1),
            created: now(),
            count: part.count,
        };
        let out = node.layout.outbound.clone();
        let sha = if name.is_complete(&out) {
            // Sealed before a crash took the rest of this step.
            crate::wire::suite::sha256_file(&name.payload(&out))?
        } else {
            let fragment = part.fragment.clone();
            seal::seal(
                &out,
                &name,
                node.sealer(peer)?,
                DocKind::Batch,
                node.cfg.node.gzip_level,
                |w| {
                    let mut xw = Writer::new(&mut *w);
                    xw.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
                        .at(&fragment)?;
                    let mut root = BytesStart::new("batch");
                    root.push_attribute(("xmlns", document::BATCH_NS));
                    for (k, v) in header.attrs() {
                        root.push_attribute((k.as_str(), v.as_str()));
                    }
                    xw.write_event(Event::Start(root)).at(&fragment)?;
                    w.write_all(b"\n").at(&fragment)?;
                    let mut frag = File::open(&fragment).at(&fragment)?;
                    std::io::copy(&mut frag, w).at(&fragment)?;
                    w.write_all(b"</batch>\n").at(&fragment)?;
                    Ok(())
                },
            )?
            .sha256_hex()
        };
        names.push((name, sha));
    }
    crash_point("after-seal");
    if !keep_source {
        let dst_dir = node.layout.archive.join("outbound");
        crate::context::files::create_dir_all(&dst_dir)?;
        let mut dst = dst_dir.join(&src_name);
        let mut n = 0;
        while dst.exists() {
            n += 1;
            dst = dst_dir.join(format!("{n}-{src_name}"));
        }
        crate::context::files::rename(path, &dst)?;
    }
    // Only now is the drop done: until here a restart reuses the reservations.
    for (name, sha) in &names {
        node.store.mark_sealed(name.as_str(), sha)?;
    }
    for part in sifted.parts.values() {
        let _ = fs::remove_file(&part.fragment); // our scratch file
    }
    Ok(names.into_iter().map(|(n, _)| n).collect())
}

/// Copy a dropped file, read once and only if it is a regular file, into the
/// node's private scratch folder as UTF-8 ([`crate::wire::decode`]); with the first
/// 16 hex digits of the SHA-256 of the bytes read (the drop's tag).
pub(super) fn take_copy(
    node: &Node,
    path: &Path,
) -> Result<(crate::context::files::Scratch, String)> {
    let scratch = crate::context::files::Scratch::new_in(&node.layout.work, "drop");
    let (_, sha256) = crate::wire::decode::normalize_file(
        path,
        scratch.path(),
        crate::wire::decode::Limits::default(),
        node.cfg.node.max_expanded_bytes,
    )?;
    Ok((scratch, sha256[..16].to_string()))
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

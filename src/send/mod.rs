//! The outbound folder: plain batches dropped by any program are validated and
//! sealed with the channel's next sequence number; complete sets are shipped.

use crate::context::clock::now;
use crate::context::config::Config;
use crate::context::error::{Code, Error, IoContext, Reject, Result};
use crate::context::faults::crash_point;
use crate::context::node::Node;
use crate::context::quarantine::{self, RefusedRecord};
use crate::context::report::{PassReport, Stage};
use crate::domain::rules::{judge, Direction, Register, Verdict};
use crate::domain::{Record, RecordKind};
use crate::wire::document::RecordReader;
use crate::wire::document::{self, BatchHeader, DocKind};
use crate::wire::seal;
use crate::wire::set::{self, SetName};
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, Event};
use quick_xml::Writer;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter};
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
        // lstat: a link or a special file is listed too, to be refused (never
        // followed, never left unreported).
        let meta = entry.metadata().at(entry.path())?;
        if !meta.is_dir() {
            out.push((entry.path(), meta.len(), meta.modified().ok()));
        }
    }
    out.sort();
    Ok(out)
}

/// The longest settle time waited out inside a pass.
const MAX_SETTLE_WAIT: Duration = Duration::from_secs(2);

/// Seal every dropped file whose size has stopped changing; `after_each` runs
/// after each file is sealed (the node ships it then, while the next is sealed
/// here and the peer already applies the last).
pub fn seal_dropped(
    node: &mut Node,
    report: &mut PassReport,
    mut after_each: impl FnMut(&mut Node, &mut PassReport),
) -> Result<()> {
    let first = dropped_files(&node.layout.outbound)?;
    if first.is_empty() {
        return Ok(());
    }
    // A file still being written is never picked up. It is complete when the
    // watcher saw its writer close it or saw it renamed in, or when it has not
    // changed for the settle time; otherwise look twice, a settle time apart.
    let settle = Duration::from_millis(node.cfg.node.settle_ms);
    let mut complete = std::mem::take(&mut node.complete);
    let quiet =
        |complete: &std::collections::HashSet<PathBuf>, path: &Path, mtime: &Option<SystemTime>| {
            complete.contains(path)
                || mtime
                    .and_then(|m| m.elapsed().ok())
                    .is_some_and(|age| age >= settle)
        };
    // A long settle time is never waited out inside a pass (receiving and the
    // watcher's events would stall): such files are looked at again next pass.
    let (second, looked_twice) = if first.iter().all(|(p, _, m)| quiet(&complete, p, m)) {
        (first.clone(), false)
    } else if settle <= MAX_SETTLE_WAIT {
        std::thread::sleep(settle);
        (dropped_files(&node.layout.outbound)?, true)
    } else {
        (first.clone(), false)
    };
    for (path, size, mtime) in second {
        let settled = quiet(&complete, &path, &mtime)
            || (looked_twice
                && first
                    .iter()
                    .any(|(p, s, m)| *p == path && *s == size && *m == mtime));
        if !settled {
            report.unsettled += 1;
            continue;
        }
        complete.remove(&path);
        // Counted durably before the work: a drop that stops the process (killed
        // for memory, a crash) or fails a few times is put aside.
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let attempts = node.store.begin_attempt("out", &file)?;
        if attempts > crate::receive::MAX_ATTEMPTS {
            let rej = Reject::new(
                Code::SetPoison,
                format!(
                    "sealing this file stopped the node or failed {} times; put aside",
                    attempts - 1
                ),
            );
            crate::context::quarantine::file_aside(node, &path, &rej)?;
            node.store.end_attempt("out", &file)?;
            report.quarantined += 1;
            continue;
        }
        let started = std::time::Instant::now();
        let sealed = seal_file(node, &path, false);
        if !matches!(&sealed, Err(e) if !e.is_environmental() && !matches!(e, Error::Rejected(_))) {
            node.store.end_attempt("out", &file)?;
        }
        match sealed {
            Ok(names) => {
                report.sealed += names.len() as u64;
                let seal_ms = started.elapsed().as_secs_f64() * 1000.0;
                for name in names {
                    tracing::info!(file = %path.display(), set = %name, seal_ms, "sealed");
                }
                after_each(node, report);
            }
            Err(Error::Rejected(rej)) => {
                crate::context::quarantine::file_aside(node, &path, &rej)?;
                report.quarantined += 1;
            }
            Err(e) => report.failed(Stage::Seal, path.display(), &e),
        }
    }
    node.complete = complete;
    Ok(())
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

/// The records of one drop bound for one peer, serialised into a scratch file.
struct Part {
    fragment: PathBuf,
    writer: Option<Writer<BufWriter<File>>>,
    count: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A drop to send.
    Send,
    /// The same drop again after a crash: its effects are stored already.
    Replay,
    /// Records for this node's own register only (nothing is sent).
    Import,
}

/// What the rules made of a dropped file.
#[derive(Default)]
struct Sifted {
    imported: u64,
    parts: BTreeMap<String, Part>,
    /// Records the rules refused, each with its XML (quarantine::records_aside).
    refused: Vec<RefusedRecord>,
    held: u64,
    kept_home: u64,
}

/// Serialise a record as its batch element (fields in schema order). Written
/// directly: element names come from the spec, values are escaped.
pub fn record_xml<W: std::io::Write>(w: &mut Writer<W>, rec: &Record) -> std::io::Result<()> {
    let out = w.get_mut();
    let el = rec.kind.element().as_bytes();
    out.write_all(b"<")?;
    out.write_all(el)?;
    out.write_all(b">")?;
    for (k, v) in &rec.fields {
        out.write_all(b"<")?;
        out.write_all(k.as_bytes())?;
        out.write_all(b">")?;
        out.write_all(quick_xml::escape::escape(v.as_str()).as_bytes())?;
        out.write_all(b"</")?;
        out.write_all(k.as_bytes())?;
        out.write_all(b">")?;
    }
    out.write_all(b"</")?;
    out.write_all(el)?;
    out.write_all(b">\n")
}

/// A record the rules refused, kept with its XML.
fn refused(index: u64, rec: &Record, reason: Reject) -> RefusedRecord {
    RefusedRecord {
        index,
        key: rec.key().to_string(),
        reason,
        xml: record_string(rec),
    }
}

fn record_string(rec: &Record) -> String {
    let mut w = Writer::new(Vec::new());
    let _ = record_xml(&mut w, rec);
    String::from_utf8(w.into_inner()).unwrap_or_default()
}

/// The peers a record goes to: the batch's `to`; for a responsibility decision
/// (R12, R13) every agency it concerns; otherwise the peer that speaks for the
/// record's responsible agency, or the only peer. Empty: nobody speaks for the
/// agencies named, which [`Recipients::Nobody`] lists.
enum Recipients {
    To(Vec<String>),
    Nobody(Vec<String>),
}

fn recipients(
    cfg: &Config,
    to: Option<&str>,
    rec: &Record,
    tx: &mut crate::store::RecordTx<'_>,
) -> Result<Recipients> {
    if let Some(to) = to {
        return Ok(match cfg.peer(to) {
            Some(p) => Recipients::To(vec![p.id.clone()]),
            None => Recipients::Nobody(Vec::new()),
        });
    }
    let agencies: Vec<String> = if is_decision(rec.kind) {
        concerned_agencies(rec, tx)?
    } else {
        match rec
            .get("inspectionAgency")
            .or(rec.get("agency"))
            .or(rec.get("proposedAgency"))
        {
            Some(a) => vec![a.to_string()],
            None => {
                let code = rec
                    .get("registrationCode")
                    .or(rec.get("oldValue"))
                    .unwrap_or_default();
                tx.responsibility(code)?
                    .and_then(|r| r.agency)
                    .into_iter()
                    .collect()
            }
        }
    };
    let mut peers: Vec<String> = Vec::new();
    for a in &agencies {
        if let Some(p) = cfg.peer_for_agency(a) {
            if !peers.contains(&p.id) {
                peers.push(p.id.clone());
            }
        }
    }
    if is_decision(rec.kind) {
        // The agency that proposed or asked (a peer, by the origin of its record).
        let asked = match rec.kind {
            RecordKind::ResponsibilityAssignment => rec
                .get("proposalId")
                .map(|id| (RecordKind::ResponsibilityProposal, id)),
            _ => rec
                .get("requestId")
                .map(|id| (RecordKind::ResponsibilityChangeRequest, id)),
        };
        if let Some((kind, id)) = asked {
            if let Some(origin) = tx.origin_of(kind, id)? {
                if cfg.peer(&origin).is_some() && !peers.contains(&origin) {
                    peers.push(origin);
                }
            }
        }
    }
    if peers.is_empty() && cfg.peers.len() == 1 {
        peers.push(cfg.peers[0].id.clone());
    }
    Ok(if peers.is_empty() {
        Recipients::Nobody(agencies)
    } else {
        Recipients::To(peers)
    })
}

/// A decision of supervision about who inspects a piece of equipment.
fn is_decision(kind: RecordKind) -> bool {
    matches!(
        kind,
        RecordKind::ResponsibilityAssignment | RecordKind::ResponsibilityChange
    )
}

/// Every agency a decision concerns (R12, R13): the one it names (newly
/// responsible, the grantee, or the agency whose temporary change is reclaimed)
/// and, as the register knows them before the decision, the responsible agency
/// and the temporarily responsible one.
fn concerned_agencies(rec: &Record, tx: &mut crate::store::RecordTx<'_>) -> Result<Vec<String>> {
    let mut out: Vec<String> = rec.get("agency").map(str::to_string).into_iter().collect();
    let code = rec.get("registrationCode").unwrap_or_default();
    if let Some(r) = tx.responsibility(code)? {
        for a in [r.agency, r.temporary].into_iter().flatten() {
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    Ok(out)
}

/// Apply the rules to every record of a dropped file (R4, R9, R10, R12-R16):
/// records to send go into one scratch file per peer and into this node's own
/// register; early ones are deferred; non-statutory reports stay home; broken
/// ones are set aside with their reasons. With `replay`, a crash interrupted an
/// earlier sift of this very file: its effects are already stored, so only the
/// scratch files are made again.
///
/// `valid` is asked before anything is committed: the XSD check of the file runs
/// meanwhile on the validator's thread.
fn sift(
    node: &mut Node,
    path: &Path,
    to: Option<&str>,
    tag: &str,
    mode: Mode,
    valid: impl FnOnce() -> Result<()>,
) -> Result<Sifted> {
    let replay = mode == Mode::Replay;
    let mut out = Sifted::default();
    let policy = node.cfg.policy();
    let me = node.cfg.node.role;
    let mut reader = RecordReader::new(BufReader::with_capacity(
        1 << 20,
        File::open(path).at(path)?,
    ));
    // The transaction borrows the store; routing reads a copy of the configuration.
    let cfg = node.cfg.clone();
    let work = node.layout.work.clone();
    let mut tx = node.store.begin_apply()?;
    let mut index = 0u64;
    while let Some((kind, raw)) = reader.next_record()? {
        let i = index;
        index += 1;
        let rec = match crate::receive::apply::read_record(&mut tx, kind, &raw)? {
            Ok(r) => r,
            Err(rej) => {
                let key = raw.key(kind);
                out.refused.push(RefusedRecord {
                    index: i,
                    key,
                    reason: rej,
                    xml: raw_xml(kind, &raw),
                });
                continue;
            }
        };
        let verdict = judge(&policy, Direction::Sending, me, &rec, &mut tx)?;
        if mode == Mode::Import {
            match verdict {
                Verdict::Reject(rej) => {
                    out.refused.push(refused(i, &rec, rej));
                }
                _ => {
                    for d in tx.upsert(&rec, me, "local", None)? {
                        tx.record_discrepancy("local", None, &d)?;
                    }
                    out.imported += 1;
                }
            }
            continue;
        }
        let verdict = match verdict {
            Verdict::KeepHome => {
                tracing::info!(report = %crate::context::text::field(rec.key()), "non-statutory report kept home (R15)");
                out.kept_home += 1;
                continue;
            }
            Verdict::Reject(rej) => {
                out.refused.push(refused(i, &rec, rej));
                continue;
            }
            other => other,
        };
        let peers = match recipients(&cfg, to, &rec, &mut tx)? {
            Recipients::To(peers) => peers,
            Recipients::Nobody(agencies) => {
                let detail = if agencies.is_empty() {
                    "no responsible agency is named or on record, and this node has several peers: give the batch a to=\"PEER\" attribute or the record an agency".to_string()
                } else {
                    format!(
                        "no peer speaks for {}: add agency = \"...\" to that agency's [[peer]] section in sedx.toml",
                        agencies
                            .iter()
                            .map(|a| crate::context::text::field(a).into_owned())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                out.refused
                    .push(refused(i, &rec, Reject::new(Code::RecRoute, detail)));
                continue;
            }
        };
        match verdict {
            Verdict::KeepHome | Verdict::Reject(_) => {}
            Verdict::HoldUntil(due) => {
                tracing::info!(key = %crate::context::text::field(rec.key()), due = %due, "held back until its category's exchange starts (R9)");
                out.held += 1;
                if !replay {
                    for peer in &peers {
                        tx.defer(
                            peer,
                            rec.category().unwrap_or_default(),
                            &due,
                            &record_string(&rec),
                        )?;
                    }
                }
            }
            Verdict::Accept { .. } => {
                if !replay {
                    for d in tx.upsert(&rec, me, "local", None)? {
                        tx.record_discrepancy("local", None, &d)?;
                    }
                }
                // A decision carries the equipment's registration data as the
                // register holds it after the decision, so that an agency that
                // never had the equipment can act on it (R12, R13).
                let companion = if is_decision(rec.kind) {
                    tx.registration_record(rec.get("registrationCode").unwrap_or_default())?
                } else {
                    None
                };
                for peer in &peers {
                    let part = out.parts.entry(peer.clone()).or_insert_with(|| Part {
                        fragment: work
                            .join(format!("out-{tag}-{peer}-{}.frag", std::process::id())),
                        writer: None,
                        count: 0,
                    });
                    if part.writer.is_none() {
                        let f = File::create(&part.fragment).at(&part.fragment)?;
                        part.writer = Some(Writer::new(BufWriter::with_capacity(1 << 20, f)));
                    }
                    // One equipment record per code in a set: a second would be
                    // refused as a duplicate.
                    let equipment = match (&companion, rec.kind) {
                        (Some(c), _) => Some(c),
                        (None, RecordKind::Equipment) => Some(&rec),
                        _ => None,
                    };
                    if let Some(e) = equipment {
                        if !tx
                            .first_in_batch("equipment in part", &format!("{peer}\n{}", e.key()))?
                        {
                            if rec.kind == RecordKind::Equipment {
                                continue;
                            }
                        } else if let (Some(c), Some(w)) = (&companion, part.writer.as_mut()) {
                            record_xml(w, c).at(&part.fragment)?;
                            part.count += 1;
                        }
                    }
                    if let Some(w) = part.writer.as_mut() {
                        record_xml(w, &rec).at(&part.fragment)?;
                    }
                    part.count += 1;
                }
            }
        }
    }
    valid()?; // on failure the transaction is dropped: rolled back
    if mode == Mode::Send {
        tx.bump_counter("kept_home", out.kept_home)?;
        tx.bump_counter("held_back", out.held)?;
        tx.note_drop(tag)?;
    }
    tx.commit_local()?;
    for part in out.parts.values_mut() {
        if let Some(w) = part.writer.take() {
            w.into_inner()
                .into_inner()
                .map_err(|e| e.into_error())
                .at(&part.fragment)?;
        }
    }
    Ok(out)
}

/// [`sift`] while the file is checked on the validator's thread: nothing is
/// committed unless the check passes, and if reading the records failed first,
/// the check's own verdict (with its line and column) is the one given.
fn sift_checked(
    node: &mut Node,
    path: &Path,
    to: Option<&str>,
    tag: &str,
    mode: Mode,
    pending: crate::wire::validate::Pending,
) -> Result<Sifted> {
    let mut check = crate::wire::validate::BackgroundCheck::new(pending);
    let sifted = sift(node, path, to, tag, mode, || {
        check.outcome().map_or(Ok(()), |o| o.map(|_| ()))
    });
    check.settle(sifted)
}

fn raw_xml(kind: crate::domain::RecordKind, raw: &crate::domain::RawRecord) -> String {
    let mut w = Writer::new(Vec::new());
    let _ = w.write_event(Event::Start(BytesStart::new(kind.element())));
    for (k, v) in &raw.fields {
        let _ = document::text_element(&mut w, k, v);
    }
    let _ = w.write_event(Event::End(BytesEnd::new(kind.element())));
    String::from_utf8(w.into_inner()).unwrap_or_default() + "\n"
}

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
                node.store.reserve(&src_name, &id, peer, |seq| {
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
        let sha = if name.marker(&out).exists() {
            // Sealed before a crash took the rest of this step.
            crate::wire::set::Marker::parse(&fs::read(name.marker(&out)).at(name.marker(&out))?)?
                .sha256_hex
        } else {
            let fragment = part.fragment.clone();
            seal::seal(
                &out,
                &name,
                &node.key,
                DocKind::Batch.sig_namespace(),
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
fn take_copy(node: &Node, path: &Path) -> Result<(crate::context::files::Scratch, String)> {
    let scratch = crate::context::files::Scratch::new_in(&node.layout.work, "drop");
    let (_, sha256) = crate::wire::decode::normalize_file(
        path,
        scratch.path(),
        crate::wire::decode::Limits::default(),
        node.cfg.node.max_expanded_bytes,
    )?;
    Ok((scratch, sha256[..16].to_string()))
}

/// What `sedx import` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub applied: u64,
    pub refused: u64,
    /// Refused records per reason code.
    pub by_code: BTreeMap<String, u64>,
}

/// Load a batch file into this node's own register (R3: a side's register before
/// the exchange starts). The rules apply as for sending; nothing is sent.
/// Refused records are kept in quarantine/ with their reasons.
pub fn import_file(node: &mut Node, path: &Path) -> Result<Imported> {
    let (copy, _) = take_copy(node, path)?;
    crate::wire::validate::peek_root_file(copy.path(), DocKind::Batch)?;
    let pending = node.validator.submit(copy.path(), DocKind::Batch);
    let src_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("import.xml")
        .to_string();
    let me = node.id().to_string();
    let sifted = sift_checked(node, copy.path(), None, "import", Mode::Import, pending)?;
    quarantine::records_aside(
        node,
        &src_name,
        &me,
        &sifted.refused,
        crate::store::QuarantineKind::ImportRefused,
    )?;
    Ok(Imported {
        applied: sifted.imported,
        refused: sifted.refused.len() as u64,
        by_code: quarantine::counts_by_code(&sifted.refused),
    })
}

/// Records held back (R9) whose day has come go out as a batch dropped into
/// outbound/ like any other. Rows are marked with the file before it is written
/// and removed after, so a crash neither loses nor doubles them.
pub fn release_due(node: &mut Node, report: &mut PassReport) -> Result<()> {
    let policy = node.cfg.policy();
    let me = node.id().to_string();
    let started = |category: &str| {
        policy
            .start_of(category)
            .is_none_or(|d| d <= policy.today.as_str())
    };
    for (file, peer) in node.store.pending_releases(started)? {
        let path = node.layout.outbound.join(&file);
        let archived = node.layout.archive.join("outbound").join(&file);
        if !path.exists() && !archived.exists() {
            let rows = node.store.deferred_xml(&file)?;
            let mut xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<batch xmlns=\"{}\" from=\"{me}\" to=\"{peer}\">\n",
                document::BATCH_NS
            );
            for r in rows {
                xml.push_str(&r);
            }
            xml.push_str("</batch>\n");
            crate::context::files::write_atomic(&path, xml.as_bytes())?;
            report.released += 1;
        }
        node.store.forget_released(&file)?;
    }
    Ok(())
}

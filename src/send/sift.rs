//! Sifting a drop: every record judged by the rules (R4, R9, R10, R12-R16),
//! routed to the peers concerned, written to one scratch part per peer and to
//! this node's register; refused ones kept for the quarantine.

use crate::context::config::Config;
use crate::context::error::{Code, IoContext, Reject, Result};
use crate::context::node::Node;
use crate::context::quarantine::RefusedRecord;
use crate::domain::rules::{judge, Direction, Register, Verdict};
use crate::domain::{Record, RecordKind};
use crate::wire::document;
use crate::wire::document::record_xml;
use crate::wire::document::RecordReader;
use quick_xml::events::{BytesEnd, BytesStart, Event};
use quick_xml::Writer;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

/// The records of one drop bound for one peer, serialised into a scratch file.
pub(super) struct Part {
    pub(super) fragment: PathBuf,
    pub(super) writer: Option<Writer<BufWriter<File>>>,
    pub(super) count: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// A drop to send.
    Send,
    /// The same drop again after a crash: its effects are stored already.
    Replay,
    /// Records for this node's own register only (nothing is sent).
    Import,
}

/// What the rules made of a dropped file.
#[derive(Default)]
pub(super) struct Sifted {
    pub(super) imported: u64,
    pub(super) parts: BTreeMap<String, Part>,
    /// Records the rules refused, each with its XML (quarantine::records_aside).
    pub(super) refused: Vec<RefusedRecord>,
    pub(super) held: u64,
    pub(super) kept_home: u64,
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
pub(super) fn sift_checked(
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

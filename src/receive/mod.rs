//! Receive: take complete sets from inbound/<peer>/, verify, validate, apply in
//! sequence order, acknowledge, and archive; or quarantine with a reason and a
//! negative acknowledgment.

pub mod apply;
pub mod deliver;

use crate::context::clock::now;
use crate::context::error::{Code, Error, IoContext, Reject, Result};
use crate::context::faults::crash_point;
use crate::context::node::Node;
use crate::context::quarantine::{self, UnsafeName};
use crate::context::report::{PassReport, Stage};
use crate::store::{AckFacts, AckMatch, JournalEntry};
use crate::wire::ack::AckStatus;
use crate::wire::ack::{self, AckDoc, AckWriter};
use crate::wire::document::{BatchHeader, DocKind};
use crate::wire::seal;
use crate::wire::set::{self, SetName};
use crate::wire::suite::PayloadDigest;
use crate::wire::validate;
use crate::wire::verify::{self, Verified};
use apply::Arrival;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::time::{Duration, Instant};

/// How far ahead of the expected sequence number a batch may be held; beyond,
/// it is refused (a far-future number would hold a place forever).
const MAX_AHEAD: u64 = 10_000;

/// What became of one set in this pass.
enum TakeOutcome {
    Done,
    /// Waiting for an earlier sequence number.
    Held(u64),
}

/// A set that has arrived: from which peer, in which folder, under which name.
#[derive(Clone, Copy)]
struct Incoming<'a> {
    peer: &'a str,
    dir: &'a Path,
    name: &'a SetName,
}

/// Process every peer's inbound folder until no held set can move; `after_each`
/// runs after each set is taken (the node ships the acknowledgments made so far
/// from there, so that they leave while a long queue is still being applied).
pub fn receive_all(
    node: &mut Node,
    report: &mut PassReport,
    mut after_each: impl FnMut(&mut Node, &mut PassReport),
) -> Result<()> {
    report_strangers(node, report)?;
    let peers: Vec<(String, std::path::PathBuf)> = node
        .cfg
        .peers
        .iter()
        .map(|p| (p.id.clone(), node.layout.inbound_of(p)))
        .collect();
    for (peer, dir) in peers {
        let mut held: BTreeMap<u64, SetName> = BTreeMap::new();
        let listing = set::list(&dir)?;
        for marker in &listing.unsafe_markers {
            if let Err(e) = quarantine_unsafe(node, &peer, &dir, marker, report) {
                let what = format!("{peer}/{}", set::describe(marker));
                report.failed(Stage::Receive, what, &e);
            }
        }
        for name in listing.sets {
            match take(
                node,
                Incoming {
                    peer: &peer,
                    dir: &dir,
                    name: &name,
                },
                report,
            ) {
                Ok(TakeOutcome::Held(seq)) => {
                    held.insert(seq, name);
                }
                Ok(TakeOutcome::Done) => after_each(node, report),
                Err(e) => report.failed(Stage::Receive, format!("{peer}/{name}"), &e),
            }
        }
        // Sets that were early: take each as soon as its turn comes.
        loop {
            let expected = node.store.expected_seq(&peer)?;
            let Some(name) = held.remove(&expected) else {
                break;
            };
            if let Err(e) = take(
                node,
                Incoming {
                    peer: &peer,
                    dir: &dir,
                    name: &name,
                },
                report,
            ) {
                report.failed(Stage::Receive, format!("{peer}/{name}"), &e);
                break;
            }
            after_each(node, report);
        }
        report.held += held.len() as u64;
    }
    Ok(())
}

/// Folders of inbound/ that belong to no configured peer, with the complete sets
/// in each: nothing there is read, but the operator must hear of it (a peer set
/// up on one side only, or someone uploading where no one listens).
pub fn strangers(node: &Node) -> Result<Vec<(String, usize)>> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(&node.layout.inbound) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).at(&node.layout.inbound),
    };
    for entry in rd {
        let entry = entry.at(&node.layout.inbound)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if node.cfg.peer(&name).is_some() || name.starts_with('.') {
            continue;
        }
        let sets = if entry.file_type().at(entry.path())?.is_dir() {
            set::list(&entry.path())?.sets.len()
        } else {
            0
        };
        out.push((name, sets));
    }
    out.sort();
    Ok(out)
}

fn report_strangers(node: &mut Node, report: &mut PassReport) -> Result<()> {
    let found = strangers(node)?;
    for (name, sets) in &found {
        report.strangers += *sets as u64;
        // Said again whenever the count changes, not on every pass.
        if node.strangers_seen.get(name) != Some(sets) {
            tracing::warn!(folder = %crate::context::text::field(name), sets,
                "inbound/ holds a folder of no configured peer; its sets are not read (add the peer to sedx.toml or remove the folder)");
        }
    }
    node.strangers_seen = found.into_iter().collect();
    Ok(())
}

/// How many times work on one set may stop the process, or fail, before the
/// set is put aside (SET-POISON) so that it blocks nothing else.
pub const MAX_ATTEMPTS: u64 = 3;

/// Take one set, counting the attempt durably first: a set that has stopped the
/// node (killed for memory, a crash) or failed [`MAX_ATTEMPTS`] times is put
/// aside instead of tried again.
fn take(node: &mut Node, inc: Incoming<'_>, report: &mut PassReport) -> Result<TakeOutcome> {
    let Incoming { peer, name, .. } = inc;
    let place = format!("in:{peer}");
    let attempts = node.store.begin_attempt(&place, name.as_str())?;
    let poisoned = attempts > MAX_ATTEMPTS;
    let taken = if poisoned {
        put_aside(node, inc, attempts - 1, report)
    } else {
        take_set(node, inc, report)
    };
    let keep_count = match &taken {
        // A failure of this set (not of the disk or the store) counts.
        Err(e) => !e.is_environmental(),
        // Put aside but held for its turn: it is put aside again then.
        Ok(TakeOutcome::Held(_)) => poisoned,
        Ok(TakeOutcome::Done) => false,
    };
    if !keep_count {
        node.store.end_attempt(&place, name.as_str())?;
    }
    taken
}

/// A set that stopped the node or failed too often: only bounded steps are
/// taken (the signature, the start of the document for its header), so
/// that an authentic batch still uses up its sequence number and is answered.
fn put_aside(
    node: &mut Node,
    inc: Incoming<'_>,
    tries: u64,
    report: &mut PassReport,
) -> Result<TakeOutcome> {
    let Incoming { peer, dir, name } = inc;
    let rej = Reject::new(
        Code::SetPoison,
        format!(
            "processing this set stopped the node or failed {tries} times; put aside so that it blocks nothing else"
        ),
    );
    tracing::error!(peer, set = %name, tries, "a set that keeps stopping the node is put aside");
    let Some(verified) = verify_or_refuse(node, inc, report)? else {
        return Ok(TakeOutcome::Done);
    };
    // Only the start is expanded: enough for the header.
    let scratch = crate::context::files::Scratch::new_in(&node.layout.work, "poison");
    if verified.kind == DocKind::Batch {
        let mut limits = node.cfg.expand_limits();
        limits.max_bytes = validate::HEAD_BYTES;
        let _ = validate::expand(&name.payload(dir), scratch.path(), limits);
    }
    refuse_authentic(node, inc, &verified, scratch.path(), &rej, report)
}

/// An authentic set refused before its records were read: a batch whose header
/// can be read still uses up its sequence number (or waits for its turn to), so
/// the channel goes on; anything else is quarantined (batches answered).
fn refuse_authentic(
    node: &mut Node,
    inc: Incoming<'_>,
    verified: &Verified,
    work: &Path,
    rej: &Reject,
    report: &mut PassReport,
) -> Result<TakeOutcome> {
    let Incoming { peer, name, dir } = inc;
    let is_batch = verified.kind == DocKind::Batch;
    if is_batch {
        if let Some(header) = readable_header(node, peer, work)? {
            let expected = node.store.expected_seq(peer)?;
            if header.seq == expected {
                let arrival = Arrival {
                    peer,
                    set_name: name.as_str(),
                    sha256: &verified.digest.sha256_hex(),
                    arrived_at: crate::context::clock::modified(&name.marker(dir, verified.suite)),
                };
                use_up(node, inc, &header, &arrival, rej, report)?;
                return Ok(TakeOutcome::Done);
            }
            if header.seq > expected && header.seq <= expected + MAX_AHEAD {
                // Its turn has not come: refused (and its number used) then.
                node.store
                    .set_held(peer, name.as_str(), header.seq, &header.id)?;
                return Ok(TakeOutcome::Held(header.seq));
            }
        }
    }
    quarantine(
        node,
        inc,
        rej,
        None,
        Some(&verified.digest),
        is_batch,
        report,
    )?;
    Ok(TakeOutcome::Done)
}

/// Verify a set as signed by `peer`; one that is not is quarantined (None).
fn verify_or_refuse(
    node: &mut Node,
    inc: Incoming<'_>,
    report: &mut PassReport,
) -> Result<Option<Verified>> {
    let Incoming { peer, dir, name } = inc;
    match verify::verify_set(
        dir,
        name,
        peer,
        &node.trust,
        Some(node.cfg.suite_of(peer)),
        node.cfg.node.max_payload_bytes,
        node.cfg.expand_limits(),
    ) {
        Ok(v) => Ok(Some(v)),
        Err(rej) => {
            // An unauthenticated set: we cannot tell a batch from an ack, so answer
            // unless it claims to be an ack (an acknowledgment is never answered,
            // so two nodes that disagree on their channel never answer each
            // other's answers): by its SSHSIG namespace, or else by its
            // document's root (an SM2 signature names no kind).
            let claimed = set::read_small(&name.sig(dir), set::SMALL_FILE_MAX)
                .ok()
                .and_then(|b| crate::wire::sshsig::ParsedSig::parse(&b).ok())
                .map(|s| DocKind::from_sig_namespace(s.namespace()));
            let is_ack = match claimed {
                Some(kind) => kind == Some(DocKind::Ack),
                None => {
                    validate::peek_kind(&name.payload(dir), node.cfg.expand_limits())
                        == Some(DocKind::Ack)
                }
            };
            quarantine(node, inc, &rej, None, None, !is_ack, report)?;
            Ok(None)
        }
    }
}

fn take_set(node: &mut Node, inc: Incoming<'_>, report: &mut PassReport) -> Result<TakeOutcome> {
    let Incoming { peer, dir, name } = inc;
    // A set half-moved to archive/ or quarantine/ when the process was stopped:
    // it was fully handled then; finish the move.
    if !name.payload(dir).exists() {
        for done in [
            node.layout.archive.join(peer),
            node.layout.quarantine.join(peer),
        ] {
            let to = set::destination(name, dir, &done);
            if name.payload(&to).exists() {
                set::move_into(name, dir, &to)?;
                return Ok(TakeOutcome::Done);
            }
        }
    }
    let started = Instant::now();
    let Some(verified) = verify_or_refuse(node, inc, report)? else {
        return Ok(TakeOutcome::Done);
    };
    let mut timings = Timings {
        verify: started.elapsed(),
        ..Default::default()
    };
    // Per process: a second process on the node never shares a scratch file.
    let scratch = crate::context::files::Scratch::new_in(&node.layout.work, "in");
    let work = scratch.path().to_path_buf();
    let started = Instant::now();
    match validate::expand(&name.payload(dir), &work, node.cfg.expand_limits()) {
        Ok(_) => {}
        Err(Error::Rejected(rej)) => {
            return refuse_authentic(node, inc, &verified, &work, &rej, report);
        }
        Err(e) => return Err(e),
    }
    timings.expand = started.elapsed();
    match verified.kind {
        DocKind::Batch => take_batch(node, inc, &verified, &work, timings, report),
        DocKind::Ack => take_ack(node, inc, &verified, &work, report).map(|_| TakeOutcome::Done),
    }
}

/// Where a batch's time went, logged with the outcome (scripts/bench.sh sums them).
#[derive(Debug, Default)]
struct Timings {
    verify: Duration,
    expand: Duration,
    validate: Duration,
    apply: Duration,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn take_batch(
    node: &mut Node,
    inc: Incoming<'_>,
    verified: &Verified,
    work: &Path,
    mut timings: Timings,
    report: &mut PassReport,
) -> Result<TakeOutcome> {
    let Incoming { peer, dir, name } = inc;
    let digest = &verified.digest;
    // Refusals before the apply; an unreadable document is refused as such first.
    let refuse = |node: &mut Node,
                  check: &mut validate::BackgroundCheck,
                  rej: Reject,
                  header: Option<&BatchHeader>,
                  report: &mut PassReport| {
        let rej = check.first_refusal(rej);
        quarantine(node, inc, &rej, header, Some(digest), true, report).map(|_| TakeOutcome::Done)
    };
    // The document is checked (well-formed, no DOCTYPE, counted, then the XSD) on
    // the validator's thread while the header is looked at and the records are
    // applied here; the apply commits only if the check passes.
    let mut check = validate::BackgroundCheck::new(node.validator.submit(work, DocKind::Batch));
    let root = match validate::peek_root_file(work, DocKind::Batch) {
        Ok(r) => r,
        Err(Error::Rejected(rej)) => return refuse(node, &mut check, rej, None, report),
        Err(e) => return Err(e),
    };
    let header = match BatchHeader::from_root(&root) {
        Ok(h) => h,
        Err(rej) => return refuse(node, &mut check, rej, None, report),
    };
    if header.from != peer {
        let rej = Reject::new(
            Code::BatchSender,
            format!(
                "batch says it is from {:?} but arrived from {peer:?}",
                header.from
            ),
        );
        return refuse(node, &mut check, rej, Some(&header), report);
    }
    if header.to != node.id() {
        let rej = Reject::new(
            Code::BatchReceiver,
            format!(
                "batch is addressed to {:?}, this node is {:?}",
                header.to,
                node.id()
            ),
        );
        return refuse(node, &mut check, rej, Some(&header), report);
    }
    let arrival = Arrival {
        peer,
        set_name: name.as_str(),
        sha256: &digest.sha256_hex(),
        arrived_at: crate::context::clock::modified(&name.marker(dir, verified.suite)),
    };
    if let Some(entry) = node.store.journal(&header.id)? {
        if entry.peer != peer || !entry.sha256.eq_ignore_ascii_case(arrival.sha256) {
            // The same id with other content (or from another peer) is not a copy:
            // answering "duplicate" would hide its records from both sides.
            let rej = Reject::new(
                Code::BatchConflict,
                format!(
                    "batch id {:?} was received before from {:?} with SHA-256 {}; this file's is {}",
                    header.id,
                    entry.peer,
                    entry.sha256,
                    arrival.sha256
                ),
            );
            return refuse(node, &mut check, rej, Some(&header), report);
        }
        // Known batch: never applied twice. The first answer (if a crash took it)
        // is sent as it was; later copies are answered as duplicates.
        let duplicate = entry.acks_sent > 0;
        send_ack(node, &entry, duplicate)?;
        if duplicate {
            report.duplicates += 1;
        }
        set::move_set(name, dir, &node.layout.archive.join(peer))?;
        return Ok(TakeOutcome::Done);
    }
    let expected = node.store.expected_seq(peer)?;
    if header.seq < expected {
        let rej = Reject::new(
            Code::BatchSequence,
            format!(
                "sequence {} was already used by another batch (expected {expected})",
                header.seq
            ),
        );
        return refuse(node, &mut check, rej, Some(&header), report);
    }
    if header.seq > expected + MAX_AHEAD {
        let rej = Reject::new(
            Code::BatchSequence,
            format!(
                "sequence {} is implausibly far ahead of {expected}",
                header.seq
            ),
        );
        return refuse(node, &mut check, rej, Some(&header), report);
    }
    if header.seq > expected {
        node.store
            .set_held(peer, name.as_str(), header.seq, &header.id)?;
        return Ok(TakeOutcome::Held(header.seq));
    }
    let started = Instant::now();
    crash_point("before-apply");
    let policy = node.cfg.policy();
    let sender = node.cfg.node.role.other();
    let content = apply::apply_batch(
        &mut node.store,
        work,
        &header,
        &arrival,
        &apply::How {
            policy: &policy,
            sender,
            deliver: node.cfg.node.deliver == crate::context::config::Deliver::Folder,
        },
        || {
            let Some(checked) = check.outcome() else {
                return Ok(());
            };
            let scan = checked?;
            if scan.records == header.count {
                Ok(())
            } else {
                Err(Reject::new(
                    Code::BatchCount,
                    format!(
                        "header says {} records, the batch holds {}",
                        header.count, scan.records
                    ),
                )
                .into())
            }
        },
    );
    let content = check.settle(content);
    timings.validate = check.spent(); // on the validator's thread, alongside the apply
    let entry = match content {
        Ok(entry) => entry,
        Err(Error::Rejected(rej)) => {
            use_up(node, inc, &header, &arrival, &rej, report)?;
            return Ok(TakeOutcome::Done);
        }
        Err(e) => return Err(e),
    };
    report.applied += 1;
    timings.apply = started.elapsed(); // wall time; the XSD check overlaps it
    tracing::info!(peer, set = %name, batch = %entry.batch_id, seq = entry.seq, status = entry.status.as_str(),
        accepted = entry.accepted, rejected = entry.rejected,
        verify_ms = ms(timings.verify), expand_ms = ms(timings.expand),
        validate_ms = ms(timings.validate), apply_ms = ms(timings.apply), "applied");
    if entry.rejected > 0 {
        // Why, at a glance: the count per reason code and an example of each.
        for (code, count, key, message) in node.store.rejection_summary(&entry.batch_id)? {
            tracing::warn!(peer, batch = %entry.batch_id, code = %code, count,
                example = %crate::context::text::field(&key), "records refused: {}", crate::context::text::field(&message));
        }
    }
    crash_point("after-apply");
    // The batch stands whatever happens to its file: a delivery that fails
    // (a full disk) stays pending and is tried again at the next pass.
    if let Err(e) = deliver::deliver_pending(node) {
        tracing::error!(peer, batch = %entry.batch_id, "not delivered to delivered/ yet, tried again at the next pass: {e}");
    }
    let started = Instant::now();
    send_ack(node, &entry, false)?;
    tracing::info!(peer, batch = %entry.batch_id, ack_ms = ms(started.elapsed()), "acknowledgment sealed");
    crash_point("after-ack");
    set::move_set(name, dir, &node.layout.archive.join(peer))?;
    Ok(TakeOutcome::Done)
}

/// Authentic but unusable: the sequence number is used up so the channel goes
/// on, the sender is answered, and the set is kept in quarantine with the reason.
fn use_up(
    node: &mut Node,
    inc: Incoming<'_>,
    header: &BatchHeader,
    arrival: &Arrival<'_>,
    rej: &Reject,
    report: &mut PassReport,
) -> Result<()> {
    let entry = apply::reject_batch(&mut node.store, header, arrival, rej)?;
    send_ack(node, &entry, false)?;
    quarantine(node, inc, rej, Some(header), None, false, report)
}

/// The header of a batch whose document was refused part way, if it can be read
/// and belongs to this channel (from this peer, to this node, an id never seen).
fn readable_header(node: &Node, peer: &str, work: &Path) -> Result<Option<BatchHeader>> {
    let Ok(root) = validate::peek_root_file(work, DocKind::Batch) else {
        return Ok(None);
    };
    let Ok(header) = BatchHeader::from_root(&root) else {
        return Ok(None);
    };
    let fits =
        header.from == peer && header.to == node.id() && node.store.journal(&header.id)?.is_none();
    Ok(fits.then_some(header))
}

fn take_ack(
    node: &mut Node,
    inc: Incoming<'_>,
    verified: &Verified,
    work: &Path,
    report: &mut PassReport,
) -> Result<()> {
    let Incoming { peer, dir, name } = inc;
    // A broken acknowledgment is quarantined but never answered (no ack loops).
    let checked = node.validator.check(work, DocKind::Ack).and_then(|scan| {
        let doc = AckDoc::from_root(&scan.root)?;
        if doc.from != peer || doc.to != node.id() {
            return Err(Reject::new(
                Code::BatchSender,
                format!(
                    "ack from {:?} to {:?} arrived from {peer:?}",
                    doc.from, doc.to
                ),
            )
            .into());
        }
        Ok(doc)
    });
    let doc = match checked {
        Ok(doc) => doc,
        Err(Error::Rejected(rej)) => {
            return quarantine(node, inc, &rej, None, Some(&verified.digest), false, report)
        }
        Err(e) => return Err(e),
    };
    let (detail, reason) = ack::summarize(BufReader::new(File::open(work).at(work)?), 20)?;
    // The peer's words, made printable before they are stored and shown.
    let detail = format!(
        "accepted {}, rejected {}{}{}",
        doc.accepted,
        doc.rejected,
        if detail.is_empty() { "" } else { "; " },
        crate::context::text::printable(&detail, 2000)
    );
    let facts = AckFacts {
        peer,
        batch_id: doc.batch.as_deref(),
        set_name: &doc.set,
        sha256: doc.sha256.as_deref(),
        status: doc.status,
        detail: &detail,
    };
    let refusal = match node.store.record_ack(&facts)? {
        AckMatch::Recorded => {
            tracing::info!(
                peer,
                batch = %crate::context::text::field(doc.batch.as_deref().unwrap_or("-")),
                status = doc.status.as_str(),
                "acknowledged"
            );
            None
        }
        AckMatch::Kept(first) => {
            tracing::warn!(peer, batch = %crate::context::text::field(doc.batch.as_deref().unwrap_or("-")),
                status = doc.status.as_str(), kept = first.as_str(),
                "a later acknowledgment does not change the outcome recorded first");
            None
        }
        AckMatch::Unknown => {
            tracing::warn!(peer, set = %crate::context::text::field(&doc.set), "acknowledgment for a set this node has no record of");
            None
        }
        AckMatch::WrongPeer(to) => Some(Reject::new(
            Code::AckPeer,
            format!(
                "acknowledgment from {peer:?} for batch {:?}, which was sent to {to:?}",
                doc.batch.as_deref().unwrap_or(&doc.set)
            ),
        )),
        AckMatch::WrongHash(sent) => Some(Reject::new(
            Code::AckHash,
            format!(
                "acknowledgment names payload SHA-256 {}, the batch sent was {sent}",
                doc.sha256.as_deref().unwrap_or("-")
            ),
        )),
    };
    if let Some(rej) = refusal {
        return quarantine(node, inc, &rej, None, Some(&verified.digest), false, report);
    }
    report.acks_received += 1;
    set::move_set(name, dir, &node.layout.archive.join(peer))?;
    if doc.status == AckStatus::Rejected && reason.as_deref() == Some(Code::SetChecksum.as_str()) {
        resend_damaged(node, &doc.set);
    }
    Ok(())
}

/// A set that arrived damaged (its checksum failed there) is sent again, a few
/// times at most: the copy in sent/ is intact.
fn resend_damaged(node: &mut Node, set_name: &str) {
    const MAX_SHIPS: u64 = 3;
    match node.store.outbox(set_name) {
        Ok(Some(e)) if e.kind == DocKind::Batch && e.ship_count < MAX_SHIPS => {
            match node.resend(&e.batch_id) {
                Ok(_) => tracing::warn!(set = set_name, "damaged in transit; sending it again"),
                Err(err) => {
                    tracing::warn!(set = set_name, error = %err, "damaged in transit and cannot be resent")
                }
            }
        }
        Ok(Some(_)) => tracing::error!(
            set = set_name,
            "damaged in transit again; not resending, see quarantine at the peer"
        ),
        _ => {}
    }
}

/// Seal the acknowledgment of a journaled batch into outbound/.
fn send_ack(node: &mut Node, entry: &JournalEntry, duplicate: bool) -> Result<()> {
    let doc = AckDoc {
        from: node.id().to_string(),
        to: entry.peer.clone(),
        batch: Some(entry.batch_id.clone()),
        set: entry.set_name.clone(),
        sha256: Some(entry.sha256.clone()),
        status: if duplicate {
            AckStatus::Duplicate
        } else {
            entry.status
        },
        original_status: duplicate.then_some(entry.status),
        seq: Some(entry.seq),
        accepted: entry.accepted,
        rejected: entry.rejected,
        created: now(),
        reason: entry
            .reason_code
            .clone()
            .map(|c| (c, entry.reason_detail.clone().unwrap_or_default())),
        // A journaled batch has used its number, whatever its outcome.
        seq_used: Some(true),
    };
    let name = SetName::new(&format!(
        "{}-{}-ack-{}-{}",
        node.id(),
        entry.peer,
        entry.batch_id,
        entry.acks_sent + 1
    ))?;
    let store = &node.store;
    seal::seal(
        &node.layout.outbound,
        &name,
        node.sealer(&entry.peer)?,
        DocKind::Ack,
        node.cfg.node.gzip_level,
        |w| {
            let mut aw = AckWriter::begin(w, &doc).at(name.payload_file())?;
            store.rejections(&entry.batch_id, |r| aw.record(&r).at(name.payload_file()))?;
            aw.end().at(name.payload_file())?;
            Ok(())
        },
    )?;
    node.store.count_acks_sent(&entry.batch_id)?;
    Ok(())
}

/// Seal a negative acknowledgment (no records) into outbound/; `tag` makes its
/// name, so answering the same set again replaces rather than repeats it.
fn send_nack(node: &Node, peer: &str, tag: &str, doc: &AckDoc) -> Result<()> {
    let name = SetName::new(&format!("{}-{peer}-nack-{tag}", node.id()))?;
    seal::seal(
        &node.layout.outbound,
        &name,
        node.sealer(peer)?,
        DocKind::Ack,
        node.cfg.node.gzip_level,
        |w| {
            AckWriter::begin(w, doc)
                .and_then(|a| a.end())
                .at(name.payload_file())?;
            Ok(())
        },
    )?;
    Ok(())
}

/// A set whose name is unsafe is moved aside as it is (names never leave their
/// folder: only the last component is used) and answered negatively.
fn quarantine_unsafe(
    node: &mut Node,
    peer: &str,
    dir: &Path,
    marker: &std::ffi::OsStr,
    report: &mut PassReport,
) -> Result<()> {
    let UnsafeName { shown, tag, detail } = quarantine::unsafe_name_aside(node, peer, dir, marker)?;
    let doc = AckDoc::refusal(node.id(), peer, &shown, &Reject::new(Code::SetName, detail));
    send_nack(node, peer, &tag, &doc)?;
    report.quarantined += 1;
    Ok(())
}

/// Move a refused set to quarantine/<peer>/ with NAME.reason.txt, log it, and
/// (for batches) answer the sender with a negative acknowledgment.
fn quarantine(
    node: &mut Node,
    inc: Incoming<'_>,
    rej: &Reject,
    header: Option<&BatchHeader>,
    digest: Option<&PayloadDigest>,
    nack: bool,
    report: &mut PassReport,
) -> Result<()> {
    let Incoming { peer, dir, name } = inc;
    tracing::warn!(peer, set = %name, code = rej.code.as_str(), detail = %rej.detail, "quarantined");
    if nack {
        let doc = AckDoc {
            batch: header.map(|h| h.id.clone()),
            sha256: digest.map(PayloadDigest::sha256_hex),
            seq: header.map(|h| h.seq).filter(|&s| s > 0),
            rejected: header.map(|h| h.count).unwrap_or(0),
            ..AckDoc::refusal(node.id(), peer, name.as_str(), rej)
        };
        let tag =
            Sha256::digest(format!("{name}/{}", doc.sha256.as_deref().unwrap_or("-")).as_bytes());
        send_nack(node, peer, &hex::encode(&tag[..8]), &doc)?;
    }
    quarantine::set_aside(node, Some(peer), name, dir, rej)?;
    report.quarantined += 1;
    Ok(())
}

/// What `sedx verify` found in a set file outside the pipeline.
pub struct CheckedSet {
    pub name: SetName,
    pub sha256: String,
    pub signer: String,
    pub kind: DocKind,
    pub records: u64,
}

/// Check a set (any of its three files) as this node would take it from
/// `from`: checksum, signature and sender, then expansion under the node's caps
/// and the XSD, in a scratch copy in the node's private folder. Nothing is applied.
pub fn check_set_file(node: &Node, part: &Path, from: &str) -> Result<CheckedSet> {
    let file = part
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Other(format!("{}: no file name", part.display())))?;
    let (name, _) = SetName::of_file(file).ok_or_else(|| {
        Error::Other(format!(
            "{file} is not a part of a sealed set (NAME.xml.gz[.sig|.sha256|.sm3])"
        ))
    })?;
    let dir = part
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // A configured peer's sets are checked in its channel's suite; another
    // sender's in the suite they are marked in.
    let v = verify::verify_set(
        dir,
        &name,
        from,
        node.trust(),
        node.cfg.peer(from).map(|_| node.cfg.suite_of(from)),
        node.cfg.node.max_payload_bytes,
        node.cfg.expand_limits(),
    )?;
    crate::context::files::create_dir_all(&node.layout.work)?;
    let scratch = crate::context::files::Scratch::new_in(&node.layout.work, "verify");
    validate::expand(&name.payload(dir), scratch.path(), node.cfg.expand_limits())?;
    let scan = validate::Schemas::new()?.check(scratch.path(), v.kind)?;
    Ok(CheckedSet {
        sha256: v.digest.sha256_hex(),
        signer: v.signer.to_string(),
        kind: v.kind,
        records: scan.records,
        name,
    })
}

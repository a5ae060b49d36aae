//! Apply: the records of a verified, valid batch go into the store in one
//! transaction together with the batch's journal row and the channel's sequence.

use crate::context::error::{Code, IoContext, Reject, Result};
use crate::domain::rules::{judge, Direction, Policy, Verdict};
use crate::domain::{RawRecord, Record, RecordKind, Role};
use crate::store::{JournalEntry, RecordTx, Store};
use crate::wire::ack::{AckStatus, RecordRejection};
use crate::wire::document::{BatchHeader, RecordReader};
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

/// How a batch is applied: the rules in force, the sender's role, and whether
/// its records are also delivered as a file.
pub struct How<'a> {
    pub policy: &'a Policy,
    pub sender: Role,
    pub deliver: bool,
}

/// Where a batch came from, for its journal row.
pub struct Arrival<'a> {
    pub peer: &'a str,
    pub set_name: &'a str,
    pub sha256: &'a str,
    /// When the set's marker arrived (RFC 3339).
    pub arrived_at: Option<String>,
}

impl Arrival<'_> {
    /// The journal row of this arrival with its outcome.
    fn journal(
        &self,
        header: &BatchHeader,
        status: AckStatus,
        accepted: u64,
        rejected: u64,
        why: Option<&Reject>,
    ) -> JournalEntry {
        JournalEntry {
            batch_id: header.id.clone(),
            peer: self.peer.to_string(),
            seq: header.seq,
            set_name: self.set_name.to_string(),
            sha256: self.sha256.to_string(),
            status,
            accepted,
            rejected,
            reason_code: why.map(|w| w.code.as_str().to_string()),
            reason_detail: why.map(|w| w.detail.clone()),
            acks_sent: 0,
            arrived_at: self.arrived_at.clone(),
        }
    }
}

fn status_of(accepted: u64, rejected: u64) -> AckStatus {
    match (accepted, rejected) {
        (_, 0) => AckStatus::Accepted,
        (0, _) => AckStatus::Rejected,
        _ => AckStatus::PartiallyAccepted,
    }
}

/// Apply every record of the document at `doc`, sent by a peer of role
/// `sender`; a record that breaks a rule is left out and reported with its
/// reason code, the others are applied. `valid` is asked just before the commit
/// (the XSD check runs meanwhile on another thread); if it fails, nothing is kept.
pub fn apply_batch(
    store: &mut Store,
    doc: &Path,
    header: &BatchHeader,
    arrival: &Arrival,
    how: &How<'_>,
    valid: impl FnOnce() -> Result<()>,
) -> Result<JournalEntry> {
    let (policy, sender) = (how.policy, how.sender);
    let mut reader = RecordReader::new(BufReader::with_capacity(1 << 20, File::open(doc).at(doc)?));
    let mut tx = store.begin_apply()?;
    tx.deliver = how.deliver;
    let mut index = 0u64;
    while let Some((kind, raw)) = reader.next_record()? {
        let verdict = match read_record(&mut tx, kind, &raw)? {
            Ok(rec) => match judge(policy, Direction::Receiving, sender, &rec, &mut tx)? {
                Verdict::Accept { national } => Ok((rec, national)),
                Verdict::Reject(r) => Err(r),
                Verdict::HoldUntil(_) | Verdict::KeepHome => {
                    Err(Reject::new(Code::RecField, "not receivable"))
                }
            },
            Err(r) => Err(r),
        };
        match verdict {
            Ok((rec, national)) => {
                for w in &rec.warnings {
                    tracing::warn!(batch = %header.id, key = %crate::context::text::field(rec.key()), "{}", crate::context::text::field(w));
                }
                let found = tx.upsert(&rec, sender, arrival.peer, Some(&header.id))?;
                tx.note_for_delivery(&header.id, index, &rec)?;
                for d in &found {
                    tracing::warn!(peer = arrival.peer, key = %crate::context::text::field(&d.key), field = %d.field, "discrepancy (not applied)");
                    tx.record_discrepancy(arrival.peer, Some(&header.id), d)?;
                }
                if national {
                    tx.flag_national(rec.key())?;
                }
            }
            Err(rej) => {
                let key = raw.key(kind);
                let rejection = RecordRejection {
                    index,
                    key,
                    code: rej.code.as_str().to_string(),
                    message: rej.detail,
                };
                tx.reject(&header.id, &rejection)?
            }
        }
        index += 1;
    }
    valid()?; // on failure the transaction is dropped: rolled back
    let status = status_of(tx.accepted, tx.rejected);
    let entry = arrival.journal(header, status, tx.accepted, tx.rejected, None);
    tx.commit(&entry)?;
    Ok(entry)
}

/// A record checked on its own and against the rest of its batch (no key twice).
pub(crate) fn read_record(
    tx: &mut RecordTx<'_>,
    kind: RecordKind,
    raw: &RawRecord,
) -> Result<Result<Record, Reject>> {
    Ok(match Record::from_raw(kind, raw) {
        Ok(rec) if !tx.first_in_batch(kind.element(), rec.key())? => Err(Reject::new(
            Code::RecDuplicate,
            format!(
                "{} {} appears more than once in this batch",
                kind.element(),
                rec.key()
            ),
        )),
        other => other,
    })
}

/// Journal a batch refused as a whole (its sequence number is used up, so the
/// channel goes on; the sender learns why from the acknowledgment).
pub fn reject_batch(
    store: &mut Store,
    header: &BatchHeader,
    arrival: &Arrival,
    why: &Reject,
) -> Result<JournalEntry> {
    let tx = store.begin_apply()?;
    let entry = arrival.journal(header, AckStatus::Rejected, 0, header.count, Some(why));
    tx.commit(&entry)?;
    Ok(entry)
}

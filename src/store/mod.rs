//! The node's embedded store (SQLite). Every state change is committed here
//! before the next step is taken, so a node killed at any moment resumes.

use crate::context::clock::now;
use crate::wire::ack::{AckStatus, RecordRejection};

pub mod migrate;
use crate::context::error::{Code, Error, Result};
use crate::domain::rules::{Register, Responsibility};
use crate::domain::spec::{column, Spec, SPECS};
use crate::domain::{Record, RecordKind, Role};
use crate::wire::document::DocKind;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

pub struct Store {
    conn: Connection,
}

/// What happened to a received batch (one journal row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub batch_id: String,
    pub peer: String,
    pub seq: u64,
    pub set_name: String,
    pub sha256: String,
    pub status: AckStatus,
    pub accepted: u64,
    pub rejected: u64,
    pub reason_code: Option<String>,
    pub reason_detail: Option<String>,
    pub acks_sent: u64,
}

/// A field a peer sent that differs from what this node holds and is not the
/// peer's to change (R4, R6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discrepancy {
    pub kind: String,
    pub key: String,
    pub field: String,
    pub stored: Option<String>,
    pub received: Option<String>,
}

/// An item refused into quarantine/.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub id: i64,
    pub at: String,
    /// None for a dropped file refused on the way out.
    pub peer: Option<String>,
    pub name: String,
    pub code: String,
    pub detail: String,
    pub kind: QuarantineKind,
    /// The folder that holds it (or, for a set not pulled, where it was).
    pub place: String,
    pub state: QuarantineState,
    pub closed_at: Option<String>,
    pub closed_by: Option<String>,
    pub note: Option<String>,
}

/// What was put aside, which decides what a retry does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum QuarantineKind {
    /// A set a peer sent (quarantine/<peer>/).
    ReceivedSet,
    /// A set in outbound/ that this node did not seal (quarantine/outbound/).
    OutgoingSet,
    /// A file dropped into outbound/ that was refused whole.
    Drop,
    /// Records of a drop refused on the way out (NAME.rejected.xml).
    RefusedRecords,
    /// Records of `sedx import` refused (NAME.rejected.xml).
    ImportRefused,
    /// A set whose name is unsafe (kept under a tag; the peer must send again).
    UnsafeName,
    /// A set too large to pull (left at the hub).
    NotPulled,
}

impl QuarantineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineKind::ReceivedSet => "received-set",
            QuarantineKind::OutgoingSet => "outgoing-set",
            QuarantineKind::Drop => "drop",
            QuarantineKind::RefusedRecords => "refused-records",
            QuarantineKind::ImportRefused => "import-refused",
            QuarantineKind::UnsafeName => "unsafe-name",
            QuarantineKind::NotPulled => "not-pulled",
        }
    }
    fn parse(s: &str) -> Option<QuarantineKind> {
        [
            QuarantineKind::ReceivedSet,
            QuarantineKind::OutgoingSet,
            QuarantineKind::Drop,
            QuarantineKind::RefusedRecords,
            QuarantineKind::ImportRefused,
            QuarantineKind::UnsafeName,
            QuarantineKind::NotPulled,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Where a quarantined item is in its life: open until retried or dismissed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QuarantineState {
    Open,
    Retried,
    Dismissed,
}

impl QuarantineState {
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineState::Open => "open",
            QuarantineState::Retried => "retried",
            QuarantineState::Dismissed => "dismissed",
        }
    }
}

/// How shipping to a peer has been going.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PeerState {
    pub failures: u64,
    /// Unix time before which no new attempt is made (backoff).
    pub next_attempt: i64,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub last_ok_at: Option<String>,
    /// A pulling peer: when sets were last seen taken from its outbox folder.
    pub last_pull_at: Option<String>,
    /// A pulling peer: when the alert that it stopped pulling was raised (cleared
    /// by its next pull).
    pub pull_alert_at: Option<String>,
}

/// What an acknowledgment says about which batch it answers.
#[derive(Debug, Clone)]
pub struct AckFacts<'a> {
    /// The peer the acknowledgment arrived from (and is signed by).
    pub peer: &'a str,
    pub batch_id: Option<&'a str>,
    pub set_name: &'a str,
    /// SHA-256 of the payload the peer received, when it could read one.
    pub sha256: Option<&'a str>,
    pub status: AckStatus,
    pub detail: &'a str,
}

/// How an acknowledgment matched the batches this node sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckMatch {
    Recorded,
    /// A definite outcome was recorded before and stands.
    Kept(AckStatus),
    /// No batch of that id or set name was sent.
    Unknown,
    /// The batch was sent to another peer (named).
    WrongPeer(String),
    /// The batch was sent to this peer with another payload (its hash).
    WrongHash(String),
}

/// A set this node sends, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub set_name: String,
    pub batch_id: String,
    pub kind: DocKind,
    pub peer: String,
    pub seq: Option<u64>,
    pub state: OutboxState,
    pub ship_count: u64,
    pub shipped_at: Option<String>,
    pub ack_status: Option<String>,
    pub ack_detail: Option<String>,
}

fn ack_status_of(s: String) -> rusqlite::Result<AckStatus> {
    AckStatus::parse(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, s.into())
    })
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.set_prepared_statement_cache_capacity(128);
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a commit is on disk before the next step (the durability rule).
        conn.pragma_update(None, "synchronous", "FULL")?;
        let mut conn = conn;
        migrate::migrate(&mut conn)?;
        Ok(Store { conn })
    }

    /// The node id this store belongs to, if it has been told.
    pub fn node_identity(&self) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT value FROM node_info WHERE name = 'node_id'",
                [],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn set_node_identity(&self, id: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO node_info(name, value) VALUES('node_id', ?1)
             ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            [id],
        )?;
        Ok(())
    }

    /// Count one more attempt at an item (a received set, a dropped file) before
    /// any work on it starts, durably: an item that stops the process (killed
    /// for memory, a crash) is known on the next start. Returns the count.
    pub fn begin_attempt(&self, place: &str, name: &str) -> Result<u64> {
        Ok(self.conn.query_row(
            "INSERT INTO attempts(place, name, count) VALUES(?1, ?2, 1)
             ON CONFLICT(place, name) DO UPDATE SET count = count + 1 RETURNING count",
            params![place, name],
            |r| r.get(0),
        )?)
    }

    /// The item's work ended (whatever its outcome): its count starts afresh.
    pub fn end_attempt(&self, place: &str, name: &str) -> Result<()> {
        self.conn.execute(
            "DELETE FROM attempts WHERE place = ?1 AND name = ?2",
            params![place, name],
        )?;
        Ok(())
    }

    /// Whether anything was ever received or sent through this store.
    pub fn has_history(&self) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM journal) OR EXISTS(SELECT 1 FROM outbox)
                 OR EXISTS(SELECT 1 FROM channel_in) OR EXISTS(SELECT 1 FROM channel_out)",
            [],
            |r| r.get(0),
        )?)
    }

    // ---- outbound -------------------------------------------------------

    /// The batch id and sequence already reserved for a dropped file (for one
    /// peer) or for a batch id, if any.
    pub fn reservation(
        &self,
        src_name: &str,
        peer: &str,
        batch_id: Option<&str>,
    ) -> Result<Option<OutboxEntry>> {
        let by_src = self
            .conn
            .query_row(
                "SELECT set_name FROM outbox WHERE src_name = ?1 AND peer = ?2 AND state = 'sealing'",
                params![src_name, peer],
                |r| r.get::<_, String>(0),
            )
            .optional()?;
        if let Some(name) = by_src {
            return self.outbox(&name);
        }
        match batch_id {
            Some(id) => Ok(self
                .outbox_where("batch_id = ?1 AND kind = 'batch'", id)?
                .filter(|e| e.peer == peer)),
            None => Ok(None),
        }
    }

    /// Whether a dropped file with this content fingerprint was already sifted.
    pub fn drop_seen(&self, tag: &str) -> Result<bool> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM meta WHERE name = ?1",
            [format!("drop:{tag}")],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// Give deferred records whose category has started (by the rollout dates in
    /// force now) a file to go out in; returns every pending (file, peer).
    pub fn pending_releases(
        &mut self,
        started: impl Fn(&str) -> bool,
    ) -> Result<Vec<(String, String)>> {
        let tx = self.conn.transaction()?;
        let due: Vec<(i64, String)> = {
            let mut st = tx.prepare(
                "SELECT id, peer, category FROM deferred WHERE released_in IS NULL ORDER BY id",
            )?;
            let rows = st.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?;
            let mut due = Vec::new();
            for row in rows {
                let (id, peer, category) = row?;
                if started(&category) {
                    due.push((id, peer));
                }
            }
            due
        };
        let mut files: BTreeMap<String, String> = BTreeMap::new();
        for (id, peer) in due {
            let file = files.entry(peer.clone()).or_insert_with(|| {
                format!("deferred-{peer}-{}.xml", uuid::Uuid::new_v4().simple())
            });
            tx.execute(
                "UPDATE deferred SET released_in = ?1 WHERE id = ?2",
                params![file.as_str(), id],
            )?;
        }
        tx.commit()?;
        let mut st = self.conn.prepare(
            "SELECT DISTINCT released_in, peer FROM deferred WHERE released_in IS NOT NULL",
        )?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn deferred_xml(&self, file: &str) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare("SELECT xml FROM deferred WHERE released_in = ?1 ORDER BY id")?;
        let rows = st.query_map([file], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn forget_released(&self, file: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM deferred WHERE released_in = ?1", [file])?;
        Ok(())
    }

    /// Reserve the channel's next sequence number for a batch before sealing it.
    pub fn reserve(
        &mut self,
        src_name: &str,
        batch_id: &str,
        peer: &str,
        set_name: impl Fn(u64) -> String,
    ) -> Result<OutboxEntry> {
        let tx = self.conn.transaction()?;
        let last: u64 = tx
            .query_row(
                "SELECT last_seq FROM channel_out WHERE peer = ?1",
                [peer],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        let seq = last + 1;
        tx.execute(
            "INSERT INTO channel_out(peer, last_seq) VALUES(?1, ?2)
             ON CONFLICT(peer) DO UPDATE SET last_seq = excluded.last_seq",
            params![peer, seq],
        )?;
        let name = set_name(seq);
        tx.execute(
            "INSERT INTO outbox(set_name, batch_id, kind, peer, seq, src_name, state, created_at)
             VALUES(?1, ?2, 'batch', ?3, ?4, ?5, 'sealing', ?6)",
            params![name, batch_id, peer, seq, src_name, now()],
        )?;
        tx.commit()?;
        self.outbox(&name)?
            .ok_or_else(|| Error::Other("reservation vanished".into()))
    }

    pub fn mark_sealed(&self, set_name: &str, sha256: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE outbox SET state = 'sealed', sha256 = ?2 WHERE set_name = ?1 AND state = 'sealing'",
            params![set_name, sha256],
        )?;
        Ok(())
    }

    /// Record that a set reached the peer (creating the row for sets sealed elsewhere).
    pub fn record_shipped(
        &self,
        set_name: &str,
        batch_id: &str,
        kind: &str,
        peer: &str,
        seq: Option<u64>,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO outbox(set_name, batch_id, kind, peer, seq, state, created_at, shipped_at, ship_count)
             VALUES(?1, ?2, ?3, ?4, ?5, 'shipped', ?6, ?6, 1)
             ON CONFLICT(set_name) DO UPDATE SET shipped_at = excluded.shipped_at,
               ship_count = ship_count + 1, taken_at = NULL,
               state = CASE WHEN state = 'acknowledged' AND ack_status <> 'rejected' THEN state ELSE 'shipped' END",
            params![set_name, batch_id, kind, peer, seq, now()],
        )?;
        Ok(())
    }

    /// Record an acknowledgment for a batch we sent to `peer`. It must match a
    /// batch by id (or, for an answer to a set whose header could not be read, by
    /// set name), sent to that very peer, with the payload hash the answer names.
    /// A definite outcome is never overwritten: accepted stays accepted; a
    /// rejection gives way only to an acceptance (a damaged set sent again); a
    /// "duplicate" never replaces anything definite.
    pub fn record_ack(&self, ack: &AckFacts<'_>) -> Result<AckMatch> {
        let mut st = self.conn.prepare_cached(
            "SELECT set_name, peer, sha256, ack_status FROM outbox
             WHERE kind = 'batch' AND (CASE WHEN ?1 IS NOT NULL THEN batch_id = ?1 ELSE set_name = ?2 END)",
        )?;
        let rows: Vec<(String, String, Option<String>, Option<String>)> = st
            .query_map(params![ack.batch_id, ack.set_name], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        if rows.is_empty() {
            return Ok(AckMatch::Unknown);
        }
        let to_peer: Vec<_> = rows.iter().filter(|r| r.1 == ack.peer).collect();
        if to_peer.is_empty() {
            return Ok(AckMatch::WrongPeer(rows[0].1.clone()));
        }
        let same = |stored: &Option<String>| match (stored, ack.sha256) {
            (Some(s), Some(a)) => s.eq_ignore_ascii_case(a),
            _ => true,
        };
        let Some(row) = to_peer.iter().find(|r| same(&r.2)) else {
            return Ok(AckMatch::WrongHash(
                to_peer[0].2.clone().unwrap_or_default(),
            ));
        };
        let current = row.3.as_deref().and_then(AckStatus::parse);
        let replaces = matches!(
            (current, ack.status),
            (None, _)
                | (Some(AckStatus::Duplicate), _)
                | (
                    Some(AckStatus::Rejected),
                    AckStatus::Accepted | AckStatus::PartiallyAccepted
                )
        );
        if !replaces {
            return Ok(AckMatch::Kept(current.unwrap_or(ack.status)));
        }
        self.conn.execute(
            "UPDATE outbox SET state = 'acknowledged', ack_status = ?2, ack_detail = ?3, ack_at = ?4
             WHERE set_name = ?1",
            params![row.0, ack.status.as_str(), ack.detail, now()],
        )?;
        Ok(AckMatch::Recorded)
    }

    fn outbox_where(&self, cond: &str, arg: &str) -> Result<Option<OutboxEntry>> {
        let sql = format!(
            "SELECT set_name, batch_id, kind, peer, seq, state, ship_count, shipped_at, ack_status, ack_detail
             FROM outbox WHERE {cond} ORDER BY created_at DESC LIMIT 1"
        );
        Ok(self.conn.query_row(&sql, [arg], outbox_row).optional()?)
    }

    pub fn outbox(&self, set_name: &str) -> Result<Option<OutboxEntry>> {
        self.outbox_where("set_name = ?1", set_name)
    }

    pub fn outbox_by_batch(&self, batch_id: &str) -> Result<Option<OutboxEntry>> {
        self.outbox_where("batch_id = ?1 AND kind = 'batch'", batch_id)
    }

    pub fn outbox_all(&self) -> Result<Vec<OutboxEntry>> {
        let mut st = self.conn.prepare(
            "SELECT set_name, batch_id, kind, peer, seq, state, ship_count, shipped_at, ack_status, ack_detail
             FROM outbox ORDER BY peer, kind, seq, created_at",
        )?;
        let rows = st.query_map([], outbox_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn peer_state(&self, peer: &str) -> Result<PeerState> {
        Ok(self
            .conn
            .query_row(
                "SELECT failures, next_attempt, last_error, last_error_at, last_ok_at, last_pull_at, pull_alert_at
                 FROM peer_state WHERE peer = ?1",
                [peer],
                |r| {
                    Ok(PeerState {
                        failures: r.get(0)?,
                        next_attempt: r.get(1)?,
                        last_error: r.get(2)?,
                        last_error_at: r.get(3)?,
                        last_ok_at: r.get(4)?,
                        last_pull_at: r.get(5)?,
                        pull_alert_at: r.get(6)?,
                    })
                },
            )
            .optional()?
            .unwrap_or_default())
    }

    pub fn transport_failed(&self, peer: &str, error: &str, next_attempt: i64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO peer_state(peer, failures, next_attempt, last_error, last_error_at) VALUES(?1, 1, ?2, ?3, ?4)
             ON CONFLICT(peer) DO UPDATE SET failures = failures + 1, next_attempt = ?2, last_error = ?3, last_error_at = ?4",
            params![peer, next_attempt, error, now()],
        )?;
        Ok(())
    }

    /// Sets left in a pulling peer's outbox folder and not seen taken yet, with
    /// when they were left there.
    pub fn left_for_pull(&self, peer: &str) -> Result<Vec<(String, String)>> {
        let mut st = self.conn.prepare_cached(
            "SELECT set_name, shipped_at FROM outbox
             WHERE peer = ?1 AND taken_at IS NULL AND shipped_at IS NOT NULL ORDER BY shipped_at",
        )?;
        let rows = st.query_map([peer], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Sets seen taken from a pulling peer's outbox folder: the peer pulled.
    pub fn taken_by_pull(&self, peer: &str, set_names: &[String]) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        let at = now();
        for name in set_names {
            tx.execute(
                "UPDATE outbox SET taken_at = ?2 WHERE set_name = ?1",
                params![name, at],
            )?;
        }
        tx.execute(
            "INSERT INTO peer_state(peer, last_pull_at) VALUES(?1, ?2)
             ON CONFLICT(peer) DO UPDATE SET last_pull_at = ?2, pull_alert_at = NULL",
            params![peer, at],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The alert that a pulling peer stopped pulling was raised (logged once).
    pub fn pull_alert_raised(&self, peer: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO peer_state(peer, pull_alert_at) VALUES(?1, ?2)
             ON CONFLICT(peer) DO UPDATE SET pull_alert_at = ?2",
            params![peer, now()],
        )?;
        Ok(())
    }

    /// Try a peer at the next pass whatever its backoff (its settings changed).
    pub fn transport_retry_now(&self, peer: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE peer_state SET next_attempt = 0 WHERE peer = ?1",
            [peer],
        )?;
        Ok(())
    }

    pub fn transport_ok(&self, peer: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO peer_state(peer, failures, next_attempt, last_ok_at) VALUES(?1, 0, 0, ?2)
             ON CONFLICT(peer) DO UPDATE SET failures = 0, next_attempt = 0, last_ok_at = ?2",
            params![peer, now()],
        )?;
        Ok(())
    }

    /// Batches shipped before `before` (RFC 3339) and neither acknowledged nor
    /// resent since then.
    pub fn overdue(&self, before: &str) -> Result<Vec<OutboxEntry>> {
        let mut st = self.conn.prepare(
            "SELECT set_name, batch_id, kind, peer, seq, state, ship_count, shipped_at, ack_status, ack_detail
             FROM outbox WHERE kind = 'batch' AND state = 'shipped' AND shipped_at <= ?1
               AND (resent_at IS NULL OR resent_at < ?1) ORDER BY peer, seq",
        )?;
        let rows = st.query_map([before], outbox_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn mark_resent(&self, set_name: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE outbox SET resent_at = ?2 WHERE set_name = ?1",
            params![set_name, now()],
        )?;
        Ok(())
    }

    /// The last time a batch or acknowledgment came in from a peer.
    pub fn last_received(&self, peer: &str) -> Result<Option<String>> {
        Ok(self.conn.query_row(
            "SELECT max(received_at) FROM journal WHERE peer = ?1",
            [peer],
            |r| r.get(0),
        )?)
    }

    // ---- inbound --------------------------------------------------------

    /// The next sequence number expected from a peer.
    pub fn expected_seq(&self, peer: &str) -> Result<u64> {
        let last: Option<u64> = self
            .conn
            .query_row(
                "SELECT last_seq FROM channel_in WHERE peer = ?1",
                [peer],
                |r| r.get(0),
            )
            .optional()?;
        Ok(last.unwrap_or(0) + 1)
    }

    pub fn journal(&self, batch_id: &str) -> Result<Option<JournalEntry>> {
        Ok(self
            .conn
            .query_row(
                "SELECT batch_id, peer, seq, set_name, sha256, status, accepted, rejected, reason_code,
                        reason_detail, acks_sent FROM journal WHERE batch_id = ?1",
                [batch_id],
                |r| {
                    Ok(JournalEntry {
                        batch_id: r.get(0)?,
                        peer: r.get(1)?,
                        seq: r.get(2)?,
                        set_name: r.get(3)?,
                        sha256: r.get(4)?,
                        status: ack_status_of(r.get(5)?)?,
                        accepted: r.get(6)?,
                        rejected: r.get(7)?,
                        reason_code: r.get(8)?,
                        reason_detail: r.get(9)?,
                        acks_sent: r.get(10)?,
                    })
                },
            )
            .optional()?)
    }

    /// The refused records of a batch by reason code: (code, count, first key,
    /// first message), most frequent first.
    pub fn rejection_summary(&self, batch_id: &str) -> Result<Vec<(String, u64, String, String)>> {
        let mut st = self.conn.prepare(
            "SELECT code, count(*), min(key), min(message) FROM record_result WHERE batch_id = ?1
             GROUP BY code ORDER BY count(*) DESC, code",
        )?;
        let rows = st.query_map([batch_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn rejections(
        &self,
        batch_id: &str,
        mut each: impl FnMut(RecordRejection) -> Result<()>,
    ) -> Result<()> {
        let mut st = self.conn.prepare(
            "SELECT idx, key, code, message FROM record_result WHERE batch_id = ?1 ORDER BY idx",
        )?;
        let mut rows = st.query([batch_id])?;
        while let Some(r) = rows.next()? {
            each(RecordRejection {
                index: r.get(0)?,
                key: r.get(1)?,
                code: r.get(2)?,
                message: r.get(3)?,
            })?;
        }
        Ok(())
    }

    pub fn count_acks_sent(&self, batch_id: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE journal SET acks_sent = acks_sent + 1 WHERE batch_id = ?1",
            [batch_id],
        )?;
        Ok(())
    }

    /// Start applying a batch: everything goes in one transaction with its journal row.
    pub fn begin_apply(&mut self) -> Result<RecordTx<'_>> {
        let tx = self.conn.transaction()?;
        tx.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS apply_seen(kind TEXT, key TEXT, PRIMARY KEY(kind, key));
             DELETE FROM temp.apply_seen;",
        )?;
        Ok(RecordTx {
            tx,
            accepted: 0,
            rejected: 0,
            version: None,
            seen: Default::default(),
            seen_count: 0,
        })
    }

    pub fn set_held(&self, peer: &str, set_name: &str, seq: u64, batch_id: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO held(peer, set_name, seq, batch_id, since) VALUES(?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(peer, set_name) DO NOTHING",
            params![peer, set_name, seq, batch_id, now()],
        )?;
        Ok(())
    }

    pub fn clear_held(&self, peer: &str, set_name: &str) -> Result<()> {
        self.conn.execute(
            "DELETE FROM held WHERE peer = ?1 AND set_name = ?2",
            params![peer, set_name],
        )?;
        Ok(())
    }

    /// Held sets per peer: (peer, seq, set_name, since).
    pub fn held(&self) -> Result<Vec<(String, u64, String, String)>> {
        let mut st = self
            .conn
            .prepare("SELECT peer, seq, set_name, since FROM held ORDER BY peer, seq")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn log_quarantine(
        &self,
        kind: QuarantineKind,
        peer: Option<&str>,
        set_name: &str,
        code: Code,
        detail: &str,
        place: &str,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO quarantine(at, peer, set_name, code, detail, place, kind, state)
             VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, 'open')",
            params![
                now(),
                peer,
                set_name,
                code.as_str(),
                detail,
                place,
                kind.as_str()
            ],
        )?;
        Ok(())
    }

    fn quarantine_where(&self, cond: &str, arg: i64) -> Result<Vec<Quarantined>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT id, at, peer, set_name, code, detail, kind, place, state, closed_at, closed_by, note
             FROM quarantine WHERE {cond} ORDER BY id DESC"
        ))?;
        let rows = st.query_map([arg], |r| {
            let peer: Option<String> = r.get(2)?;
            // Items of stores before kinds were kept: a peer's set, or a drop.
            let kind = r
                .get::<_, Option<String>>(6)?
                .and_then(|k| QuarantineKind::parse(&k))
                .unwrap_or(if peer.is_some() {
                    QuarantineKind::ReceivedSet
                } else {
                    QuarantineKind::Drop
                });
            let state = match r.get::<_, String>(8)?.as_str() {
                "retried" => QuarantineState::Retried,
                "dismissed" => QuarantineState::Dismissed,
                _ => QuarantineState::Open,
            };
            Ok(Quarantined {
                id: r.get(0)?,
                at: r.get(1)?,
                peer,
                name: r.get(3)?,
                code: r.get(4)?,
                detail: r.get(5)?,
                kind,
                place: r.get(7)?,
                state,
                closed_at: r.get(9)?,
                closed_by: r.get(10)?,
                note: r.get(11)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Open quarantined items, newest first.
    pub fn quarantined(&self) -> Result<Vec<Quarantined>> {
        self.quarantine_where("state = 'open' AND ?1 = ?1", 0)
    }

    /// Every quarantined item, closed ones too, newest first.
    pub fn quarantine_all(&self) -> Result<Vec<Quarantined>> {
        self.quarantine_where("?1 = ?1", 0)
    }

    pub fn quarantine_item(&self, id: i64) -> Result<Option<Quarantined>> {
        Ok(self.quarantine_where("id = ?1", id)?.into_iter().next())
    }

    /// Close an open item: retried or dismissed, by whom, and why.
    pub fn close_quarantine(
        &self,
        id: i64,
        state: QuarantineState,
        by: &str,
        note: &str,
    ) -> Result<bool> {
        let n = self.conn.execute(
            "UPDATE quarantine SET state = ?2, closed_at = ?3, closed_by = ?4, note = ?5
             WHERE id = ?1 AND state = 'open'",
            params![id, state.as_str(), now(), by, note],
        )?;
        Ok(n == 1)
    }

    pub fn count(&self, table: &str) -> Result<u64> {
        let known = SPECS.iter().any(|sp| sp.table == table)
            || ["journal", "quarantine", "discrepancy", "deferred"].contains(&table);
        if !known {
            return Err(Error::Other(format!("no table {table}")));
        }
        Ok(self
            .conn
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?)
    }

    pub fn bump_counter(&self, name: &str, by: u64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO meta(name, value) VALUES(?1, ?2) ON CONFLICT(name) DO UPDATE SET value = value + ?2",
            params![name, by],
        )?;
        Ok(())
    }

    pub fn counter(&self, name: &str) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?
            .unwrap_or(0))
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The change number up to which an export has been acknowledged (R14):
    /// every set sealed from it answered accepted or partially accepted.
    pub fn last_acknowledged_export(&self) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT coalesce(max(e.max_version), 0) FROM exports e
             WHERE EXISTS (SELECT 1 FROM outbox o WHERE o.src_name = e.file)
               AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.src_name = e.file
                               AND coalesce(o.ack_status, '') NOT IN ('accepted', 'partially-accepted'))",
            [],
            |r| r.get(0),
        )?)
    }

    pub fn record_export(&self, file: &str, max_version: i64, records: u64) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO exports(file, max_version, records, at) VALUES(?1, ?2, ?3, ?4)",
            params![file, max_version, records, now()],
        )?;
        Ok(())
    }
}

fn outbox_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxEntry> {
    let bad = |i: usize, s: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, s.into())
    };
    let kind: String = r.get(2)?;
    let state: String = r.get(5)?;
    Ok(OutboxEntry {
        set_name: r.get(0)?,
        batch_id: r.get(1)?,
        kind: match kind.as_str() {
            "batch" => DocKind::Batch,
            "ack" => DocKind::Ack,
            _ => return Err(bad(2, kind)),
        },
        peer: r.get(3)?,
        seq: r.get(4)?,
        state: OutboxState::parse(&state).ok_or_else(|| bad(5, state))?,
        ship_count: r.get(6)?,
        shipped_at: r.get(7)?,
        ack_status: r.get(8)?,
        ack_detail: r.get(9)?,
    })
}

/// Where a set this node sent is in its life (the outbox row's state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxState {
    /// Its number is reserved; it is being sealed.
    Sealing,
    Sealed,
    Shipped,
    Acknowledged,
}

impl OutboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Sealing => "sealing",
            OutboxState::Sealed => "sealed",
            OutboxState::Shipped => "shipped",
            OutboxState::Acknowledged => "acknowledged",
        }
    }
    fn parse(s: &str) -> Option<OutboxState> {
        [
            OutboxState::Sealing,
            OutboxState::Sealed,
            OutboxState::Shipped,
            OutboxState::Acknowledged,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// One batch being applied. Dropped without `commit`, nothing of it remains.
pub struct RecordTx<'a> {
    tx: Transaction<'a>,
    pub accepted: u64,
    pub rejected: u64,
    /// The change counter (meta 'version'), read once and kept here for the
    /// transaction; written back before commit. Nothing else writes it meanwhile:
    /// SQLite holds the write lock, and every statement of ours sets `version`, so
    /// no trigger bumps it behind our back.
    version: Option<i64>,
    /// Record keys seen in this batch: in memory up to a bound, then in SQLite's
    /// temp store, so a huge batch stays flat and a normal one costs no SQL.
    seen: HashMap<&'static str, std::collections::HashSet<Box<str>>>,
    seen_count: usize,
}

/// Keys of one batch kept in memory before the rest go to the temp store
/// (about 20 MB at most).
const SEEN_IN_MEMORY: usize = 200_000;

/// The statements for one record kind, made once per process.
struct KindSql {
    select: String,
    insert: String,
    upsert: String,
}

fn kind_sql(spec: &Spec) -> &'static KindSql {
    static ALL: std::sync::OnceLock<std::collections::HashMap<&'static str, KindSql>> =
        std::sync::OnceLock::new();
    let all = ALL.get_or_init(|| {
        crate::domain::spec::SPECS
            .iter()
            .map(|spec| {
                let cols: Vec<String> = spec.fields.iter().map(|f| column(f.name)).collect();
                let marks: Vec<String> = (1..=cols.len() + 4).map(|i| format!("?{i}")).collect();
                let sets: Vec<String> = cols
                    .iter()
                    .map(String::as_str)
                    .chain(["origin", "source_batch", "updated_at", "version"])
                    .map(|c| format!("{c} = excluded.{c}"))
                    .collect();
                let into = format!(
                    "INTO {t}({c}, origin, source_batch, updated_at, version) VALUES({m})",
                    t = spec.table,
                    c = cols.join(", "),
                    m = marks.join(", "),
                );
                let sql = KindSql {
                    select: format!(
                        "SELECT {} FROM {} WHERE {} = ?1",
                        cols.join(", "),
                        spec.table,
                        column(spec.key)
                    ),
                    upsert: format!(
                        "INSERT {into} ON CONFLICT({}) DO UPDATE SET {}",
                        column(spec.key),
                        sets.join(", ")
                    ),
                    // OR IGNORE rather than ON CONFLICT DO NOTHING: SQLite then needs
                    // no statement journal (7% of sealing). Only the key can conflict:
                    // every NOT NULL column is always bound, and a row not inserted
                    // for any other reason fails loudly on the update path.
                    insert: format!("INSERT OR IGNORE {into}"),
                };
                (spec.table, sql)
            })
            .collect()
    });
    &all[spec.table]
}

impl RecordTx<'_> {
    /// Statements are prepared once and reused for every record of a batch.
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.tx.prepare_cached(sql)?.execute(params)
    }

    fn row<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.tx.prepare_cached(sql)?.query_row(params, f)
    }

    /// The next change number (R14 exports follow them).
    fn next_version(&mut self) -> Result<i64> {
        let v = self.peek_version()? + 1;
        self.version = Some(v);
        Ok(v)
    }

    /// The change number the next change would get, without taking it.
    fn peek_version(&mut self) -> Result<i64> {
        if let Some(v) = self.version {
            return Ok(v + 1);
        }
        let v: i64 = self
            .row("SELECT value FROM meta WHERE name = 'version'", [], |r| {
                r.get(0)
            })
            .optional()?
            .unwrap_or(0);
        self.version = Some(v);
        Ok(v + 1)
    }

    /// Write the change counter back (before every commit).
    fn save_version(&self) -> Result<()> {
        if let Some(v) = self.version {
            self.exec(
                "INSERT INTO meta(name, value) VALUES('version', ?1)
                 ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value)",
                [v],
            )?;
        }
        Ok(())
    }

    /// The stored values of a record's fields, if it is stored.
    fn stored(&self, spec: &Spec, key: &str) -> Result<Option<Vec<Option<String>>>> {
        let n = spec.fields.len();
        Ok(self
            .row(&kind_sql(spec).select, [key], |r| {
                (0..n).map(|i| r.get::<_, Option<String>>(i)).collect()
            })
            .optional()?)
    }

    /// Who a stored record came from: a peer's id, or "local".
    pub fn origin_of(&self, kind: RecordKind, key: &str) -> Result<Option<String>> {
        let spec = kind.spec();
        Ok(self
            .row(
                &format!(
                    "SELECT origin FROM {} WHERE {} = ?1",
                    spec.table,
                    column(spec.key)
                ),
                [key],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The equipment's registration data (supervision's fields, R4) as an
    /// equipment record, if the equipment is on record.
    pub fn registration_record(&self, code: &str) -> Result<Option<Record>> {
        let spec = RecordKind::Equipment.spec();
        let Some(values) = self.stored(spec, code)? else {
            return Ok(None);
        };
        let fields = spec
            .fields
            .iter()
            .zip(values)
            .filter(|(f, _)| spec.owner_of(f) == Role::Supervision)
            .filter_map(|(f, v)| v.map(|v| (f.name, v)))
            .collect();
        Ok(Some(Record {
            kind: RecordKind::Equipment,
            fields,
            warnings: Vec::new(),
        }))
    }

    fn write_row(
        &mut self,
        sql: &str,
        values: &[Option<&str>],
        origin: &str,
        batch_id: Option<&str>,
        version: i64,
    ) -> Result<usize> {
        let updated_at = now();
        let params = values.iter().map(|v| v as &dyn rusqlite::ToSql).chain([
            &origin as &dyn rusqlite::ToSql,
            &batch_id as &dyn rusqlite::ToSql,
            &updated_at as &dyn rusqlite::ToSql,
            &version as &dyn rusqlite::ToSql,
        ]);
        Ok(self
            .tx
            .prepare_cached(sql)?
            .execute(rusqlite::params_from_iter(params))?)
    }

    /// Store a record sent by `sender`. A field that `sender` does not own is
    /// filled where empty but never overwritten (R4); where it differs from what
    /// is stored it is returned as a discrepancy. Nothing changes (and the change
    /// counter stays) when the stored record already says the same.
    pub fn upsert(
        &mut self,
        rec: &Record,
        sender: Role,
        origin: &str,
        batch_id: Option<&str>,
    ) -> Result<Vec<Discrepancy>> {
        let spec = rec.spec();
        let sql = kind_sql(spec);
        // Most records are new: try the insert first, and read back only on conflict.
        let fresh: Vec<Option<&str>> = spec.fields.iter().map(|f| rec.get(f.name)).collect();
        let version = self.peek_version()?;
        if self.write_row(&sql.insert, &fresh, origin, batch_id, version)? == 1 {
            self.next_version()?;
            self.effects(rec, origin, batch_id)?;
            self.accepted += 1;
            return Ok(Vec::new());
        }
        let stored = self.stored(spec, rec.key())?.unwrap_or_default();
        let mut values: Vec<Option<String>> = stored;
        values.resize(spec.fields.len(), None);
        let mut found = Vec::new();
        let mut changed = false;
        for (i, field) in spec.fields.iter().enumerate() {
            let Some(new) = rec.get(field.name) else {
                continue;
            };
            let old = values[i].as_deref();
            if old == Some(new) {
                continue;
            }
            if spec.owner_of(field) != sender && old.is_some() {
                found.push(Discrepancy {
                    kind: spec.element.to_string(),
                    key: rec.key().to_string(),
                    field: field.name.to_string(),
                    stored: old.map(str::to_string),
                    received: Some(new.to_string()),
                });
                continue;
            }
            values[i] = Some(new.to_string());
            changed = true;
        }
        if changed {
            let version = self.next_version()?;
            let values: Vec<Option<&str>> = values.iter().map(|v| v.as_deref()).collect();
            self.write_row(&sql.upsert, &values, origin, batch_id, version)?;
        }
        self.effects(rec, origin, batch_id)?;
        self.accepted += 1;
        Ok(found)
    }

    /// What some records do to the equipment register besides being stored.
    fn effects(&mut self, rec: &Record, origin: &str, batch_id: Option<&str>) -> Result<()> {
        let code = rec.get("registrationCode").unwrap_or_default();
        match rec.kind {
            RecordKind::UseRegistration => {
                // A use registration (R5, R11) is the equipment's registration data.
                let fields = rec
                    .fields
                    .iter()
                    .filter(|(k, _)| RecordKind::Equipment.spec().field(k).is_some())
                    .cloned()
                    .collect();
                let equipment = Record {
                    kind: RecordKind::Equipment,
                    fields,
                    warnings: Vec::new(),
                };
                self.upsert(&equipment, Role::Supervision, origin, batch_id)?;
                self.accepted -= 1;
            }
            RecordKind::CodeChange => {
                let (old, new) = (
                    rec.get("oldValue").unwrap_or_default(),
                    rec.get("newValue").unwrap_or_default(),
                );
                self.exec(
                    "INSERT OR IGNORE INTO code_history(change_id, field, old_value, new_value, date) VALUES(?1, ?2, ?3, ?4, ?5)",
                    params![rec.key(), rec.get("field"), old, new, rec.get("date")],
                )?;
                let version = self.next_version()?;
                if rec.get("field") == Some("registration-code") {
                    let taken: bool = self.row(
                        "SELECT count(*) FROM equipment WHERE registration_code = ?1",
                        [new],
                        |r| r.get::<_, i64>(0),
                    )? > 0;
                    if !taken {
                        self.exec(
                            "UPDATE equipment SET registration_code = ?2, version = ?3 WHERE registration_code = ?1",
                            params![old, new, version],
                        )?;
                    }
                } else {
                    self.exec(
                        "UPDATE equipment SET use_certificate = ?2, version = ?3 WHERE use_certificate = ?1",
                        params![old, new, version],
                    )?;
                }
            }
            RecordKind::ResponsibilityAssignment => {
                let version = self.next_version()?;
                self.exec(
                    "UPDATE equipment SET inspection_agency = ?2, version = ?3 WHERE registration_code = ?1",
                    params![code, rec.get("agency"), version],
                )?;
            }
            RecordKind::ResponsibilityChange => {
                let agency = (rec.get("action") == Some("grant"))
                    .then(|| rec.get("agency"))
                    .flatten();
                let version = self.next_version()?;
                self.exec(
                    "UPDATE equipment SET temporary_agency = ?2, version = ?3 WHERE registration_code = ?1",
                    params![code, agency, version],
                )?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Flag a report as coming from a national-level agency (R16).
    pub fn flag_national(&mut self, report_number: &str) -> Result<()> {
        self.exec(
            "UPDATE inspection_report SET national = 1 WHERE report_number = ?1",
            [report_number],
        )?;
        Ok(())
    }

    pub fn record_discrepancy(
        &mut self,
        peer: &str,
        batch_id: Option<&str>,
        d: &Discrepancy,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO discrepancy(at, peer, batch_id, kind, key, field, stored, received) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
            params![now(), peer, batch_id, d.kind, d.key, d.field, d.stored, d.received],
        )?;
        Ok(())
    }

    /// Keep a record back until its category's exchange starts (R9).
    pub fn defer(&mut self, peer: &str, category: &str, due: &str, xml: &str) -> Result<()> {
        self.exec(
            "INSERT INTO deferred(peer, category, due, xml) VALUES(?1, ?2, ?3, ?4)",
            params![peer, category, due, xml],
        )?;
        Ok(())
    }

    pub fn bump_counter(&mut self, name: &str, by: u64) -> Result<()> {
        self.exec(
            "INSERT INTO meta(name, value) VALUES(?1, ?2) ON CONFLICT(name) DO UPDATE SET value = value + ?2",
            params![name, by],
        )?;
        Ok(())
    }

    /// Remember that a dropped file's content was sifted (its effects are stored).
    pub fn note_drop(&mut self, tag: &str) -> Result<()> {
        self.exec(
            "INSERT OR IGNORE INTO meta(name, value) VALUES(?1, 1)",
            [format!("drop:{tag}")],
        )?;
        Ok(())
    }

    /// Commit a transaction that journals no batch (this node's own records).
    pub fn commit_local(self) -> Result<()> {
        self.save_version()?;
        self.tx.commit()?;
        Ok(())
    }

    /// True the first time a record key is seen in this batch (kept in SQLite's
    /// temp store, not in memory, so a huge batch stays flat).
    pub fn first_in_batch(&mut self, kind: &'static str, key: &str) -> Result<bool> {
        let keys = self.seen.entry(kind).or_default();
        if keys.contains(key) {
            return Ok(false);
        }
        if self.seen_count < SEEN_IN_MEMORY {
            keys.insert(Box::from(key));
            self.seen_count += 1;
            return Ok(true);
        }
        let n = self.exec(
            "INSERT OR IGNORE INTO temp.apply_seen(kind, key) VALUES(?1, ?2)",
            params![kind, key],
        )?;
        Ok(n == 1)
    }

    pub fn reject(&mut self, batch_id: &str, rej: &RecordRejection) -> Result<()> {
        self.exec(
            "INSERT OR REPLACE INTO record_result(batch_id, idx, key, code, message) VALUES(?1, ?2, ?3, ?4, ?5)",
            params![batch_id, rej.index, rej.key, rej.code, rej.message],
        )?;
        self.rejected += 1;
        Ok(())
    }

    /// Write the journal row, advance the channel and commit, all at once.
    pub fn commit(self, entry: &JournalEntry) -> Result<()> {
        self.exec(
            "INSERT INTO journal(batch_id, peer, seq, set_name, sha256, status, accepted, rejected,
               reason_code, reason_detail, received_at, acks_sent)
             VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,0)",
            params![
                entry.batch_id,
                entry.peer,
                entry.seq,
                entry.set_name,
                entry.sha256,
                entry.status.as_str(),
                entry.accepted,
                entry.rejected,
                entry.reason_code,
                entry.reason_detail,
                now()
            ],
        )?;
        self.exec(
            "INSERT INTO channel_in(peer, last_seq) VALUES(?1, ?2)
             ON CONFLICT(peer) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)",
            params![entry.peer, entry.seq],
        )?;
        self.exec(
            "DELETE FROM held WHERE peer = ?1 AND set_name = ?2",
            params![entry.peer, entry.set_name],
        )?;
        self.save_version()?;
        self.tx.commit()?;
        Ok(())
    }
}

impl Register for RecordTx<'_> {
    fn responsibility(&mut self, registration_code: &str) -> Result<Option<Responsibility>> {
        Ok(self.row(
                "SELECT inspection_agency, temporary_agency FROM equipment WHERE registration_code = ?1",
                [registration_code],
                |r| Ok(Responsibility { agency: r.get(0)?, temporary: r.get(1)? }),
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_in_a_batch_are_found_in_memory_and_past_the_memory_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.sqlite")).unwrap();
        let mut tx = store.begin_apply().unwrap();
        let n = SEEN_IN_MEMORY + 10;
        for i in 0..n {
            assert!(tx.first_in_batch("equipment", &i.to_string()).unwrap());
        }
        // One kept in memory, one past the bound (in the temp store).
        assert!(!tx.first_in_batch("equipment", "5").unwrap());
        assert!(!tx
            .first_in_batch("equipment", &(n - 3).to_string())
            .unwrap());
        assert!(tx.first_in_batch("inspectionReport", "5").unwrap());
    }
}

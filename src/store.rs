//! The node's embedded store (SQLite). Every state change is committed here
//! before the next step is taken, so a node killed at any moment resumes.

use crate::domain::{Equipment, InspectionReport};
use crate::error::{Code, Error, Result};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::path::Path;

pub struct Store {
    conn: Connection,
}

/// The status an acknowledgment reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckStatus {
    Accepted,
    PartiallyAccepted,
    Rejected,
    Duplicate,
}

impl AckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AckStatus::Accepted => "accepted",
            AckStatus::PartiallyAccepted => "partially-accepted",
            AckStatus::Rejected => "rejected",
            AckStatus::Duplicate => "duplicate",
        }
    }
    pub fn parse(s: &str) -> Option<AckStatus> {
        Some(match s {
            "accepted" => AckStatus::Accepted,
            "partially-accepted" => AckStatus::PartiallyAccepted,
            "rejected" => AckStatus::Rejected,
            "duplicate" => AckStatus::Duplicate,
            _ => return None,
        })
    }
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

/// One rejected record of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRejection {
    pub index: u64,
    pub key: String,
    pub code: String,
    pub message: String,
}

/// An item refused into quarantine/.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub at: String,
    /// None for a dropped file refused on the way out.
    pub peer: Option<String>,
    pub name: String,
    pub code: String,
    pub detail: String,
}

/// A set this node sends, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub set_name: String,
    pub batch_id: String,
    pub kind: String,
    pub peer: String,
    pub seq: Option<u64>,
    pub state: String,
    pub ship_count: u64,
    pub shipped_at: Option<String>,
    pub ack_status: Option<String>,
    pub ack_detail: Option<String>,
}

pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS channel_out(peer TEXT PRIMARY KEY, last_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS channel_in(peer TEXT PRIMARY KEY, last_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox(
  set_name TEXT PRIMARY KEY,
  batch_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  peer TEXT NOT NULL,
  seq INTEGER,
  src_name TEXT,
  state TEXT NOT NULL,
  sha256 TEXT,
  created_at TEXT NOT NULL,
  shipped_at TEXT,
  ship_count INTEGER NOT NULL DEFAULT 0,
  ack_status TEXT,
  ack_at TEXT,
  ack_detail TEXT);
CREATE INDEX IF NOT EXISTS outbox_batch ON outbox(batch_id);
CREATE TABLE IF NOT EXISTS journal(
  batch_id TEXT PRIMARY KEY,
  peer TEXT NOT NULL,
  seq INTEGER NOT NULL,
  set_name TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  status TEXT NOT NULL,
  accepted INTEGER NOT NULL,
  rejected INTEGER NOT NULL,
  reason_code TEXT,
  reason_detail TEXT,
  received_at TEXT NOT NULL,
  acks_sent INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS record_result(
  batch_id TEXT NOT NULL, idx INTEGER NOT NULL, key TEXT NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL,
  PRIMARY KEY(batch_id, idx));
CREATE TABLE IF NOT EXISTS held(
  peer TEXT NOT NULL, set_name TEXT NOT NULL, seq INTEGER NOT NULL, batch_id TEXT NOT NULL, since TEXT NOT NULL,
  PRIMARY KEY(peer, set_name));
CREATE TABLE IF NOT EXISTS quarantine(
  id INTEGER PRIMARY KEY, at TEXT NOT NULL, peer TEXT, set_name TEXT NOT NULL, code TEXT NOT NULL,
  detail TEXT NOT NULL, place TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS equipment(
  registration_code TEXT PRIMARY KEY, equipment_code TEXT, category TEXT NOT NULL, factory_serial TEXT,
  internal_number TEXT, use_certificate TEXT, user_unit TEXT NOT NULL, org_code TEXT, credit_code TEXT,
  address TEXT, district TEXT, registration_authority TEXT, registration_date TEXT, use_status TEXT,
  inspection_agency TEXT, source_batch TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS inspection_report(
  report_number TEXT PRIMARY KEY, registration_code TEXT NOT NULL, kind TEXT NOT NULL, date TEXT NOT NULL,
  conclusion TEXT NOT NULL, next_due TEXT, agency TEXT NOT NULL, approved TEXT,
  source_batch TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS report_equipment ON inspection_report(registration_code);
"#;

fn ack_status_of(s: String) -> rusqlite::Result<AckStatus> {
    AckStatus::parse(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, s.into())
    })
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a commit is on disk before the next step (the durability rule).
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store { conn })
    }

    // ---- outbound -------------------------------------------------------

    /// The batch id and sequence already reserved for a dropped file or batch id, if any.
    pub fn reservation(
        &self,
        src_name: &str,
        batch_id: Option<&str>,
    ) -> Result<Option<OutboxEntry>> {
        let by_src = self.outbox_where("src_name = ?1 AND state = 'sealing'", src_name)?;
        if by_src.is_some() {
            return Ok(by_src);
        }
        match batch_id {
            Some(id) => self.outbox_where("batch_id = ?1 AND kind = 'batch'", id),
            None => Ok(None),
        }
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
               ship_count = ship_count + 1,
               state = CASE WHEN state = 'acknowledged' THEN state ELSE 'shipped' END",
            params![set_name, batch_id, kind, peer, seq, now()],
        )?;
        Ok(())
    }

    /// Record an acknowledgment for a batch we sent. A later "duplicate" never
    /// overwrites the first definite outcome. Returns false when no batch matches.
    pub fn record_ack(
        &self,
        batch_id: Option<&str>,
        set_name: &str,
        status: &str,
        detail: &str,
    ) -> Result<bool> {
        let n = self.conn.execute(
            "UPDATE outbox SET state = 'acknowledged', ack_status = ?3, ack_detail = ?4, ack_at = ?5
             WHERE kind = 'batch' AND (batch_id = ?1 OR set_name = ?2)
               AND (ack_status IS NULL OR ack_status = 'duplicate' OR ?3 <> 'duplicate')",
            params![batch_id, set_name, status, detail, now()],
        )?;
        if n > 0 {
            return Ok(true);
        }
        let known: Option<String> = self
            .conn
            .query_row(
                "SELECT set_name FROM outbox WHERE kind = 'batch' AND (batch_id = ?1 OR set_name = ?2)",
                params![batch_id, set_name],
                |r| r.get(0),
            )
            .optional()?;
        Ok(known.is_some())
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
    pub fn begin_apply(&mut self) -> Result<ApplyTx<'_>> {
        let tx = self.conn.transaction()?;
        tx.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS apply_seen(kind TEXT, key TEXT, PRIMARY KEY(kind, key));
             DELETE FROM temp.apply_seen;",
        )?;
        Ok(ApplyTx {
            tx,
            accepted: 0,
            rejected: 0,
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
        peer: Option<&str>,
        set_name: &str,
        code: Code,
        detail: &str,
        place: &str,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO quarantine(at, peer, set_name, code, detail, place) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
            params![now(), peer, set_name, code.as_str(), detail, place],
        )?;
        Ok(())
    }

    /// Quarantined items, newest first.
    pub fn quarantined(&self) -> Result<Vec<Quarantined>> {
        let mut st = self
            .conn
            .prepare("SELECT at, peer, set_name, code, detail FROM quarantine ORDER BY id DESC")?;
        let rows = st.query_map([], |r| {
            Ok(Quarantined {
                at: r.get(0)?,
                peer: r.get(1)?,
                name: r.get(2)?,
                code: r.get(3)?,
                detail: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Channels in: (peer, last applied seq).
    pub fn channels_in(&self) -> Result<Vec<(String, u64)>> {
        let mut st = self
            .conn
            .prepare("SELECT peer, last_seq FROM channel_in ORDER BY peer")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn count(&self, table: &str) -> Result<u64> {
        let sql = match table {
            "equipment" | "inspection_report" | "journal" | "quarantine" => {
                format!("SELECT count(*) FROM {table}")
            }
            _ => return Err(Error::Other(format!("no table {table}"))),
        };
        Ok(self.conn.query_row(&sql, [], |r| r.get(0))?)
    }

    pub fn equipment(
        &self,
        registration_code: &str,
    ) -> Result<Option<(String, String, Option<String>)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT category, user_unit, org_code FROM equipment WHERE registration_code = ?1",
                [registration_code],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?)
    }

    /// Reports for a piece of equipment: (report_number, kind, date, conclusion).
    pub fn reports_of(
        &self,
        registration_code: &str,
    ) -> Result<Vec<(String, String, String, String)>> {
        let mut st = self.conn.prepare(
            "SELECT report_number, kind, date, conclusion FROM inspection_report
             WHERE registration_code = ?1 ORDER BY date",
        )?;
        let rows = st.query_map([registration_code], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

fn outbox_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxEntry> {
    Ok(OutboxEntry {
        set_name: r.get(0)?,
        batch_id: r.get(1)?,
        kind: r.get(2)?,
        peer: r.get(3)?,
        seq: r.get(4)?,
        state: r.get(5)?,
        ship_count: r.get(6)?,
        shipped_at: r.get(7)?,
        ack_status: r.get(8)?,
        ack_detail: r.get(9)?,
    })
}

/// One batch being applied. Dropped without `commit`, nothing of it remains.
pub struct ApplyTx<'a> {
    tx: Transaction<'a>,
    pub accepted: u64,
    pub rejected: u64,
}

impl ApplyTx<'_> {
    pub fn upsert_equipment(&mut self, e: &Equipment, batch_id: &str) -> Result<()> {
        self.tx.execute(
            "INSERT INTO equipment(registration_code, equipment_code, category, factory_serial, internal_number,
               use_certificate, user_unit, org_code, credit_code, address, district, registration_authority,
               registration_date, use_status, inspection_agency, source_batch, updated_at)
             VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)
             ON CONFLICT(registration_code) DO UPDATE SET equipment_code=excluded.equipment_code,
               category=excluded.category, factory_serial=excluded.factory_serial,
               internal_number=excluded.internal_number, use_certificate=excluded.use_certificate,
               user_unit=excluded.user_unit, org_code=excluded.org_code, credit_code=excluded.credit_code,
               address=excluded.address, district=excluded.district,
               registration_authority=excluded.registration_authority,
               registration_date=excluded.registration_date, use_status=excluded.use_status,
               inspection_agency=excluded.inspection_agency, source_batch=excluded.source_batch,
               updated_at=excluded.updated_at",
            params![
                e.registration_code, e.equipment_code, e.category, e.factory_serial, e.internal_number,
                e.use_certificate, e.user_unit, e.org_code, e.credit_code, e.address, e.district,
                e.registration_authority, e.registration_date, e.use_status, e.inspection_agency,
                batch_id, now()
            ],
        )?;
        self.accepted += 1;
        Ok(())
    }

    pub fn upsert_report(&mut self, r: &InspectionReport, batch_id: &str) -> Result<()> {
        self.tx.execute(
            "INSERT INTO inspection_report(report_number, registration_code, kind, date, conclusion, next_due,
               agency, approved, source_batch, updated_at)
             VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)
             ON CONFLICT(report_number) DO UPDATE SET registration_code=excluded.registration_code,
               kind=excluded.kind, date=excluded.date, conclusion=excluded.conclusion,
               next_due=excluded.next_due, agency=excluded.agency, approved=excluded.approved,
               source_batch=excluded.source_batch, updated_at=excluded.updated_at",
            params![
                r.report_number, r.registration_code, r.kind, r.date, r.conclusion, r.next_due,
                r.agency, r.approved, batch_id, now()
            ],
        )?;
        self.accepted += 1;
        Ok(())
    }

    /// True the first time a record key is seen in this batch (kept in SQLite's
    /// temp store, not in memory, so a huge batch stays flat).
    pub fn first_in_batch(&mut self, kind: &str, key: &str) -> Result<bool> {
        let n = self.tx.execute(
            "INSERT OR IGNORE INTO temp.apply_seen(kind, key) VALUES(?1, ?2)",
            params![kind, key],
        )?;
        Ok(n == 1)
    }

    pub fn reject(&mut self, batch_id: &str, rej: &RecordRejection) -> Result<()> {
        self.tx.execute(
            "INSERT OR REPLACE INTO record_result(batch_id, idx, key, code, message) VALUES(?1, ?2, ?3, ?4, ?5)",
            params![batch_id, rej.index, rej.key, rej.code, rej.message],
        )?;
        self.rejected += 1;
        Ok(())
    }

    /// Write the journal row, advance the channel and commit, all at once.
    pub fn commit(self, entry: &JournalEntry) -> Result<()> {
        self.tx.execute(
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
        self.tx.execute(
            "INSERT INTO channel_in(peer, last_seq) VALUES(?1, ?2)
             ON CONFLICT(peer) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)",
            params![entry.peer, entry.seq],
        )?;
        self.tx.execute(
            "DELETE FROM held WHERE peer = ?1 AND set_name = ?2",
            params![entry.peer, entry.set_name],
        )?;
        self.tx.commit()?;
        Ok(())
    }
}

//! The node's embedded store (SQLite). Every state change is committed here
//! before the next step is taken, so a node killed at any moment resumes.

use crate::context::clock::now;
use crate::wire::ack::{AckStatus, RecordRejection};

mod audit;
pub(crate) mod db;
mod journal;
pub mod lease;
pub mod migrate;
mod outbox;
mod quarantine;
mod records;
pub mod views;

use crate::context::error::{Code, Error, Result};
use crate::domain::rules::{Register, Responsibility};
use crate::domain::spec::{column, Spec, SPECS};
use crate::domain::{Record, RecordKind, Role};
use crate::wire::document::DocKind;
pub use audit::{AlertRow, AuditEntry};
use db::{params, Db};
pub use outbox::{AckFacts, AckMatch, OutboxEntry, OutboxState, PeerState};
pub use quarantine::{QuarantineKind, QuarantineState, Quarantined};
pub use records::RecordTx;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

pub struct Store {
    db: Db,
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
    /// When its set's marker arrived in inbound/ (RFC 3339), if known.
    pub arrived_at: Option<String>,
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

/// The page cache of a store opened without a setting (tools, tests), in MiB.
pub const DEFAULT_CACHE_MB: u64 = 128;

impl Store {
    /// A SQLite store with a page cache of [`DEFAULT_CACHE_MB`].
    pub fn open(path: &Path) -> Result<Store> {
        Store::open_with(path, DEFAULT_CACHE_MB)
    }

    /// A SQLite store with a page cache of `cache_mb` MiB (`store_cache_mb`).
    pub fn open_with(path: &Path, cache_mb: u64) -> Result<Store> {
        let conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.set_prepared_statement_cache_capacity(128);
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: a commit is on disk before the next step (the durability rule).
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Records arrive in random key order: every insert lands on a random page
        // of each key index, so the indexes are kept in memory, and a batch's
        // pages stay in the cache until its commit instead of spilling to the WAL.
        conn.pragma_update(None, "cache_size", -(cache_mb.max(2) as i64) * 1024)?;
        // Checkpoints every 256 MiB of WAL rather than every 4 MiB: a page that
        // several batches in a row change (random keys do) reaches the store
        // file once (docs/performance.md). Durability is the WAL's, synced at
        // every commit; the WAL file is cut back to 256 MiB after a checkpoint.
        conn.pragma_update(None, "wal_autocheckpoint", 65536)?;
        conn.pragma_update(None, "journal_size_limit", 256i64 << 20)?;
        let db = Db::Lite(conn);
        migrate::migrate(&db)?;
        Ok(Store { db })
    }

    /// A store on a PostgreSQL server (`postgres://...`), migrated to [`migrate::LATEST`].
    pub fn open_postgres(url: &str) -> Result<Store> {
        let db = Db::postgres(url)?;
        migrate::migrate(&db)?;
        Ok(Store { db })
    }

    /// Which database this store is on, for messages: "SQLite" or "PostgreSQL".
    pub fn backend(&self) -> &'static str {
        if self.db.is_pg() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    }

    /// The node id this store belongs to, if it has been told.
    pub fn node_identity(&self) -> Result<Option<String>> {
        self.db.opt(
            "SELECT value FROM node_info WHERE name = 'node_id'",
            params![],
            |r| r.get(0),
        )
    }

    pub fn set_node_identity(&self, id: &str) -> Result<()> {
        self.db.exec(
            "INSERT INTO node_info(name, value) VALUES('node_id', ?1)
             ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            params![id],
        )?;
        Ok(())
    }

    /// Count one more attempt at an item (a received set, a dropped file) before
    /// any work on it starts, durably: an item that stops the process (killed
    /// for memory, a crash) is known on the next start. Returns the count.
    pub fn begin_attempt(&self, place: &str, name: &str) -> Result<u64> {
        self.db.one(
            "INSERT INTO attempts(place, name, count) VALUES(?1, ?2, 1)
             ON CONFLICT(place, name) DO UPDATE SET count = attempts.count + 1 RETURNING count",
            params![place, name],
            |r| r.get(0),
        )
    }

    /// The item's work ended (whatever its outcome): its count starts afresh.
    pub fn end_attempt(&self, place: &str, name: &str) -> Result<()> {
        self.db.exec(
            "DELETE FROM attempts WHERE place = ?1 AND name = ?2",
            params![place, name],
        )?;
        Ok(())
    }

    /// Whether anything was ever received or sent through this store.
    pub fn has_history(&self) -> Result<bool> {
        self.db.one(
            "SELECT EXISTS(SELECT 1 FROM journal) OR EXISTS(SELECT 1 FROM outbox)
                 OR EXISTS(SELECT 1 FROM channel_in) OR EXISTS(SELECT 1 FROM channel_out)",
            params![],
            |r| r.get(0),
        )
    }

    // ---- outbound -------------------------------------------------------

    // ---- inbound --------------------------------------------------------

    pub fn count(&self, table: &str) -> Result<u64> {
        let known = SPECS.iter().any(|sp| sp.table == table)
            || ["journal", "quarantine", "discrepancy", "deferred"].contains(&table);
        if !known {
            return Err(Error::Other(format!("no table {table}")));
        }
        self.db
            .one(&format!("SELECT count(*) FROM {table}"), params![], |r| {
                r.get(0)
            })
    }

    pub fn bump_counter(&self, name: &str, by: u64) -> Result<()> {
        self.db.exec(
            "INSERT INTO meta(name, value) VALUES(?1, ?2) ON CONFLICT(name) DO UPDATE SET value = meta.value + ?2",
            params![name, by])?;
        Ok(())
    }

    pub fn counter(&self, name: &str) -> Result<u64> {
        Ok(self
            .db
            .opt(
                "SELECT value FROM meta WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )?
            .unwrap_or(0))
    }

    /// This side's own records of one kind changed since change number
    /// `since` (R14), oldest first, with their change numbers.
    pub fn changed_since(
        &self,
        spec: &Spec,
        since: i64,
        mut each: impl FnMut(Record, i64) -> Result<()>,
    ) -> Result<()> {
        let cols: Vec<String> = spec.fields.iter().map(|f| column(f.name)).collect();
        let sql = format!(
            "SELECT {}, version FROM {} WHERE origin = 'local' AND version > ?1 ORDER BY version",
            cols.join(", "),
            spec.table
        );
        self.db.each(&sql, params![since], |row| {
            each(record_of(spec, row)?, row.get(cols.len())?)
        })
    }

    /// The schema version (see [`migrate`]).
    pub fn schema_version(&self) -> Result<u32> {
        migrate::version(&self.db)
    }

    fn db(&self) -> &Db {
        &self.db
    }

    /// The change number up to which an export has been acknowledged (R14):
    /// every set sealed from it answered accepted or partially accepted.
    pub fn last_acknowledged_export(&self) -> Result<i64> {
        self.db.one(
            "SELECT coalesce(max(e.max_version), 0) FROM exports e
             WHERE EXISTS (SELECT 1 FROM outbox o WHERE o.src_name = e.file)
               AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.src_name = e.file
                               AND coalesce(o.ack_status, '') NOT IN ('accepted', 'partially-accepted'))",
            params![],
            |r| r.get(0))
    }

    /// Whether this side's own records of `spec` changed after every export made
    /// so far (acknowledged or not).
    pub fn changed_after_last_export(&self, spec: &Spec) -> Result<bool> {
        let last: i64 = self.db.one(
            "SELECT coalesce(max(max_version), 0) FROM exports",
            params![],
            |r| r.get(0),
        )?;
        let sql = format!(
            "SELECT count(*) FROM (SELECT 1 FROM {} WHERE origin = 'local' AND version > ?1 LIMIT 1) AS c",
            spec.table
        );
        Ok(self.db.one(&sql, params![last], |r| r.get::<i64>(0))? > 0)
    }

    /// Export files made and not yet answered: (file, whether any set of it
    /// was sealed); a file sealed into sets is answered when every set is.
    pub fn exports_unanswered(&self) -> Result<Vec<(String, bool)>> {
        self.db.all(
            "SELECT e.file, EXISTS(SELECT 1 FROM outbox o WHERE o.src_name = e.file)
             FROM exports e
             WHERE NOT EXISTS(SELECT 1 FROM outbox o WHERE o.src_name = e.file)
                OR EXISTS(SELECT 1 FROM outbox o WHERE o.src_name = e.file AND o.ack_status IS NULL)",
            params![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    pub fn record_export(&self, file: &str, max_version: i64, records: u64) -> Result<()> {
        self.db.exec(
            "INSERT INTO exports(file, max_version, records, at) VALUES(?1, ?2, ?3, ?4)
             ON CONFLICT(file) DO UPDATE SET max_version = excluded.max_version,
               records = excluded.records, at = excluded.at",
            params![file, max_version, records, now()],
        )?;
        Ok(())
    }
}

/// A record of kind `spec` from a row whose first columns are its fields, in
/// the spec's order (NULL: the field is absent).
fn record_of(spec: &Spec, row: &db::Row<'_>) -> Result<Record> {
    let mut rec = Record {
        kind: spec.kind,
        fields: Vec::new(),
        warnings: Vec::new(),
    };
    for (i, f) in spec.fields.iter().enumerate() {
        if let Some(v) = row.get::<Option<String>>(i)? {
            rec.fields.push((f.name, v));
        }
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::records::SEEN_IN_MEMORY;
    use super::*;

    #[test]
    fn a_store_runs_with_the_settings_its_durability_and_speed_rely_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(&dir.path().join("s.sqlite"), 64).unwrap();
        let pragma = |name: &str| -> String {
            store
                .db
                .one(&format!("PRAGMA {name}"), params![], |r| r.get(0))
                .unwrap()
        };
        // WAL synced at every commit (FULL is 2): an acknowledgment leaves only after it.
        assert_eq!(pragma("journal_mode"), "wal");
        assert_eq!(pragma("synchronous"), "2");
        // store_cache_mb, in KiB as SQLite counts a negative cache size.
        assert_eq!(pragma("cache_size"), "-65536");
        assert_eq!(pragma("wal_autocheckpoint"), "65536");
    }

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

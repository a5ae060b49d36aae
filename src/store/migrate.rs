//! Numbered migrations. The store's schema version is SQLite's `user_version`;
//! opening a store runs, each in its own transaction with the new version, every
//! migration above it. A store of a newer sedx is refused. A field added to
//! domain/spec.rs, or a column to a table, comes with a new migration here.

use crate::context::error::{Error, Result};
use crate::domain::spec::{column, SPECS};
use crate::domain::RecordKind;
use rusqlite::Connection;

struct Migration {
    version: u32,
    what: &'static str,
    run: fn(&Connection) -> Result<()>,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        what: "journal, channels, outbox, quarantine and one table per record kind",
        run: initial,
    },
    Migration {
        version: 2,
        what: "pull watch, quarantine life cycle, ids of change requests",
        run: add_new_columns,
    },
    Migration {
        version: 3,
        what: "the console's audit trail, alert states and records per day",
        run: console_tables,
    },
];

/// The schema version this sedx writes.
pub const LATEST: u32 = 3;

/// The store's schema version (0: a store from before versions, or a new file).
pub fn version(conn: &Connection) -> Result<u32> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

/// Bring the store up to [`LATEST`], one migration at a time.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let found = version(conn)?;
    if found > LATEST {
        return Err(Error::StoreNewer {
            found,
            known: LATEST,
        });
    }
    let had_tables: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'journal'",
        [],
        |r| r.get(0),
    )?;
    for m in MIGRATIONS.iter().filter(|m| m.version > found) {
        let tx = conn.transaction()?;
        (m.run)(&tx)?;
        tx.pragma_update(None, "user_version", m.version)?;
        tx.commit()?;
        if had_tables {
            tracing::info!(version = m.version, "store upgraded: {}", m.what);
        }
    }
    Ok(())
}

fn initial(conn: &Connection) -> Result<()> {
    conn.execute_batch(SCHEMA)?;
    conn.execute_batch("INSERT OR IGNORE INTO meta(name, value) VALUES('version', 0);")?;
    conn.execute_batch(&record_tables())?;
    Ok(())
}

/// Version 1: the tables of the first sedx (before stores had a version).
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
  ack_detail TEXT,
  resent_at TEXT);
CREATE TABLE IF NOT EXISTS peer_state(
  peer TEXT PRIMARY KEY, failures INTEGER NOT NULL DEFAULT 0, next_attempt INTEGER NOT NULL DEFAULT 0,
  last_error TEXT, last_error_at TEXT, last_ok_at TEXT);
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
CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS code_history(
  change_id TEXT PRIMARY KEY, field TEXT NOT NULL, old_value TEXT NOT NULL, new_value TEXT NOT NULL, date TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS discrepancy(
  id INTEGER PRIMARY KEY, at TEXT NOT NULL, peer TEXT NOT NULL, batch_id TEXT, kind TEXT NOT NULL, key TEXT NOT NULL,
  field TEXT NOT NULL, stored TEXT, received TEXT);
CREATE TABLE IF NOT EXISTS deferred(
  id INTEGER PRIMARY KEY, peer TEXT NOT NULL, category TEXT NOT NULL, due TEXT NOT NULL, xml TEXT NOT NULL,
  released_in TEXT);
CREATE TABLE IF NOT EXISTS attempts(place TEXT NOT NULL, name TEXT NOT NULL, count INTEGER NOT NULL,
  PRIMARY KEY(place, name));
CREATE TABLE IF NOT EXISTS node_info(name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS exports(
  file TEXT PRIMARY KEY, max_version INTEGER NOT NULL, records INTEGER NOT NULL, at TEXT NOT NULL);
"#;

/// One table per record kind, its columns from the kind's fields.
fn record_tables() -> String {
    let mut sql = String::new();
    for spec in SPECS {
        let cols: Vec<String> = spec
            .fields
            .iter()
            .map(|f| format!("{} TEXT", column(f.name)))
            .collect();
        let extra = match spec.kind {
            RecordKind::Equipment => ", temporary_agency TEXT",
            RecordKind::InspectionReport => ", national INTEGER NOT NULL DEFAULT 0",
            _ => "",
        };
        // Rows a local system writes directly (no exporter of its own, R14) get a
        // change number from the triggers, so `sedx export` finds them.
        sql.push_str(&format!(
            "CREATE TABLE IF NOT EXISTS {t}({c}{extra}, origin TEXT NOT NULL DEFAULT 'local', source_batch TEXT,
               updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')), version INTEGER,
               PRIMARY KEY({k}));
             CREATE INDEX IF NOT EXISTS {t}_version ON {t}(version);
             CREATE TRIGGER IF NOT EXISTS {t}_stamp AFTER INSERT ON {t} WHEN NEW.version IS NULL BEGIN
               UPDATE meta SET value = value + 1 WHERE name = 'version';
               UPDATE {t} SET version = (SELECT value FROM meta WHERE name = 'version') WHERE rowid = NEW.rowid;
             END;
             CREATE TRIGGER IF NOT EXISTS {t}_touch AFTER UPDATE ON {t} WHEN NEW.version IS OLD.version BEGIN
               UPDATE meta SET value = value + 1 WHERE name = 'version';
               UPDATE {t} SET version = (SELECT value FROM meta WHERE name = 'version') WHERE rowid = NEW.rowid;
             END;\n",
            t = spec.table,
            c = cols.join(", "),
            k = column(spec.key),
        ));
    }
    sql.push_str(
        "CREATE INDEX IF NOT EXISTS inspection_report_equipment ON inspection_report(registration_code);
         CREATE INDEX IF NOT EXISTS construction_notice_equipment ON construction_notice(registration_code);",
    );
    sql
}

/// Version 2: columns added for the pull watch, the quarantine's life cycle
/// (table, column, type).
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("outbox", "taken_at", "TEXT"),
    ("peer_state", "last_pull_at", "TEXT"),
    ("peer_state", "pull_alert_at", "TEXT"),
    ("quarantine", "kind", "TEXT"),
    ("quarantine", "state", "TEXT NOT NULL DEFAULT 'open'"),
    ("quarantine", "closed_at", "TEXT"),
    ("quarantine", "closed_by", "TEXT"),
    ("quarantine", "note", "TEXT"),
];

/// Version 2: [`ADDED_COLUMNS`], and every field of domain/spec.rs that a
/// record table lacks (a responsibility change's requestId), empty.
fn add_new_columns(conn: &Connection) -> Result<()> {
    for (table, col, ty) in ADDED_COLUMNS {
        let n: i64 = conn.query_row(
            &format!("SELECT count(*) FROM pragma_table_info('{table}') WHERE name = ?1"),
            [col],
            |r| r.get(0),
        )?;
        if n == 0 {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {col} {ty}"))?;
        }
    }
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS outbox_left_for_pull ON outbox(peer) WHERE taken_at IS NULL",
    )?;
    for spec in SPECS {
        let mut st = conn.prepare(&format!(
            "SELECT name FROM pragma_table_info('{}')",
            spec.table
        ))?;
        let have: Vec<String> = st
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for f in spec.fields {
            let col = column(f.name);
            if !have.contains(&col) {
                conn.execute_batch(&format!("ALTER TABLE {} ADD COLUMN {col} TEXT", spec.table))?;
            }
        }
    }
    Ok(())
}

/// Version 3: what the console and the alerts keep. `audit` is append-only;
/// `alert` holds one row per condition that was raised (cleared when resolved),
/// so that a restart neither repeats nor forgets an alert; `daily_records`
/// counts applied records per Shanghai day, direction and kind for the charts;
/// a batch's timeline gains when its file was dropped (outbox) and when its set
/// arrived (journal).
fn console_tables(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS audit(
           id INTEGER PRIMARY KEY, at TEXT NOT NULL, user TEXT NOT NULL, action TEXT NOT NULL,
           target TEXT NOT NULL, outcome TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS alert(
           key TEXT PRIMARY KEY, kind TEXT NOT NULL, subject TEXT NOT NULL, detail TEXT NOT NULL,
           since TEXT NOT NULL, raised_at TEXT, delivered INTEGER NOT NULL DEFAULT 0,
           resolved_at TEXT, resolved_delivered INTEGER NOT NULL DEFAULT 0);
         CREATE TABLE IF NOT EXISTS daily_records(
           day TEXT NOT NULL, direction TEXT NOT NULL, kind TEXT NOT NULL, records INTEGER NOT NULL,
           PRIMARY KEY(day, direction, kind));
         ALTER TABLE outbox ADD COLUMN dropped_at TEXT;
         ALTER TABLE journal ADD COLUMN arrived_at TEXT;",
    )?;
    Ok(())
}

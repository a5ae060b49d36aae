//! A store made by sedx before stores had a schema version (tests/fixtures/
//! store-v0.sqlite, made by tests/fixtures/make-store-v0.sh from commit c13896e)
//! is upgraded in place with nothing lost, to the same shape as a new store.

use sedx::store::{migrate, QuarantineKind, QuarantineState, Store};
use std::collections::BTreeSet;
use std::path::Path;

fn fixture(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("store.sqlite");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v0.sqlite"),
        &path,
    )
    .unwrap();
    path
}

fn count(db: &Path, table: &str) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// Every table's columns and every index, as sets (columns added by a
/// migration come last in their table, which does not matter).
fn shape(db: &Path) -> BTreeSet<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut out = BTreeSet::new();
    let names: Vec<(String, String)> = conn
        .prepare("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (kind, name) in names {
        out.insert(format!("{kind} {name}"));
        if kind == "table" {
            let cols: Vec<(String, String)> = conn
                .prepare(&format!(
                    "SELECT name, type FROM pragma_table_info('{name}')"
                ))
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            for (c, t) in cols {
                out.insert(format!("column {name}.{c} {t}"));
            }
        }
    }
    out
}

#[test]
fn a_store_from_before_versions_is_upgraded_with_nothing_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let db = fixture(tmp.path());
    let before: Vec<(&str, i64)> = [
        "equipment",
        "inspection_report",
        "responsibility_change_request",
        "construction_notice",
        "journal",
        "outbox",
        "quarantine",
        "channel_in",
        "channel_out",
    ]
    .into_iter()
    .map(|t| (t, count(&db, t)))
    .collect();
    assert_eq!(
        before.iter().map(|b| b.1).collect::<Vec<_>>(),
        [2, 1, 1, 1, 1, 2, 1, 1, 1],
        "the fixture as made"
    );
    let store = Store::open(&db).unwrap();
    assert_eq!(store.schema_version().unwrap(), migrate::LATEST);
    drop(store);
    for (table, n) in &before {
        assert_eq!(count(&db, table), *n, "{table}: nothing lost");
    }
    // What the old rows hold reads back, in the new types.
    let store = Store::open(&db).unwrap();
    let q = store.quarantine_all().unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(
        (q[0].kind, q[0].state, q[0].code.as_str()),
        (QuarantineKind::Drop, QuarantineState::Open, "XML-MALFORMED")
    );
    let outbox = store.outbox_all().unwrap();
    assert!(outbox
        .iter()
        .any(|e| e.kind == sedx::wire::document::DocKind::Batch && e.seq == Some(1)));
    assert_eq!(
        store.count("journal").unwrap(),
        1,
        "the applied batch is still known (never applied twice)"
    );
    // The new columns work on old rows: the old change request awaits a decision.
    let undecided = sedx::store::views::undecided(&store, None).unwrap();
    assert_eq!(undecided.len(), 1);
    assert_eq!(undecided[0].id, "Q-1");
    drop(store);

    // The same shape as a store made new today.
    let fresh = tmp.path().join("fresh.sqlite");
    drop(Store::open(&fresh).unwrap());
    assert_eq!(shape(&db), shape(&fresh));
    // Opening again changes nothing.
    drop(Store::open(&db).unwrap());
    assert_eq!(shape(&db), shape(&fresh));
}

#[test]
fn a_store_of_a_newer_sedx_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store.sqlite");
    drop(Store::open(&db).unwrap());
    rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", migrate::LATEST + 1)
        .unwrap();
    let err = Store::open(&db).err().expect("refused");
    assert!(
        matches!(err, sedx::Error::StoreNewer { found, known } if found == migrate::LATEST + 1 && known == migrate::LATEST),
        "{err}"
    );
}

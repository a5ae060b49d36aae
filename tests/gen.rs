//! `sedx gen` data through the whole exchange: every injected defect is refused
//! with its reason code, everything else arrives, and a seed reproduces the data.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::fs;

fn gen(out: &std::path::Path, seed: &str) -> String {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_sedx"))
        .args([
            "gen",
            "--out",
            out.to_str().unwrap(),
            "--records",
            "3000",
            "--seed",
            seed,
            "--defects",
            "0.1",
            "--batch-size",
            "1000",
            "--to",
            SUP,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn generated_city_data_crosses_with_every_defect_refused_by_its_code() {
    let p = Pair::new();
    let data = p.tmp.path().join("gen");
    gen(&data, "42");
    let again = p.tmp.path().join("gen-again");
    gen(&again, "42");
    assert_eq!(
        fs::read(data.join("gen-000001.xml")).unwrap(),
        fs::read(again.join("gen-000001.xml")).unwrap(),
        "same seed, same data"
    );
    let other = p.tmp.path().join("gen-other");
    gen(&other, "43");
    assert_ne!(
        fs::read(data.join("gen-000001.xml")).unwrap(),
        fs::read(other.join("gen-000001.xml")).unwrap()
    );

    let manifest = fs::read_to_string(data.join("manifest.csv")).unwrap();
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    let mut kept_home = 0;
    for line in manifest.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let n: u64 = f[2].parse().unwrap();
        if f[1] == "KEPT-HOME" {
            kept_home = n;
        } else {
            *expected.entry(f[1].to_string()).or_default() += n;
        }
    }
    assert!(expected.values().sum::<u64>() > 100, "{manifest}");
    let files: Vec<String> = files_in(&data)
        .into_iter()
        .filter(|f| f.starts_with("gen-"))
        .collect();
    assert!((3..=4).contains(&files.len()), "{files:?}");
    let n = files.len() as u64;
    for f in &files {
        fs::rename(data.join(f), p.insp.join("outbound").join(f)).unwrap();
    }
    let r = p.pass(&p.insp);
    assert_eq!((r.sealed, r.shipped), (n, n));
    let mut refused: BTreeMap<String, u64> = BTreeMap::new();
    for f in files_in(&p.insp.join("quarantine"))
        .iter()
        .filter(|f| f.ends_with(".rejected.txt"))
    {
        for line in fs::read_to_string(p.insp.join("quarantine").join(f))
            .unwrap()
            .lines()
        {
            *refused
                .entry(line.split('\t').nth(2).unwrap().to_string())
                .or_default() += 1;
        }
    }
    assert_eq!(
        refused,
        expected.into_iter().filter(|(_, n)| *n > 0).collect()
    );
    let status = String::from_utf8(sedx(&p.insp, &["status"]).stdout).unwrap();
    assert!(
        status.contains(&format!("{kept_home} non-statutory report(s) kept home")),
        "{status}"
    );

    let r = p.pass(&p.sup);
    assert_eq!((r.applied, r.quarantined), (n, 0));
    let db = p.sup.join("store.sqlite");
    let isb = p.insp.join("store.sqlite");
    // What arrived is exactly what the sender accepted into its own register.
    assert_eq!(
        sql_count(&db, "SELECT count(*) FROM equipment"),
        sql_count(&isb, "SELECT count(*) FROM equipment")
    );
    assert_eq!(
        sql_count(&db, "SELECT count(*) FROM inspection_report"),
        sql_count(&isb, "SELECT count(*) FROM inspection_report")
    );
    assert_eq!(sql_count(&db, "SELECT count(*) FROM record_result"), 0);
    let total: i64 = sql_count(&db, "SELECT count(*) FROM equipment")
        + sql_count(&db, "SELECT count(*) FROM inspection_report");
    assert_eq!(
        total as u64 + refused.values().sum::<u64>() + kept_home,
        3000
    );
}

//! `sedx gen` data through the whole exchange: every injected defect is refused
//! with its reason code, everything else arrives, and a seed reproduces the data.

use crate::common::*;
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

/// Every value of `<tag>` in the batch files of `dir`.
fn values(dir: &std::path::Path, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        if !e.file_name().to_string_lossy().ends_with(".xml") {
            continue;
        }
        let text = fs::read_to_string(e.path()).unwrap();
        let mut rest = text.as_str();
        while let Some(a) = rest.find(&open) {
            let from = a + open.len();
            let b = rest[from..].find(&close).unwrap();
            out.push(rest[from..from + b].to_string());
            rest = &rest[from + b..];
        }
    }
    out
}

fn run_gen(out: &std::path::Path, extra: &[&str]) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_sedx"))
        .args([
            "gen",
            "--out",
            out.to_str().unwrap(),
            "--records",
            "20000",
            "--seed",
            "5",
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn generated_data_spreads_over_the_city_the_decades_and_the_agencies() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("insp");
    run_gen(&data, &[]);
    let codes = values(&data, "registrationCode");
    let equipment: std::collections::BTreeSet<String> = values(&data, "equipment")
        .iter()
        .map(|e| {
            e[..e.find("</registrationCode>").unwrap()]
                .trim_start_matches("<registrationCode>")
                .to_string()
        })
        .collect();
    assert!(equipment.len() > 9_000, "{}", equipment.len());
    assert_eq!(
        equipment.len(),
        values(&data, "equipment").len(),
        "every registration code is unique"
    );
    // Districts: all sixteen, weighted like the city (Pudong largest).
    let mut districts: BTreeMap<String, u64> = BTreeMap::new();
    for d in values(&data, "district") {
        *districts.entry(d).or_default() += 1;
    }
    assert!(districts.len() >= 16, "{districts:?}");
    let largest = districts.iter().max_by_key(|d| d.1).unwrap().0.clone();
    assert_eq!(
        largest, "310115",
        "Pudong has the most equipment: {districts:?}"
    );
    // Divisions of their period in the codes (Nanhui, Luwan, Zhabei, Chongming county).
    for old in ["310119", "310103", "310108", "310230"] {
        assert!(
            codes.iter().any(|c| &c[4..10] == old),
            "no code of division {old}"
        );
    }
    // Registration months over decades.
    let months: std::collections::BTreeSet<&str> = codes.iter().map(|c| &c[10..16]).collect();
    let years: std::collections::BTreeSet<&str> = codes.iter().map(|c| &c[10..14]).collect();
    assert!(months.len() > 300, "{} months", months.len());
    assert!(years.len() >= 35, "{years:?}");
    // Several agencies, each with a real share; reports by the responsible one.
    let mut agencies: BTreeMap<String, u64> = BTreeMap::new();
    for a in values(&data, "inspectionAgency") {
        *agencies.entry(a).or_default() += 1;
    }
    for a in [
        sedx::tools::generate::CITY_INSTITUTE,
        sedx::tools::generate::ELEVATOR_STATION,
        sedx::tools::generate::NATIONAL_CRANES,
        "上海市浦东新区特种设备监督检验所",
    ] {
        assert!(
            agencies.get(a).copied().unwrap_or(0) > 100,
            "{a}: {agencies:?}"
        );
    }
    assert!(agencies.len() >= 7, "{agencies:?}");
    let reports = values(&data, "agency");
    assert!(reports.len() > 9_000);

    // The supervision side: registration data, no reports, no technical fields.
    let sup_data = tmp.path().join("sup");
    run_gen(&sup_data, &["--side", "supervision"]);
    assert!(values(&sup_data, "inspectionReport").is_empty());
    assert!(values(&sup_data, "factorySerial").is_empty());
    assert!(values(&sup_data, "registrationDate").len() >= 20_000);
    let text = fs::read_to_string(sup_data.join("gen-000001.xml")).unwrap();
    assert!(text.contains("from=\"sup-city\""), "{}", &text[..200]);
    // ... and a hub imports it refusing nothing.
    let p = Pair::new();
    for e in fs::read_dir(&sup_data).unwrap().flatten() {
        if !e.file_name().to_string_lossy().ends_with(".xml") {
            continue;
        }
        let out = sedx(&p.sup, &["import", e.path().to_str().unwrap()]);
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && said.contains(", 0 refused"),
            "{said}"
        );
    }
}

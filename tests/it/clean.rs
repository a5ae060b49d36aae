//! `sedx clean` on small dirty registers with known problems (CSV in UTF-8 and
//! GBK) and on `sedx gen` output with injected defects: every count matches.

use crate::common::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

fn clean(file: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sedx"))
        .arg("clean")
        .arg(file)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

/// Problem counts by code from the problems CSV.
fn counts(problems_csv: &Path) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for line in fs::read_to_string(problems_csv).unwrap().lines().skip(1) {
        let code = line.split(',').nth(2).unwrap().to_string();
        *m.entry(code).or_default() += 1;
    }
    m
}

fn expected(file: &Path) -> BTreeMap<String, u64> {
    fs::read_to_string(file)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let (c, n) = l.split_once(',').unwrap();
            (c.to_string(), n.parse().unwrap())
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[test]
fn dirty_registers_report_every_known_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = repo().join("samples/registers");
    for name in ["supervision-register", "agency-register-gbk"] {
        let out = clean(
            &dir.join(format!("{name}.csv")),
            tmp.path(),
            &["--max-problems", "100"],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            counts(&tmp.path().join(format!("{name}.problems.csv"))),
            expected(&dir.join(format!("{name}.expected.csv"))),
            "{name}"
        );
    }
    let cleaned = fs::read_to_string(tmp.path().join("supervision-register.clean.csv")).unwrap();
    assert!(
        cleaned
            .contains("\n31103101012006050008,3110,SH-E-06-1188,上海外滩置业有限公司,63169638-2,"),
        "full width and spaces normalised:\n{cleaned}"
    );
    assert!(
        cleaned.contains("上海浦东热力有限公司,08799493-2,91310112087994932F"),
        "organization code derived from the credit code:\n{cleaned}"
    );
    let gbk = fs::read_to_string(tmp.path().join("agency-register-gbk.clean.csv")).unwrap();
    assert!(
        gbk.contains("上海虹口商厦有限公司"),
        "GBK read, UTF-8 written"
    );
    let summary = String::from_utf8(
        clean(
            &dir.join("supervision-register.csv"),
            tmp.path(),
            &["--max-problems", "100"],
        )
        .stdout,
    )
    .unwrap();
    assert!(
        summary.starts_with("11 rows, 8 problems") && summary.contains("310101"),
        "{summary}"
    );
}

#[test]
fn more_problems_than_the_threshold_is_a_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let file = repo().join("samples/registers/supervision-register.csv");
    assert_eq!(
        clean(&file, tmp.path(), &["--max-problems", "7"])
            .status
            .code(),
        Some(3)
    );
    assert!(clean(&file, tmp.path(), &["--max-problems", "8"])
        .status
        .success());
}

#[test]
fn generated_data_with_injected_defects_counts_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("gen");
    let o = Command::new(env!("CARGO_BIN_EXE_sedx"))
        .args([
            "gen",
            "--out",
            data.to_str().unwrap(),
            "--records",
            "40000",
            "--defects",
            "0.05",
            "--batch-size",
            "50000",
            "--seed",
            "11",
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    let mut injected: BTreeMap<String, u64> = BTreeMap::new();
    for line in fs::read_to_string(data.join("manifest.csv"))
        .unwrap()
        .lines()
        .skip(1)
    {
        let f: Vec<&str> = line.split(',').collect();
        let code = match f[1] {
            "REC-DUPLICATE" => "DUP-REGCODE",
            "KEPT-HOME" => continue,
            c => c,
        };
        *injected.entry(code.to_string()).or_default() += f[2].parse::<u64>().unwrap();
    }
    let out = clean(
        &data.join("gen-000001.xml"),
        tmp.path(),
        &["--max-problems", "1000000"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        counts(&tmp.path().join("gen-000001.problems.csv")),
        injected.into_iter().filter(|(_, n)| *n > 0).collect()
    );
}

#[test]
fn the_html_report_shows_its_chart_in_a_real_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let out = clean(
        &repo().join("samples/registers/supervision-register.csv"),
        tmp.path(),
        &["--max-problems", "100"],
    );
    assert!(out.status.success());
    let page = tmp.path().join("supervision-register.report.html");
    let profile = tmp.path().join("chromium-profile");
    let dom = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium (scripts/deps.sh installs it)");
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("id=\"by-category\"") && dom.contains("id=\"by-district\""),
        "{dom}"
    );
    let bars = dom.matches("class=\"bar\"").count();
    assert!(bars >= 4, "the charts have their bars: {dom}");
    assert!(dom.contains("<span id=\"total\">8</span>"), "{dom}");
    let _ = INSP;
}

#[test]
fn reconcile_lists_what_is_missing_and_every_difference_and_sends_notices() {
    let p = Pair::new();
    let dir = repo().join("samples/registers");
    let out_dir = p.tmp.path().join("reconcile");
    let out = sedx(
        &p.insp,
        &[
            "reconcile",
            dir.join("supervision-register.csv").to_str().unwrap(),
            dir.join("agency-register-gbk.csv").to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--notices",
            "--max-problems",
            "100",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got: BTreeMap<String, u64> = BTreeMap::new();
    for line in fs::read_to_string(out_dir.join("reconcile.csv"))
        .unwrap()
        .lines()
        .skip(1)
    {
        let f: Vec<&str> = line.split(',').collect();
        let kind = match f[0] {
            "difference" => {
                *got.entry(f[2].to_string()).or_default() += 1;
                "differences"
            }
            k => k,
        };
        *got.entry(kind.to_string()).or_default() += 1;
    }
    let summary = String::from_utf8(out.stdout).unwrap();
    assert!(summary.contains("matched 3"), "{summary}");
    got.insert("matched".into(), 3);
    assert_eq!(got, expected(&dir.join("reconcile.expected.csv")));
    // The differences in R6 fields go to supervision as discrepancy notices.
    assert!(summary.contains("4 discrepancy notice(s)"), "{summary}");
    p.pass(&p.insp);
    p.pass(&p.sup);
    let list = String::from_utf8(sedx(&p.sup, &["discrepancies"]).stdout).unwrap();
    assert!(
        list.contains("use-status") && list.contains("停用"),
        "{list}"
    );
    assert_eq!(
        sql_count(
            &p.sup.join("store.sqlite"),
            "SELECT count(*) FROM discrepancy_notice"
        ),
        4
    );
    let html = fs::read_to_string(out_dir.join("reconcile.html")).unwrap();
    assert!(
        html.contains("<span id=\"differences\">5</span>"),
        "every field compared"
    );
    // Above the threshold, a failure.
    let strict = sedx(
        &p.insp,
        &[
            "reconcile",
            dir.join("supervision-register.csv").to_str().unwrap(),
            dir.join("agency-register-gbk.csv").to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--max-problems",
            "3",
        ],
    );
    assert_eq!(strict.status.code(), Some(3));
}

#[test]
fn reconcile_on_generated_registers_finds_exactly_what_was_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("gen");
    let o = Command::new(env!("CARGO_BIN_EXE_sedx"))
        .args([
            "gen",
            "--out",
            data.to_str().unwrap(),
            "--records",
            "20000",
            "--batch-size",
            "30000",
            "--seed",
            "5",
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    let a = data.join("gen-000001.xml");
    // The agency's register: the same city, with known changes.
    let (mut changed, mut dropped, mut added) = (0, 0, 0);
    let mut b = String::new();
    let mut n = 0;
    for line in fs::read_to_string(&a).unwrap().lines() {
        if !line.contains("<equipment>") {
            if line.contains("</batch>") {
                for k in 0..7 {
                    b.push_str(&format!("  <equipment><registrationCode>3110310101199901{k:04}</registrationCode><category>3110</category><factorySerial>NEW{k}</factorySerial><userUnit>新单位</userUnit></equipment>\n"));
                    added += 1;
                }
            }
            b.push_str(line);
            b.push('\n');
            continue;
        }
        n += 1;
        if n % 70 == 0 {
            dropped += 1;
            continue;
        }
        if n % 50 == 0 {
            let start = line.find("<useStatus>").unwrap();
            let end = line.find("</useStatus>").unwrap();
            b.push_str(&format!(
                "{}<useStatus>报废{}\n",
                &line[..start],
                &line[end..]
            ));
            changed += 1;
            continue;
        }
        b.push_str(line);
        b.push('\n');
    }
    let b_path = tmp.path().join("agency.xml");
    fs::write(&b_path, b).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sedx"))
        .args([
            "reconcile",
            a.to_str().unwrap(),
            b_path.to_str().unwrap(),
            "--out",
            tmp.path().join("r").to_str().unwrap(),
            "--max-problems",
            "1000000",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8(out.stdout).unwrap();
    assert!(
        summary.contains(&format!("missing in A: {added}\n")),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("missing in B: {dropped}\n")),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("differences: {changed}\n")),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("useStatus              {changed}")),
        "{summary}"
    );
}

#[test]
fn csv_columns_are_documented_and_unknown_ones_named_in_both_commands() {
    let doc = fs::read_to_string(repo().join("docs/records.md")).unwrap();
    for (field, names) in sedx::tools::clean::COLUMNS {
        assert!(
            doc.contains(&format!("| `{field}` |")),
            "{field} undocumented"
        );
        for n in *names {
            assert!(doc.contains(&format!("`{n}`")), "column {n} undocumented");
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.csv");
    let b = tmp.path().join("b.csv");
    fs::write(
        &a,
        "设备注册代码,设备类别,区县,设备地址,备注\n\
         31103101012006050007,3110,310101,黄浦区南京东路1号,旧\n\
         31103101152006070001,3110,310115,浦东新区世纪大道100号,\n",
    )
    .unwrap();
    fs::write(
        &b,
        "设备注册代码,设备类别,区县,设备地址,检验员\n\
         31103101012006050007,3110,310101,黄浦区南京东路2号,张三\n",
    )
    .unwrap();
    // clean: the unknown column is named, in the summary and the page.
    let out = clean(&a, tmp.path(), &["--max-problems", "100"]);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("unknown columns, not read 未识别的列: 备注"),
        "{summary}"
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "within the threshold: {summary}"
    );
    let page = fs::read_to_string(tmp.path().join("a.report.html")).unwrap();
    assert!(page.contains("id=\"unknown-columns\"") && page.contains("备注"));

    // reconcile: every field is compared (the address too), unless --r6-only;
    // a difference makes it exit 3 by default, as clean does with a problem.
    let r_dir = tmp.path().join("r");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "reconcile",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--out",
            r_dir.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_sedx"))
            .args(&args)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{summary}");
    assert!(summary.contains("address                1"), "{summary}");
    assert!(
        summary.contains("unknown columns in A, not read 未识别的列: 备注"),
        "{summary}"
    );
    assert!(
        summary.contains("unknown columns in B, not read 未识别的列: 检验员"),
        "{summary}"
    );
    let page = fs::read_to_string(tmp.path().join("r/reconcile.html")).unwrap();
    assert!(
        page.contains("id=\"missing-in-b\"")
            && page.contains("31103101152006070001")
            && page.contains("310115 浦东新区")
            && page.contains("3110 曳引驱动乘客电梯"),
        "{page}"
    );
    let out = run(&["--r6-only", "--max-problems", "1"]);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(!summary.contains("address"), "{summary}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "one missing record, within 1: {summary}"
    );

    // A clean problem is exit 3 by default too.
    let bad = tmp.path().join("bad.csv");
    fs::write(&bad, "设备注册代码,设备类别\n123,3110\n").unwrap();
    assert_eq!(clean(&bad, tmp.path(), &[]).status.code(), Some(3));
}

//! Transfers: pull mode through a hub, push and pull mixed, and resuming an
//! upload or a download cut off part way.

use crate::common::*;
use sedx::context::config::{Config, Transport};
use std::fs;
use std::path::Path;
use std::process::Command;

/// Supervision is the hub: the inspection node runs no SFTP server and pulls.
fn hub(p: &Pair) {
    let mut sup = Config::load(&p.sup).unwrap();
    sup.peers[0].transport = Transport::Local;
    sup.save(&p.sup).unwrap();
    let mut insp = Config::load(&p.insp).unwrap();
    insp.peers[0].transport = Transport::Pull;
    insp.peers[0].remote_outbox = Some(p.sup.join("outbox").join(INSP).display().to_string());
    insp.save(&p.insp).unwrap();
}

#[test]
fn an_agency_without_a_server_pulls_from_the_hub_and_pushes_back() {
    let p = Pair::new();
    hub(&p);
    let outbox = p.sup.join("outbox").join(INSP);
    fs::write(p.sup.join("outbound/notice.xml"), drop_doc(SUP, &[NOTICE])).unwrap();
    let r = p.pass(&p.sup);
    assert_eq!(r.shipped, 1, "left in the hub's local folder");
    assert_eq!(files_in(&outbox).len(), 3);
    p.drop_batch("b.xml", &sample_batch());
    let r = p.pass(&p.insp);
    assert_eq!(
        (r.pulled, r.applied, r.shipped),
        (1, 1, 2),
        "pulled the notice, pushed its answer and its batch"
    );
    assert!(
        files_in(&outbox).is_empty(),
        "removed from the hub once stored"
    );
    let r = p.pass(&p.sup);
    assert_eq!((r.applied, r.acks_received, r.shipped), (1, 1, 1));
    let r = p.pass(&p.insp);
    assert_eq!((r.pulled, r.acks_received), (1, 1));
    assert_eq!(
        sql_text(
            &p.sup.join("store.sqlite"),
            "SELECT ack_status FROM outbox WHERE kind='batch'"
        )
        .unwrap(),
        "accepted"
    );
}

#[test]
fn killed_after_storing_a_pulled_set_it_is_taken_once() {
    let p = Pair::new();
    hub(&p);
    fs::write(p.sup.join("outbound/notice.xml"), drop_doc(SUP, &[NOTICE])).unwrap();
    p.pass(&p.sup);
    crashed(&run_once(&p.insp, Some("after-pull")), "after-pull");
    assert_eq!(
        files_in(&p.sup.join("outbox").join(INSP)).len(),
        3,
        "still on the hub"
    );
    let out = run_once(&p.insp, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(files_in(&p.sup.join("outbox").join(INSP)).is_empty());
    let idb = p.insp.join("store.sqlite");
    assert_eq!(sql_count(&idb, "SELECT count(*) FROM journal"), 1);
    assert_eq!(
        sql_count(&idb, "SELECT count(*) FROM construction_notice"),
        1
    );
}

/// A batch large enough to span several 1 MiB writes once compressed.
fn large_batch(dir: &Path) -> String {
    let out = dir.join("large");
    let o = Command::new(env!("CARGO_BIN_EXE_sedx"))
        .args([
            "gen",
            "--out",
            out.to_str().unwrap(),
            "--records",
            "60000",
            "--batch-size",
            "70000",
            "--non-statutory",
            "0",
            "--seed",
            "3",
            "--to",
            SUP,
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    fs::read_to_string(out.join("gen-000001.xml")).unwrap()
}

fn resumed(node: &Path) -> i64 {
    sql_count(
        &node.join("store.sqlite"),
        "SELECT coalesce(max(value), 0) FROM meta WHERE name = 'resumed_bytes'",
    )
}

#[test]
fn an_upload_cut_off_mid_file_resumes() {
    let p = Pair::new();
    p.drop_batch("large.xml", &large_batch(p.tmp.path()));
    crashed(&run_once(&p.insp, Some("mid-upload")), "mid-upload");
    let partial: Vec<String> = files_in(&p.sup_inbound())
        .into_iter()
        .filter(|f| f.ends_with(".part"))
        .collect();
    assert_eq!(partial.len(), 1, "{:?}", files_in(&p.sup_inbound()));
    let out = run_once(&p.insp, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(resumed(&p.insp) >= 1 << 20, "continued from what was there");
    let r = p.pass(&p.sup);
    assert_eq!((r.applied, r.quarantined), (1, 0), "the checksum agrees");
    assert_eq!(
        sql_count(
            &p.sup.join("store.sqlite"),
            "SELECT count(*) FROM inspection_report"
        ),
        30000
    );
}

#[test]
fn a_download_cut_off_mid_file_resumes() {
    let p = Pair::new();
    hub(&p);
    let large = large_batch(p.tmp.path())
        .replace(r#"from="insp-city" to="sup-city""#, r#"from="sup-city""#);
    // Supervision sends equipment (its registration data) down to the agency.
    let equipment_only: String = large
        .lines()
        .filter(|l| !l.contains("<inspectionReport>"))
        .collect::<Vec<_>>()
        .join("\n");
    fs::write(p.sup.join("outbound/large.xml"), equipment_only).unwrap();
    assert_eq!(p.pass(&p.sup).shipped, 1);
    crashed(&run_once(&p.insp, Some("mid-download")), "mid-download");
    let out = run_once(&p.insp, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(resumed(&p.insp) > 0, "continued from what was there");
    assert_eq!(
        sql_count(
            &p.insp.join("store.sqlite"),
            "SELECT count(*) FROM journal WHERE status = 'accepted'"
        ),
        1
    );
    assert_eq!(
        sql_count(
            &p.insp.join("store.sqlite"),
            "SELECT count(*) FROM equipment"
        ),
        30000
    );
}

#[test]
fn a_set_damaged_in_transit_is_sent_again() {
    let p = Pair::new();
    p.drop_batch("b.xml", &sample_batch());
    assert_eq!(p.pass(&p.insp).shipped, 1);
    let gz = files_in(&p.sup_inbound())
        .into_iter()
        .find(|f| f.ends_with(".xml.gz"))
        .unwrap();
    let path = p.sup_inbound().join(gz);
    let mut bytes = fs::read(&path).unwrap();
    bytes[200] ^= 0x01;
    fs::write(&path, bytes).unwrap();
    let r = p.pass(&p.sup);
    assert_eq!((r.quarantined, r.applied), (1, 0));
    let r = p.pass(&p.insp);
    assert_eq!(
        (r.acks_received, r.shipped),
        (1, 1),
        "the intact copy goes again"
    );
    assert_eq!(p.pass(&p.sup).applied, 1);
    p.pass(&p.insp);
    assert_eq!(
        sql_text(
            &p.insp.join("store.sqlite"),
            "SELECT ack_status FROM outbox WHERE kind='batch'"
        )
        .unwrap(),
        "accepted"
    );
}

/// `sedx run --once` on a node: its log.
fn run_log(node: &Path) -> String {
    let out = run_once(node, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn a_pulling_agency_that_stops_pulling_raises_an_alert_and_its_last_pull_shows() {
    let p = Pair::new();
    hub(&p);
    let mut sup = Config::load(&p.sup).unwrap();
    // Any set left waiting counts as silence here (the default is an hour).
    sup.node.pull_alert_secs = 0;
    sup.save(&p.sup).unwrap();
    fs::write(p.sup.join("outbound/notice.xml"), drop_doc(SUP, &[NOTICE])).unwrap();
    let log = run_log(&p.sup);
    assert!(log.contains("peer has not pulled for 0 min"), "{log}");
    assert_eq!(
        run_log(&p.sup).matches("has not pulled").count(),
        0,
        "the alert is logged once"
    );
    let status = sedx(&p.sup, &["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(2), "{text}");
    assert!(
        text.contains("NOT PULLING 未取件: pulls from this hub: last pull never; 1 set(s) waiting"),
        "{text}"
    );
    let summary = sedx(&p.sup, &["status", "--summary"]);
    assert!(String::from_utf8_lossy(&summary.stdout)
        .contains("insp-city: not pulling (1 set(s) waiting"));

    // The agency pulls; the hub sees it at its next pass.
    p.pass(&p.insp);
    let log = run_log(&p.sup);
    assert!(log.contains("peer pulls again"), "{log}");
    let status = sedx(&p.sup, &["status", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let pull = &json["peers"][0]["pull"];
    assert_eq!(pull["waiting"], 0, "{json}");
    assert!(
        pull["last_pull"]
            .as_str()
            .is_some_and(|t| t.starts_with("20")),
        "{json}"
    );
    assert_eq!(sedx(&p.sup, &["status"]).status.code(), Some(0));
}

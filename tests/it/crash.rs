//! Killed at each step and started again, a node finishes the work: every record
//! applied once, the acknowledgment back and matched, nothing left behind.

use crate::common::*;
use std::path::Path;

fn killed_at(point: &str, crashing_node: fn(&Pair) -> &Path) {
    let p = Pair::new();
    p.drop_batch("b1.xml", &sample_batch());
    // The sender seals and ships (unless it is the one that dies).
    let victim = crashing_node(&p).to_path_buf();
    if victim == p.insp {
        let out = run_once(&p.insp, Some(point));
        assert!(!out.status.success(), "the crash at {point} happened");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&format!("crash injected at {point}"))
        );
    }
    let out = run_once(&p.insp, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if victim == p.sup {
        let out = run_once(&p.sup, Some(point));
        assert!(!out.status.success(), "the crash at {point} happened");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&format!("crash injected at {point}"))
        );
    }
    // Started again, the nodes finish the exchange.
    for node in [&p.sup, &p.insp, &p.sup, &p.insp] {
        let out = run_once(node, None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let db = p.sup.join("store.sqlite");
    assert_eq!(
        sql_count(&db, "SELECT count(*) FROM journal"),
        1,
        "applied exactly once"
    );
    assert_eq!(sql_count(&db, "SELECT count(*) FROM equipment"), 3);
    assert_eq!(sql_count(&db, "SELECT count(*) FROM inspection_report"), 3);
    assert_eq!(
        sql_count(&db, "SELECT count(*) FROM record_result"),
        0,
        "the bad record never left"
    );
    assert_eq!(sql_count(&db, "SELECT count(*) FROM quarantine"), 0);
    let idb = p.insp.join("store.sqlite");
    assert_eq!(
        sql_count(&idb, "SELECT count(*) FROM outbox WHERE kind='batch'"),
        1
    );
    assert_eq!(
        sql_text(&idb, "SELECT ack_status FROM outbox WHERE kind='batch'").unwrap(),
        "accepted",
        "the first outcome is the one recorded"
    );
    assert_eq!(
        sql_count(&idb, "SELECT last_seq FROM channel_out"),
        1,
        "no sequence number wasted"
    );
    for dir in [
        p.insp.join("outbound"),
        p.sup.join("outbound"),
        p.sup_inbound(),
        p.insp.join("inbound").join(SUP),
    ] {
        assert!(
            files_in(&dir).is_empty(),
            "{} still holds {:?}",
            dir.display(),
            files_in(&dir)
        );
    }
    assert_eq!(
        files_in(&p.insp.join("archive/outbound")),
        vec!["b1.xml"],
        "the dropped file is kept"
    );
}

fn insp(p: &Pair) -> &Path {
    &p.insp
}
fn sup(p: &Pair) -> &Path {
    &p.sup
}

#[test]
fn sender_killed_after_sealing() {
    killed_at("after-seal", insp);
}

#[test]
fn sender_killed_after_upload_before_recording_it() {
    killed_at("after-upload", insp);
}

#[test]
fn receiver_killed_after_verify_before_apply() {
    killed_at("before-apply", sup);
}

#[test]
fn receiver_killed_after_apply_before_acknowledgment() {
    killed_at("after-apply", sup);
}

#[test]
fn receiver_killed_after_acknowledgment_before_archiving() {
    killed_at("after-ack", sup);
}

#[test]
fn sender_killed_while_moving_a_set_to_sent() {
    killed_at("mid-move", insp);
}

#[test]
fn receiver_killed_while_archiving_a_set() {
    killed_at("mid-move", sup);
}

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

/// `deliver = "folder"`: each applied batch's records land in delivered/ as a
/// batch document with its sha256 marker, exactly once, also when the receiver
/// is killed between the apply and the delivery, or after the file but before
/// the store knew; a later batch applied meanwhile does not take its records.
#[test]
fn delivery_to_a_folder_survives_a_crash_between_apply_and_delivery() {
    let p = Pair::new();
    configure(&p.sup, |c| {
        c.node.deliver = sedx::context::config::Deliver::Folder
    });
    let delivered = p.sup.join("delivered");
    let files = || files_in(&delivered);
    // Batch 1: killed after its apply, before its delivery.
    p.drop_batch("b1.xml", &equipment_batch(1, 3));
    let out = run_once(&p.insp, None);
    assert!(out.status.success(), "{}", stderr(&out));
    crashed(&run_once(&p.sup, Some("before-deliver")), "before-deliver");
    let db = p.sup.join("store.sqlite");
    assert_eq!(sql_count(&db, "SELECT count(*) FROM journal"), 1, "applied");
    assert!(files().is_empty(), "{:?}", files());
    // Batch 2 waits in inbound while the node is down; the next start delivers
    // batch 1 first, then applies and delivers batch 2, which changes an
    // equipment of batch 1.
    let mut second = equipment_batch(3, 2);
    second = second.replace("上海测试单位", "上海新测试单位");
    p.drop_batch("b2.xml", &second);
    let out = run_once(&p.insp, None);
    assert!(out.status.success(), "{}", stderr(&out));
    // Killed again, this time after batch 2's file and marker, before the store
    // noted them.
    crashed(&run_once(&p.sup, Some("after-deliver#2")), "after-deliver");
    // A local system takes batch 2's document and marker at once (it saw the
    // marker); the restarted node must not deliver them again.
    let taken = p.tmp.path().join("taken");
    std::fs::create_dir_all(&taken).unwrap();
    for n in files().iter().filter(|n| n.contains("-00000002-")) {
        std::fs::rename(delivered.join(n), taken.join(n)).unwrap();
    }
    let out = run_once(&p.sup, None);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run_once(&p.sup, None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        files().len(),
        2,
        "batch 2 not delivered again: {:?}",
        files()
    );
    for n in std::fs::read_dir(&taken).unwrap().flatten() {
        std::fs::rename(n.path(), delivered.join(n.file_name())).unwrap();
    }
    let names = files();
    assert_eq!(names.len(), 4, "two documents and their markers: {names:?}");
    assert!(
        names.iter().all(|n| !n.starts_with('.')),
        "no temporary left: {names:?}"
    );
    assert_eq!(
        sql_count(
            &db,
            "SELECT count(*) FROM delivery WHERE state = 'delivered'"
        ),
        2
    );
    let doc = |seq: &str| {
        let name = names
            .iter()
            .find(|n| n.contains(&format!("-{seq}-")) && n.ends_with(".xml"))
            .unwrap_or_else(|| panic!("seq {seq} in {names:?}"));
        let text = std::fs::read_to_string(delivered.join(name)).unwrap();
        // The marker is sha256sum's line for the file.
        let marker = std::fs::read_to_string(delivered.join(format!("{name}.sha256"))).unwrap();
        use sha2::Digest;
        let sum = hex::encode(sha2::Sha256::digest(text.as_bytes()));
        assert_eq!(marker, format!("{sum}  {name}\n"));
        text
    };
    let first = doc("00000001");
    assert_eq!(first.matches("<equipment>").count(), 3, "{first}");
    assert!(first.contains("31103101012006050001"), "{first}");
    let second = doc("00000002");
    assert_eq!(second.matches("<equipment>").count(), 2, "{second}");
    // As applied: the user unit is supervision's (R4), so equipment 3 keeps it.
    assert!(second.contains("31103101012006050003</registrationCode><category>3110</category><userUnit>上海测试单位3<"), "{second}");
    assert!(second.contains("上海新测试单位4"), "{second}");
    // Valid against the batch schema, as any drop.
    for name in names.iter().filter(|n| n.ends_with(".xml")) {
        let out = sedx_plain(&["validate", delivered.join(name).to_str().unwrap()]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
    }
}

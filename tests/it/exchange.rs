//! End to end against a real sshd: a batch crosses, is applied and acknowledged;
//! resends, gaps, host keys and drops behave as docs/format.md says.

use crate::common::*;
use std::fs;

#[test]
fn batch_crosses_is_applied_and_acknowledged() {
    let p = Pair::new();
    p.drop_batch("b1.xml", &sample_batch());
    let r = p.pass(&p.insp);
    assert_eq!((r.sealed, r.shipped), (1, 1));
    assert!(files_in(&p.insp.join("outbound")).is_empty());
    let r = p.pass(&p.sup);
    assert_eq!((r.applied, r.shipped, r.quarantined), (1, 1, 0));
    let db = p.sup.join("store.sqlite");
    assert_eq!(sql_count(&db, "SELECT count(*) FROM equipment"), 3);
    assert_eq!(sql_count(&db, "SELECT count(*) FROM inspection_report"), 3);
    assert_eq!(
        sql_text(
            &db,
            "SELECT org_code FROM equipment WHERE registration_code='11203101122006040013'"
        )
        .unwrap(),
        "08799493-2",
        "organization code derived from the credit code"
    );
    assert_eq!(
        sql_text(&db, "SELECT status FROM journal").unwrap(),
        "accepted"
    );
    assert!(files_in(&p.sup_inbound()).is_empty());
    assert_eq!(files_in(&p.sup.join("archive").join(INSP)).len(), 3);

    let r = p.pass(&p.insp);
    assert_eq!(r.acks_received, 1);
    let idb = p.insp.join("store.sqlite");
    assert_eq!(
        sql_text(&idb, "SELECT ack_status FROM outbox WHERE kind='batch'").unwrap(),
        "accepted"
    );
    let detail = sql_text(&idb, "SELECT ack_detail FROM outbox WHERE kind='batch'").unwrap();
    assert!(detail.starts_with("accepted 6, rejected 0"), "{detail}");
    // The record with a wrong organization code was refused on the way out.
    let reasons = fs::read_to_string(p.insp.join("quarantine/b1.rejected.txt")).unwrap();
    assert!(
        reasons.contains("40003101072006030021\tREC-ORGCODE"),
        "{reasons}"
    );
    let again = fs::read_to_string(p.insp.join("quarantine/b1.rejected.xml")).unwrap();
    assert!(again.contains("<orgCode>13220082-5</orgCode>"), "{again}");
    let status = String::from_utf8(sedx(&p.insp, &["status"]).stdout).unwrap();
    assert!(
        status.contains("0 awaiting acknowledgment"),
        "{status} {}",
        String::from_utf8_lossy(&sedx(&p.insp, &["status"]).stderr)
    );
}

#[test]
fn invalid_drop_is_quarantined_with_line_and_column_and_never_leaves() {
    let p = Pair::new();
    let bad = sample_batch().replace("<category>3110</category>", "<kategorie>3110</kategorie>");
    p.drop_batch("bad.xml", &bad);
    let r = p.pass(&p.insp);
    assert_eq!((r.sealed, r.shipped, r.quarantined), (0, 0, 1));
    let reason = fs::read_to_string(p.insp.join("quarantine/bad.reason.txt")).unwrap();
    assert!(reason.starts_with("XML-SCHEMA"), "{reason}");
    assert!(reason.contains("line 7, column 15"), "{reason}");
    assert!(p.insp.join("quarantine/bad.xml").exists());
    assert!(files_in(&p.sup_inbound()).is_empty());
}

#[test]
fn files_being_written_are_left_alone() {
    let p = Pair::new();
    for name in [
        "b.xml.part",
        ".b.xml",
        "b.xml.tmp",
        "b.xml.filepart",
        "b.xml.partial",
    ] {
        p.drop_batch(name, &sample_batch());
    }
    let r = p.pass(&p.insp);
    assert_eq!((r.sealed, r.quarantined), (0, 0));
    assert_eq!(files_in(&p.insp.join("outbound")).len(), 5);
}

#[test]
fn a_growing_file_is_not_taken_until_it_settles() {
    let p = Pair::new();
    let mut cfg = sedx::context::config::Config::load(&p.insp).unwrap();
    cfg.node.settle_ms = 400;
    cfg.save(&p.insp).unwrap();
    let path = p.insp.join("outbound/growing.xml");
    let xml = sample_batch();
    let mid = (xml.len() / 2..)
        .find(|&i| xml.is_char_boundary(i))
        .unwrap();
    let (head, tail) = xml.split_at(mid);
    fs::write(&path, head).unwrap();
    let mut node = p.insp();
    // A writer appends while the pass is looking.
    let writer = {
        let path = path.clone();
        let tail = tail.to_string();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(150));
            use std::io::Write;
            let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
            f.write_all(tail.as_bytes()).unwrap();
        })
    };
    let r = node.pass();
    writer.join().unwrap();
    assert_eq!((r.sealed, r.quarantined, r.unsettled), (0, 0, 1), "{r:?}");
    let r = p.pass(&p.insp);
    assert_eq!(r.sealed, 1);
}

#[test]
fn a_file_renamed_into_outbound_is_taken_without_waiting_out_the_settle_time() {
    let p = Pair::new();
    // A settle time of ten minutes: only the watcher's rename event lets it go now.
    let mut cfg = sedx::context::config::Config::load(&p.insp).unwrap();
    cfg.node.settle_ms = 600_000;
    cfg.save(&p.insp).unwrap();
    let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_sedx"))
        .arg("--node")
        .arg(&p.insp)
        .args(["run", "--now"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the watcher is up (it says so), then keep draining its log.
    let log = std::io::BufReader::new(run.stderr.take().unwrap());
    let (up_tx, up) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in log.lines().map_while(Result::ok) {
            if line.contains("watching outbound/") {
                let _ = up_tx.send(());
            }
        }
    });
    up.recv_timeout(std::time::Duration::from_secs(60))
        .expect("the watcher came up");
    // Its first pass (an empty outbound) is over by then.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let tmp = p.insp.join("b.xml.partial");
    fs::write(&tmp, sample_batch()).unwrap();
    fs::rename(&tmp, p.insp.join("outbound/b.xml")).unwrap();
    let arrived = wait_for(|| arrived(&p));
    run.kill().unwrap();
    run.wait().unwrap();
    assert!(arrived, "a whole file renamed in is shipped at once");
}

#[test]
fn a_file_unchanged_for_the_settle_time_is_taken_at_first_look() {
    let p = Pair::new();
    let mut cfg = sedx::context::config::Config::load(&p.insp).unwrap();
    cfg.node.settle_ms = 600_000;
    cfg.save(&p.insp).unwrap();
    let path = p.insp.join("outbound/old.xml");
    fs::write(&path, sample_batch()).unwrap();
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    // No watcher: `sedx send` looks once and sees the file has long been still.
    let mut send = std::process::Command::new(env!("CARGO_BIN_EXE_sedx"))
        .arg("--node")
        .arg(&p.insp)
        .args(["send", "--now"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let arrived = wait_for(|| arrived(&p));
    send.kill().ok();
    send.wait().unwrap();
    assert!(
        arrived,
        "a file last written an hour ago is not watched for ten minutes"
    );
}

#[test]
fn markup_characters_in_values_cross_intact() {
    let p = Pair::new();
    let xml = equipment_batch(1, 1).replace("上海测试单位1", "A &amp; B &lt;C&gt; \"D\"");
    p.drop_batch("escaped.xml", &xml);
    assert_eq!(p.pass(&p.insp).shipped, 1);
    assert_eq!(p.pass(&p.sup).applied, 1);
    assert_eq!(
        sql_text(
            &p.sup.join("store.sqlite"),
            "SELECT user_unit FROM equipment"
        )
        .unwrap(),
        "A & B <C> \"D\""
    );
}

#[test]
fn resent_set_is_not_applied_twice_by_copy_or_by_command() {
    let p = Pair::new();
    p.drop_batch("b1.xml", &sample_batch());
    p.pass(&p.insp);
    p.pass(&p.sup);
    p.pass(&p.insp);
    let db = p.sup.join("store.sqlite");
    let before = sql_text(
        &db,
        "SELECT updated_at || source_batch FROM equipment ORDER BY 1 LIMIT 1",
    );

    // 1. An operator copies the set from sent/ back into outbound/.
    for f in files_in(&p.insp.join("sent")) {
        fs::copy(
            p.insp.join("sent").join(&f),
            p.insp.join("outbound").join(&f),
        )
        .unwrap();
    }
    assert_eq!(p.pass(&p.insp).shipped, 1);
    let r = p.pass(&p.sup);
    assert_eq!((r.applied, r.duplicates), (0, 1));
    p.pass(&p.insp);

    // 2. sedx resend BATCH-ID.
    let idb = p.insp.join("store.sqlite");
    let id = sql_text(&idb, "SELECT batch_id FROM outbox WHERE kind='batch'").unwrap();
    let out = sedx(&p.insp, &["resend", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(p.pass(&p.insp).shipped, 1);
    let r = p.pass(&p.sup);
    assert_eq!((r.applied, r.duplicates), (0, 1));
    p.pass(&p.insp);

    assert_eq!(sql_count(&db, "SELECT count(*) FROM journal"), 1);
    assert_eq!(sql_count(&db, "SELECT acks_sent FROM journal"), 3);
    assert_eq!(
        before,
        sql_text(
            &db,
            "SELECT updated_at || source_batch FROM equipment ORDER BY 1 LIMIT 1"
        )
    );
    // The first definite outcome stands; the duplicates are answered "duplicate".
    assert_eq!(
        sql_text(&idb, "SELECT ack_status FROM outbox WHERE kind='batch'").unwrap(),
        "accepted"
    );
    assert_eq!(
        sql_count(&idb, "SELECT ship_count FROM outbox WHERE kind='batch'"),
        3
    );
    let acks = p.insp.join("archive").join(SUP);
    let dup = walk_text(&acks)
        .iter()
        .filter(|t| t.contains("status=\"duplicate\""))
        .count();
    assert_eq!(dup, 2);
}

/// Decompressed text of every .xml.gz under `dir`.
fn walk_text(dir: &std::path::Path) -> Vec<String> {
    use std::io::Read;
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".xml.gz"))
        .map(|e| {
            let mut s = String::new();
            flate2::read::MultiGzDecoder::new(fs::File::open(e.path()).unwrap())
                .read_to_string(&mut s)
                .unwrap();
            s
        })
        .collect()
}

#[test]
fn out_of_order_set_waits_for_the_gap_to_fill() {
    let p = Pair::new();
    p.drop_batch("first.xml", &equipment_batch(1, 2));
    let mut insp = p.insp();
    sedx::send::seal_file(&mut insp, &p.insp.join("outbound/first.xml"), false).unwrap();
    p.drop_batch("second.xml", &equipment_batch(10, 3));
    sedx::send::seal_file(&mut insp, &p.insp.join("outbound/second.xml"), false).unwrap();
    drop(insp);
    // Hold back seq 1; ship seq 2 alone.
    let aside = p.tmp.path().join("aside");
    fs::create_dir_all(&aside).unwrap();
    let first = files_in(&p.insp.join("outbound"))
        .into_iter()
        .find(|f| f.contains("-00000001-") && is_marker(f))
        .unwrap();
    let name = sedx::wire::set::SetName::of_file(&first).unwrap().0;
    sedx::wire::set::move_set(&name, &p.insp.join("outbound"), &aside).unwrap();
    assert_eq!(p.pass(&p.insp).shipped, 1);
    let r = p.pass(&p.sup);
    assert_eq!((r.applied, r.held), (0, 1));
    let status = String::from_utf8(sedx(&p.sup, &["status"]).stdout).unwrap();
    assert!(
        status.contains("GAP: waiting for seq 1; holding seq 2"),
        "{status}"
    );
    assert_eq!(
        sql_count(
            &p.sup.join("store.sqlite"),
            "SELECT count(*) FROM equipment"
        ),
        0
    );

    sedx::wire::set::move_set(&name, &aside, &p.insp.join("outbound")).unwrap();
    p.pass(&p.insp);
    let r = p.pass(&p.sup);
    assert_eq!((r.applied, r.held), (2, 0));
    let db = p.sup.join("store.sqlite");
    assert_eq!(sql_count(&db, "SELECT count(*) FROM equipment"), 5);
    assert_eq!(sql_count(&db, "SELECT count(*) FROM held"), 0);
    // In the order they were applied (rows in insertion order: SQLite's rowid,
    // PostgreSQL's ctid in a table never updated).
    let order = sql_text(
        &db,
        if on_postgres() {
            "SELECT string_agg(CAST(seq AS TEXT), ',' ORDER BY received_at, ctid) FROM journal"
        } else {
            "SELECT group_concat(seq, ',') FROM (SELECT seq FROM journal ORDER BY received_at, rowid)"
        },
    )
    .unwrap();
    assert_eq!(order, "1,2");
    let status = String::from_utf8(sedx(&p.sup, &["status"]).stdout).unwrap();
    assert!(!status.contains("GAP"), "{status}");
}

#[test]
fn changed_host_key_is_refused_and_the_set_stays_queued() {
    let p = Pair::new();
    p.sshd.stop();
    fs::remove_file(p.sshd.dir.join("host_ed25519")).unwrap();
    let _impostor = Sshd::start_on(&p.sshd.dir, Some(p.sshd.port));
    p.drop_batch("b1.xml", &sample_batch());
    let out = sedx(&p.insp, &["run", "--once"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("host key of sup-city refused"), "{err}");
    let queued = files_in(&p.insp.join("outbound"));
    assert_eq!(queued.len(), 3, "{queued:?}");
    assert!(files_in(&p.sup_inbound()).is_empty());
}

#[test]
fn wrong_login_key_is_refused_without_password_fallback() {
    let p = Pair::new();
    fs::write(&p.sshd.authorized_keys, "").unwrap();
    p.drop_batch("b1.xml", &sample_batch());
    let out = sedx(&p.insp, &["run", "--once"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("login as"));
    assert_eq!(files_in(&p.insp.join("outbound")).len(), 3);
}

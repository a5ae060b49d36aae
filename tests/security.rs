//! Attacks on a node, each written as the attack itself (docs/security.md lists
//! them with the defence each one proves): a second process on the node, an
//! acknowledgment for another peer's batch, a batch id reused with other
//! content, a lost store, sets uploaded where no peer is configured.

mod common;
use common::*;
use sedx::config::{Config, PeerConfig, Transport};
use sedx::set::SetName;
use sedx::signature::load_private_key;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

fn key_of(node: &Path) -> ssh_key::PrivateKey {
    load_private_key(&node.join("keys/signing_ed25519")).unwrap()
}

/// Plant an acknowledgment document, signed by `key`, in `dir`.
fn plant_ack(dir: &Path, name: &str, xml: &str, key: &ssh_key::PrivateKey) {
    let name = SetName::new(name).unwrap();
    fs::write(name.payload(dir), gzip(xml.as_bytes())).unwrap();
    let digest = sedx::signature::digest_file(&name.payload(dir)).unwrap();
    sedx::seal::finish(dir, &name, key, "sedx-ack", &digest).unwrap();
}

fn ack_xml(from: &str, to: &str, batch: &str, set: &str, sha: &str, status: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<ack xmlns="urn:sedx:ack:1" from="{from}" to="{to}" batch="{batch}" set="{set}" sha256="{sha}" status="{status}" seq="1" accepted="1" rejected="0" created="2026-11-28T00:00:00Z"/>
"#
    )
}

fn row(db: &Path, sql: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut st = conn.prepare(sql).unwrap();
    let n = st.column_count();
    st.query_row([], |r| {
        (0..n)
            .map(|i| r.get::<_, Option<String>>(i).map(|v| v.unwrap_or_default()))
            .collect::<rusqlite::Result<Vec<_>>>()
    })
    .unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

// ---- 5. One process per node ---------------------------------------------

#[test]
fn a_second_process_is_refused_while_the_service_holds_the_node() {
    let p = Pair::new();
    let mut service = Command::new(env!("CARGO_BIN_EXE_sedx"))
        .arg("--node")
        .arg(&p.sup)
        .arg("run")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The service writes its pid into the lock file once it holds the lock.
    let lock = p.sup.join(".lock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !fs::read_to_string(&lock).is_ok_and(|t| t.contains(&format!("pid {}", service.id()))) {
        assert!(service.try_wait().unwrap().is_none(), "the service stopped");
        if std::time::Instant::now() > deadline {
            let _ = service.kill();
            panic!("the service never took the node's lock");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for args in [
        &["run", "--once"][..],
        &["send", "--now"][..],
        &["export"][..],
    ] {
        let out = sedx(&p.sup, args);
        assert_eq!(out.status.code(), Some(75), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("in use by another sedx process")
                && err.contains(&format!("pid {}", service.id()))
                && err.contains("sedx run"),
            "{err}"
        );
    }
    // Reading is not changing: status works while the service runs.
    assert!(sedx(&p.sup, &["status"]).status.success());
    // A command that waits runs once the service has stopped.
    let waiting = Command::new(env!("CARGO_BIN_EXE_sedx"))
        .arg("--node")
        .arg(&p.sup)
        .args(["--wait", "run", "--once"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Command::new("kill")
        .arg("-TERM")
        .arg(service.id().to_string())
        .status()
        .unwrap();
    assert!(service.wait().unwrap().success());
    let out = waiting.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

// ---- 6. Acknowledgments bind to their channel -----------------------------

/// A supervision node with a second agency, `insp-b`, that pulls from it.
fn with_second_peer(p: &Pair) {
    let mut cfg = Config::load(&p.sup).unwrap();
    let second = PeerConfig {
        id: "insp-b".into(),
        transport: Transport::Local,
        host: String::new(),
        port: 22,
        user: String::new(),
        key: None,
        remote_inbound: String::new(),
        host_key: String::new(),
        remote_outbox: None,
        local_outbox: None,
        agency: Some("上海市电梯检测站".into()),
    };
    cfg.peers.push(second);
    cfg.save(&p.sup).unwrap();
}

#[test]
fn an_ack_from_one_peer_cannot_settle_a_batch_sent_to_another() {
    let p = Pair::new();
    with_second_peer(&p);
    // The supervision node sends a batch to insp-b.
    let doc = fs::read_to_string(repo().join("samples/valid/construction-notice.xml"))
        .unwrap()
        .replace("from=\"sup-city\"", "from=\"sup-city\" to=\"insp-b\"")
        .replace("上海市特种设备监督检验技术研究院", "上海市电梯检测站");
    fs::write(p.sup.join("outbound/to-b.xml"), doc).unwrap();
    let r = p.pass(&p.sup);
    assert_eq!((r.sealed, r.shipped), (1, 1), "{r:?}");
    let db = p.sup.join("store.sqlite");
    let sent = row(
        &db,
        "SELECT batch_id, set_name, sha256 FROM outbox WHERE kind='batch' AND peer='insp-b'",
    );
    // insp-city, a peer trusted for its own channel only, signs an "accepted"
    // for that batch, naming it exactly.
    plant_ack(
        &p.sup_inbound(),
        "forged-ack",
        &ack_xml(INSP, SUP, &sent[0], &sent[1], &sent[2], "accepted"),
        &key_of(&p.insp),
    );
    let r = p.pass(&p.sup);
    assert_eq!(r.quarantined, 1, "{r:?}");
    let reason = fs::read_to_string(
        p.sup
            .join("quarantine")
            .join(INSP)
            .join("forged-ack.reason.txt"),
    )
    .unwrap();
    assert!(reason.starts_with("ACK-PEER"), "{reason}");
    assert_eq!(
        row(
            &db,
            "SELECT state, coalesce(ack_status, '-') FROM outbox WHERE peer='insp-b'"
        ),
        ["shipped", "-"],
        "the batch to insp-b still awaits insp-b's answer"
    );
}

#[test]
fn a_later_rejection_never_overwrites_an_acceptance() {
    let p = Pair::new();
    p.drop_batch("b.xml", &equipment_batch(1, 2));
    p.pass(&p.insp);
    p.pass(&p.sup);
    p.pass(&p.insp);
    let db = p.insp.join("store.sqlite");
    let sent = row(
        &db,
        "SELECT batch_id, set_name, sha256, ack_status FROM outbox WHERE kind='batch'",
    );
    assert_eq!(sent[3], "accepted");
    // The same peer answers the same batch again, now "rejected".
    plant_ack(
        &p.insp.join("inbound").join(SUP),
        "second-answer",
        &ack_xml(SUP, INSP, &sent[0], &sent[1], &sent[2], "rejected"),
        &key_of(&p.sup),
    );
    let r = p.pass(&p.insp);
    assert_eq!(r.acks_received, 1);
    assert_eq!(
        row(&db, "SELECT ack_status FROM outbox WHERE kind='batch'"),
        ["accepted"]
    );
    // And an answer naming another payload is refused.
    plant_ack(
        &p.insp.join("inbound").join(SUP),
        "other-payload",
        &ack_xml(SUP, INSP, &sent[0], &sent[1], &"0".repeat(64), "rejected"),
        &key_of(&p.sup),
    );
    let r = p.pass(&p.insp);
    assert_eq!(r.quarantined, 1, "{r:?}");
    let reason = fs::read_to_string(
        p.insp
            .join("quarantine")
            .join(SUP)
            .join("other-payload.reason.txt"),
    )
    .unwrap();
    assert!(reason.starts_with("ACK-HASH"), "{reason}");
}

// ---- 7. The same batch id with other content -------------------------------

#[test]
fn a_batch_id_reused_with_other_content_is_a_conflict_not_a_duplicate() {
    let p = Pair::new();
    let first = wire_batch(INSP, SUP, 1, &[&equipment_record(1)]);
    let id = first
        .split("id=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let second = first
        .replace("seq=\"1\"", "seq=\"2\"")
        .replace(&equipment_record(1), &equipment_record(2));
    let key = key_of(&p.insp);
    plant_in(&p.sup_inbound(), "first", &gzip(first.as_bytes()), &key);
    let r = p.pass(&p.sup);
    assert_eq!(r.applied, 1);
    let conflict = plant_in(&p.sup_inbound(), "second", &gzip(second.as_bytes()), &key);
    let received_sha = sedx::signature::digest_file(&conflict.payload(&p.sup_inbound()))
        .unwrap()
        .sha256_hex();
    let r = p.pass(&p.sup);
    assert_eq!((r.quarantined, r.duplicates, r.applied), (1, 0, 0), "{r:?}");
    let db = p.sup.join("store.sqlite");
    assert_eq!(
        sql_count(
            &db,
            "SELECT count(*) FROM equipment WHERE registration_code = '31103101012006050002'"
        ),
        0,
        "the conflicting batch's records are not applied"
    );
    let reason = fs::read_to_string(
        p.sup
            .join("quarantine")
            .join(INSP)
            .join("second.reason.txt"),
    )
    .unwrap();
    assert!(reason.starts_with("BATCH-CONFLICT"), "{reason}");
    let status = String::from_utf8(sedx(&p.sup, &["status"]).stdout).unwrap();
    assert!(
        status.contains("BATCH-CONFLICT") && status.contains("second"),
        "{status}"
    );
    p.pass(&p.insp);
    let ack = acks_received(&p.insp, SUP)
        .into_iter()
        .find(|a| a.contains("set=\"second\""))
        .expect("a negative acknowledgment for the conflicting set");
    assert!(
        ack.contains("status=\"rejected\"")
            && ack.contains("code=\"BATCH-CONFLICT\"")
            && ack.contains(&format!("sha256=\"{received_sha}\""))
            && ack.contains(&format!("batch=\"{id}\"")),
        "{ack}"
    );
}

fn equipment_record(i: u32) -> String {
    format!("<equipment><registrationCode>3110310101200605{i:04}</registrationCode><category>3110</category><userUnit>上海测试单位{i}</userUnit><orgCode>63169638-2</orgCode></equipment>")
}

// ---- 9. Store integrity ----------------------------------------------------

#[test]
fn a_lost_store_is_refused_not_taken_for_a_new_node() {
    let p = Pair::new();
    p.drop_batch("b.xml", &equipment_batch(1, 2));
    p.pass(&p.insp);
    p.pass(&p.sup);
    let db = p.sup.join("store.sqlite");
    for wal in ["store.sqlite-wal", "store.sqlite-shm"] {
        let _ = fs::remove_file(p.sup.join(wal));
    }
    // Truncated to nothing (a full disk, a bad restore, a careless command).
    fs::write(&db, b"").unwrap();
    // The archived batch, put back where a new node would apply it again.
    for f in files_in(&p.sup.join("archive").join(INSP)) {
        fs::copy(
            p.sup.join("archive").join(INSP).join(&f),
            p.sup_inbound().join(&f),
        )
        .unwrap();
    }
    for args in [&["run", "--once"][..], &["status"][..]] {
        let out = sedx(&p.sup, args);
        assert!(!out.status.success(), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("is empty") && err.contains("sedx restore"),
            "{err}"
        );
    }
    assert_eq!(fs::metadata(&db).unwrap().len(), 0, "nothing was applied");
    // Missing altogether: the same.
    fs::remove_file(&db).unwrap();
    let err = stderr(&sedx(&p.sup, &["run", "--once"]));
    assert!(
        err.contains("is missing") && err.contains("sedx restore"),
        "{err}"
    );
    // A blank store made by hand under a node with history.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE t(x);")
        .unwrap();
    let err = stderr(&sedx(&p.sup, &["run", "--once"]));
    assert!(err.contains("holds no history"), "{err}");
}

// ---- 10. Unknown inbound folders -----------------------------------------

#[test]
fn sets_in_an_inbound_folder_of_no_peer_are_reported() {
    let p = Pair::new();
    let stranger = p.sup.join("inbound").join("insp-unknown");
    fs::create_dir_all(&stranger).unwrap();
    plant_in(
        &stranger,
        "lost-1",
        &gzip(equipment_batch(1, 1).as_bytes()),
        &key_of(&p.insp),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_sedx"))
        .arg("--node")
        .arg(&p.sup)
        .args(["run", "--once"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("folder of no configured peer")
            && stderr(&out).contains("insp-unknown"),
        "{}",
        stderr(&out)
    );
    let status = String::from_utf8(sedx(&p.sup, &["status"]).stdout).unwrap();
    assert!(
        status.contains("UNKNOWN INBOUND FOLDER inbound/insp-unknown: 1 set(s)"),
        "{status}"
    );
    let json = String::from_utf8(sedx(&p.sup, &["status", "--json"]).stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["unknown_inbound"][0]["folder"], "insp-unknown");
    assert_eq!(v["unknown_inbound"][0]["sets"], 1);
    assert_eq!(p.pass(&p.sup).strangers, 1);
}

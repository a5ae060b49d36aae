//! Attacks on a node, each written as the attack itself (docs/security.md lists
//! them with the defence each one proves): a second process on the node, an
//! acknowledgment for another peer's batch, a batch id reused with other
//! content, a lost store, sets uploaded where no peer is configured.

use crate::common::*;
use sedx::context::config::{Config, PeerConfig, Transport};
use sedx::wire::set::SetName;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

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
        local_inbound: None,
        agency: Some("上海市电梯检测站".into()),
        suite: None,
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
    plant_signed(
        &p.sup_inbound(),
        "forged-ack",
        &gzip(ack_xml(INSP, SUP, &sent[0], &sent[1], &sent[2], "accepted").as_bytes()),
        &signing_key(&p.insp),
        "sedx-ack",
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
    plant_signed(
        &p.insp.join("inbound").join(SUP),
        "second-answer",
        &gzip(ack_xml(SUP, INSP, &sent[0], &sent[1], &sent[2], "rejected").as_bytes()),
        &signing_key(&p.sup),
        "sedx-ack",
    );
    let r = p.pass(&p.insp);
    assert_eq!(r.acks_received, 1);
    assert_eq!(
        row(&db, "SELECT ack_status FROM outbox WHERE kind='batch'"),
        ["accepted"]
    );
    // And an answer naming another payload is refused.
    plant_signed(
        &p.insp.join("inbound").join(SUP),
        "other-payload",
        &gzip(ack_xml(SUP, INSP, &sent[0], &sent[1], &"0".repeat(64), "rejected").as_bytes()),
        &signing_key(&p.sup),
        "sedx-ack",
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
    let first = wire_batch(INSP, SUP, 1, &[&numbered_equipment(1)]);
    let id = first
        .split("id=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let second = first
        .replace("seq=\"1\"", "seq=\"2\"")
        .replace(&numbered_equipment(1), &numbered_equipment(2));
    let key = signing_key(&p.insp);
    plant_in(&p.sup_inbound(), "first", &gzip(first.as_bytes()), &key);
    let r = p.pass(&p.sup);
    assert_eq!(r.applied, 1);
    let conflict = plant_in(&p.sup_inbound(), "second", &gzip(second.as_bytes()), &key);
    let received_sha =
        sedx::wire::suite::digest_file(&conflict.payload(&p.sup_inbound()), Suite::Ed25519, &[])
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
        &signing_key(&p.insp),
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
    let out = sedx(&p.sup, &["status"]);
    let status = String::from_utf8(out.stdout).unwrap();
    assert!(
        status.contains("UNKNOWN INBOUND FOLDER inbound/insp-unknown: 1 set(s)"),
        "{status}"
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "a warning for monitoring: {status}"
    );
    let json = String::from_utf8(sedx(&p.sup, &["status", "--json"]).stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["unknown_inbound"][0]["folder"], "insp-unknown");
    assert_eq!(v["unknown_inbound"][0]["sets"], 1);
    assert_eq!(p.pass(&p.sup).strangers, 1);
}

// ---- 2. Links and foreign sets in outbound ----------------------------------

/// A sealed set made in a staging folder, its files then put into `out`.
fn staged_set(p: &Pair, name: &str, key: &TestKey) -> (SetName, std::path::PathBuf) {
    let staging = p.tmp.path().join("staging");
    fs::create_dir_all(&staging).unwrap();
    let xml = wire_batch(INSP, SUP, 1, &[&numbered_equipment(1)]);
    (
        plant_in(&staging, name, &gzip(xml.as_bytes()), key),
        staging,
    )
}

/// Whether any file under `dir` holds exactly `secret`.
fn holds(dir: &Path, secret: &[u8]) -> bool {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .any(|e| fs::read(e.path()).is_ok_and(|b| b == secret))
}

#[test]
fn links_to_secrets_in_a_dropped_set_are_never_followed_or_sent() {
    let p = Pair::new();
    let out = p.insp.join("outbound");
    let key = signing_key(&p.insp);
    let secret = fs::read(p.insp.join("keys/signing_ed25519")).unwrap();
    // Three complete sets, each with one part a link to a secret of the node.
    for (i, part) in ["payload", "sig", "marker"].iter().enumerate() {
        let (name, staging) = staged_set(&p, &format!("evil-{part}"), &key);
        for (k, (from, to)) in parts(&name, &staging, &out).iter().enumerate() {
            if k == i {
                std::os::unix::fs::symlink(p.insp.join("keys/signing_ed25519"), to).unwrap();
            } else {
                fs::rename(from, to).unwrap();
            }
        }
    }
    // And a plain drop that is a link to the store.
    std::os::unix::fs::symlink(p.insp.join("sedx.toml"), out.join("config.xml")).unwrap();
    let r = p.pass(&p.insp);
    assert_eq!((r.shipped, r.quarantined), (0, 4), "{r:?}");
    assert!(
        files_in(&p.sup_inbound()).is_empty(),
        "nothing reached the peer"
    );
    assert!(!holds(&p.sup, &secret), "the key is nowhere at the peer");
    for part in ["payload", "sig", "marker"] {
        let reason = fs::read_to_string(
            p.insp
                .join("quarantine/outbound")
                .join(format!("evil-{part}.reason.txt")),
        )
        .unwrap();
        assert!(reason.starts_with("SET-NAME"), "{part}: {reason}");
        assert!(
            !reason.contains(p.insp.to_str().unwrap()),
            "no local path: {reason}"
        );
    }
    let reason = fs::read_to_string(p.insp.join("quarantine/config.reason.txt")).unwrap();
    assert!(
        reason.starts_with("SET-NAME") && reason.contains("symbolic link"),
        "{reason}"
    );
    assert!(
        fs::symlink_metadata(p.insp.join("quarantine/config.xml"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link itself is kept, its target untouched"
    );
    assert!(p.insp.join("sedx.toml").is_file());
    // The node goes on: the next good drop is sealed, shipped and applied.
    p.drop_batch("good.xml", &equipment_batch(1, 1));
    assert_eq!(p.pass(&p.insp).shipped, 1);
    assert_eq!(p.pass(&p.sup).applied, 1);
}

#[test]
fn a_set_in_outbound_not_signed_by_this_node_is_not_sent() {
    let p = Pair::new();
    let out = p.insp.join("outbound");
    // Signed by the peer's key: a local writer replaying what it once received.
    let (name, staging) = staged_set(&p, "foreign", &signing_key(&p.sup));
    for (from, to) in parts(&name, &staging, &out) {
        fs::rename(from, to).unwrap();
    }
    // Signed by this node, but the payload swapped after sealing.
    let (name, staging) = staged_set(&p, "swapped", &signing_key(&p.insp));
    for (from, to) in parts(&name, &staging, &out) {
        fs::rename(from, to).unwrap();
    }
    fs::write(
        name.payload(&out),
        gzip(wire_batch(INSP, SUP, 1, &[&numbered_equipment(9)]).as_bytes()),
    )
    .unwrap();
    let r = p.pass(&p.insp);
    assert_eq!((r.shipped, r.quarantined), (0, 2), "{r:?}");
    let q = p.insp.join("quarantine/outbound");
    let foreign = fs::read_to_string(q.join("foreign.reason.txt")).unwrap();
    assert!(
        foreign.starts_with("SET-SIGNATURE") || foreign.starts_with("SET-SIGNER"),
        "{foreign}"
    );
    let swapped = fs::read_to_string(q.join("swapped.reason.txt")).unwrap();
    assert!(swapped.starts_with("SET-CHECKSUM"), "{swapped}");
    let status = String::from_utf8(sedx(&p.insp, &["status"]).stdout).unwrap();
    assert!(
        status.contains("foreign") && status.contains("swapped"),
        "{status}"
    );
}

// ---- 3. One decoding, one view --------------------------------------------

/// Plant a batch (bytes as given) from insp-city into the supervision node.
fn plant_batch(p: &Pair, name: &str, doc: &[u8]) -> SetName {
    plant_in(&p.sup_inbound(), name, &gzip(doc), &signing_key(&p.insp))
}

#[test]
fn a_record_hidden_from_the_validator_by_the_encoding_is_never_applied() {
    let p = Pair::new();
    // In ISO-2022-JP, bytes after ESC $ B pair up into kanji: libxml2 sees text
    // inside <userUnit>, while a reader that takes the markup as ASCII sees the
    // first record end and a second, unvalidated one begin.
    let hidden = "</userUnit></equipment><equipment><registrationCode>31103101012006050099</registrationCode><category>3110</category><userUnit>XX";
    let hidden = if hidden.len() % 2 == 1 {
        format!("{hidden}X")
    } else {
        hidden.to_string()
    };
    let record = format!(
        "<equipment><registrationCode>31103101012006050007</registrationCode><category>3110</category><userUnit>AB\x1b$B{hidden}\x1b(BCD</userUnit></equipment>"
    );
    let doc = wire_batch(INSP, SUP, 1, &[&record])
        .replace(
            "<?xml version=\"1.0\"?>",
            "<?xml version=\"1.0\" encoding=\"ISO-2022-JP\"?>",
        )
        .replace("count=\"1\"", "count=\"2\"");
    plant_batch(&p, "hidden", doc.as_bytes());
    // The same trick with UTF-7, hiding a DOCTYPE from a reader of the bytes.
    let utf7 = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-7\"?>\n+ADw-!DOCTYPE batch +AFs-+ADw-!ENTITY x SYSTEM +ACI-file:///etc/passwd+ACI-+AD4-+AF0-+AD4-\n{}",
        &wire_batch(INSP, SUP, 2, &[&numbered_equipment(3)]).replacen("<?xml version=\"1.0\"?>\n", "", 1)
    );
    plant_batch(&p, "utf7", utf7.as_bytes());
    p.pass(&p.sup);
    let db = p.sup.join("store.sqlite");
    assert_eq!(
        sql_count(&db, "SELECT count(*) FROM equipment"),
        0,
        "no record of either"
    );
    assert!(reason_of(&p, "hidden").starts_with("XML-ENCODING"));
    assert!(reason_of(&p, "utf7").starts_with("XML-ENCODING"));
}

#[test]
fn cdata_in_a_gbk_batch_is_decoded_as_gbk_or_refused() {
    let p = Pair::new();
    let text = wire_batch(
        INSP,
        SUP,
        1,
        &[&numbered_equipment(1).replace("上海测试单位1", "<![CDATA[上海 A&B 公司]]>")],
    )
    .replace(
        "<?xml version=\"1.0\"?>",
        "<?xml version=\"1.0\" encoding=\"GBK\"?>",
    );
    let (good, _, _) = encoding_rs::GBK.encode(&text);
    plant_batch(&p, "gbk-cdata", &good);
    // Bytes that are not GBK inside a CDATA section: refused, not stored as U+FFFD.
    let mut bad = encoding_rs::GBK
        .encode(
            &wire_batch(
                INSP,
                SUP,
                2,
                &[&numbered_equipment(2).replace("上海测试单位2", "<![CDATA[甲乙]]>")],
            )
            .replace(
                "<?xml version=\"1.0\"?>",
                "<?xml version=\"1.0\" encoding=\"GBK\"?>",
            ),
        )
        .0
        .into_owned();
    let at = bad.windows(2).position(|w| w == [0xBC, 0xD7]).unwrap(); // 甲
    bad[at + 1] = 0x7F; // not a GBK trail byte
    plant_batch(&p, "gbk-junk", &bad);
    p.pass(&p.sup);
    let db = p.sup.join("store.sqlite");
    assert_eq!(
        sql_text(
            &db,
            "SELECT user_unit FROM equipment WHERE registration_code = '31103101012006050001'"
        )
        .as_deref(),
        Some("上海 A&B 公司")
    );
    assert_eq!(
        sql_count(
            &db,
            "SELECT count(*) FROM equipment WHERE user_unit LIKE '%\u{FFFD}%'"
        ),
        0
    );
    assert!(reason_of(&p, "gbk-junk").starts_with("XML-ENCODING"));
    p.pass(&p.insp);
    let ack = acks_received(&p.insp, SUP)
        .into_iter()
        .find(|a| a.contains("set=\"gbk-junk\""))
        .expect("an answer for the junk");
    assert!(ack.contains("status=\"rejected\""), "{ack}");
}

// ---- 4. Bounded work for any input ----------------------------------------

/// Run `sedx --node NODE run --once` under an address-space limit; its exit
/// status and peak resident memory in MiB.
fn run_limited(node: &Path, limit_mib: u64) -> (i32, f64, String) {
    let script = "import resource, subprocess, sys\n\
                  lim = int(sys.argv[1]) << 20\n\
                  def limit(): resource.setrlimit(resource.RLIMIT_AS, (lim, lim))\n\
                  r = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=limit)\n\
                  sys.stderr.write(r.stderr.decode(errors='replace'))\n\
                  print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(limit_mib.to_string())
        .arg(env!("CARGO_BIN_EXE_sedx"))
        .arg("--node")
        .arg(node)
        .args(["run", "--once"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut parts = text.split_whitespace();
    let code = parts.next().unwrap().parse().unwrap();
    let kib: f64 = parts.next().unwrap().parse().unwrap();
    (code, kib / 1024.0, stderr(&out))
}

#[test]
fn oversized_inputs_are_refused_in_bounded_memory_and_never_block_the_channel() {
    let p = Pair::new();
    // 1. A 100 MB text field in a set of about 100 KB.
    let head = wire_batch(INSP, SUP, 1, &[]);
    let at = head.find("</batch>").unwrap();
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    use std::io::Write;
    e.write_all(head[..at].replace("count=\"0\"", "count=\"1\"").as_bytes())
        .unwrap();
    e.write_all(b"<equipment><registrationCode>31103101012006050001</registrationCode><category>3110</category><userUnit>")
        .unwrap();
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..100 {
        e.write_all(&chunk).unwrap();
    }
    e.write_all(b"</userUnit></equipment></batch>\n").unwrap();
    let long_field = e.finish().unwrap();
    assert!(long_field.len() < 200_000, "{}", long_field.len());
    plant_in(
        &p.sup_inbound(),
        "a-long-field",
        &long_field,
        &signing_key(&p.insp),
    );
    // 2. A well-formed batch expanding 1000:1 towards 2 GB, each piece in bounds.
    let head = wire_batch(INSP, SUP, 2, &[]);
    let at = head.find("</batch>").unwrap();
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(&head.as_bytes()[..at]).unwrap();
    let records = numbered_equipment(2).repeat(1 << 13);
    for _ in 0..128 {
        e.write_all(records.as_bytes()).unwrap();
    }
    e.write_all(b"</batch>\n").unwrap();
    let bomb = e.finish().unwrap();
    plant_in(&p.sup_inbound(), "b-bomb", &bomb, &signing_key(&p.insp));
    // 3. The next good batch.
    plant_batch(
        &p,
        "c-good",
        wire_batch(INSP, SUP, 3, &[&numbered_equipment(3)]).as_bytes(),
    );
    let (code, mib, err) = run_limited(&p.sup, 512);
    assert_eq!(code, 0, "{err}");
    assert!(mib < 64.0, "peak {mib:.1} MiB");
    assert!(reason_of(&p, "a-long-field").starts_with("XML-LIMIT"));
    let bomb = reason_of(&p, "b-bomb");
    assert!(
        bomb.starts_with("SET-TOO-LARGE") && bomb.contains("times its size"),
        "{bomb}"
    );
    let db = p.sup.join("store.sqlite");
    assert_eq!(
        sql_text(&db, "SELECT status FROM journal WHERE seq = 3").as_deref(),
        Some("accepted"),
        "the good batch behind them is applied"
    );
    assert_eq!(
        sql_count(
            &db,
            "SELECT count(*) FROM journal WHERE seq IN (1, 2) AND status = 'rejected'"
        ),
        2,
        "the refused ones used up their sequence numbers"
    );
}

#[test]
fn a_set_that_keeps_stopping_the_node_is_put_aside_and_the_next_goes_through() {
    let p = Pair::new();
    // Larger than the 64 KiB read for the header of a set put aside.
    let records: Vec<String> = (1..=800).map(numbered_equipment).collect();
    let records: Vec<&str> = records.iter().map(String::as_str).collect();
    plant_batch(
        &p,
        "a-poison",
        wire_batch(INSP, SUP, 1, &records).as_bytes(),
    );
    plant_batch(
        &p,
        "b-good",
        wire_batch(INSP, SUP, 2, &[&numbered_equipment(900)]).as_bytes(),
    );
    // The first set stops the process every time it is worked on (as the kernel
    // would kill a process for memory).
    for _ in 0..3 {
        let out = Command::new(env!("CARGO_BIN_EXE_sedx"))
            .arg("--node")
            .arg(&p.sup)
            .args(["run", "--once"])
            .env("SEDX_CRASH_AT", "before-apply")
            .output()
            .unwrap();
        assert!(stderr(&out).contains("crash injected"), "{}", stderr(&out));
    }
    let r = p.pass(&p.sup);
    assert_eq!((r.quarantined, r.applied), (1, 1), "{r:?}");
    assert!(reason_of(&p, "a-poison").starts_with("SET-POISON"));
    let db = p.sup.join("store.sqlite");
    assert_eq!(
        sql_text(&db, "SELECT status FROM journal WHERE seq = 2").as_deref(),
        Some("accepted")
    );
    p.pass(&p.insp);
    let ack = acks_received(&p.insp, SUP)
        .into_iter()
        .find(|a| a.contains("set=\"a-poison\""))
        .expect("the sender is told");
    assert!(ack.contains("code=\"SET-POISON\""), "{ack}");
}

#[test]
fn a_pull_never_downloads_more_than_the_payload_limit() {
    let p = Pair::new();
    let mut sup = Config::load(&p.sup).unwrap();
    sup.peers[0].transport = Transport::Local;
    sup.save(&p.sup).unwrap();
    let outbox = p.sup.join("outbox").join(INSP);
    fs::create_dir_all(&outbox).unwrap();
    let mut insp = Config::load(&p.insp).unwrap();
    insp.peers[0].transport = Transport::Pull;
    insp.peers[0].remote_outbox = Some(outbox.display().to_string());
    insp.node.max_payload_bytes = 1 << 20;
    insp.save(&p.insp).unwrap();
    // The hub offers a 5 MB payload, then a good notice.
    let staging = p.tmp.path().join("hub-staging");
    fs::create_dir_all(&staging).unwrap();
    let big: Vec<u8> = (0..5u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let name = plant_in(&staging, "a-big", &big, &signing_key(&p.sup));
    for (from, to) in parts(&name, &staging, &outbox) {
        fs::rename(from, to).unwrap();
    }
    let r = p.pass(&p.insp);
    assert_eq!((r.pulled, r.quarantined), (0, 1), "{r:?}");
    assert!(
        !p.insp
            .join("inbound")
            .join(SUP)
            .join(name.payload_file())
            .exists()
            && files_in(&p.insp.join("inbound").join(SUP)).is_empty(),
        "nothing of it was stored"
    );
    let status = String::from_utf8(sedx(&p.insp, &["status"]).stdout).unwrap();
    assert!(
        status.contains("SET-TOO-LARGE") && status.contains("a-big"),
        "{status}"
    );
}

// ---- 8. Printing hostile text -----------------------------------------------

#[test]
fn a_field_with_line_breaks_cannot_forge_a_log_status_or_view_line() {
    let p = Pair::new();
    // Schema-valid values: a text may hold a line feed, a NEL (C1) and a
    // right-to-left override.
    let forged_unit =
        "上海某公司\n2026-11-28T00:00:00Z  INFO FORGED-VIEW applied\u{85}FORGED-C1\u{202E}x";
    let applied = numbered_equipment(1).replace("上海测试单位1", forged_unit);
    let refused = numbered_equipment(2).replace(
        "31103101012006050002",
        "31103101012006050002\nFORGED-STATUS",
    );
    plant_batch(
        &p,
        "forged",
        wire_batch(INSP, SUP, 1, &[&applied, &refused]).as_bytes(),
    );
    let out = sedx(&p.sup, &["run", "--once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let db = p.sup.join("store.sqlite");
    assert_eq!(
        sql_text(&db, "SELECT user_unit FROM equipment").as_deref(),
        Some(forged_unit),
        "stored as sent"
    );
    let forged = |text: &str| {
        text.lines().any(|l| {
            l.starts_with("FORGED")
                || l.starts_with("2026-11-28T00:00:00Z")
                || l.contains('\u{85}')
                || l.contains('\u{202E}')
        })
    };
    assert!(!forged(&stderr(&out)), "{}", stderr(&out));
    let view =
        String::from_utf8(sedx(&p.sup, &["equipment", "show", "31103101012006050001"]).stdout)
            .unwrap();
    assert!(
        view.contains("FORGED-VIEW") && view.contains("\\u{a}"),
        "{view}"
    );
    assert!(!forged(&view), "{view}");
    // A local drop with a key that breaks the line is refused on the way out,
    // and logged; a good one is sent.
    p.drop_batch(
        "local.xml",
        &drop_doc(
            INSP,
            &[&numbered_equipment(3)
                .replace("31103101012006050003", "3110310101200605\nFORGED-LOG line")],
        ),
    );
    p.drop_batch("good.xml", &equipment_batch(5, 1));
    let out = sedx(&p.insp, &["run", "--once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stderr(&out);
    assert!(log.contains("FORGED-LOG"), "the refusal is logged: {log}");
    assert!(!forged(&log), "{log}");
    // The peer answers the good batch with texts that break lines.
    let sent = row(
        &p.insp.join("store.sqlite"),
        "SELECT batch_id, set_name, sha256 FROM outbox WHERE kind='batch'",
    );
    let ack = ack_xml(SUP, INSP, &sent[0], &sent[1], &sent[2], "rejected").replace(
        "/>",
        "><record index=\"0\" key=\"K&#10;FORGED-STATUS key\" code=\"REC-FIELD\">bad&#10;FORGED-STATUS message&#133;</record></ack>",
    );
    plant_signed(
        &p.insp.join("inbound").join(SUP),
        "answer",
        &gzip(ack.as_bytes()),
        &signing_key(&p.sup),
        "sedx-ack",
    );
    let out = sedx(&p.insp, &["run", "--once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!forged(&stderr(&out)), "{}", stderr(&out));
    let status = String::from_utf8(sedx(&p.insp, &["status"]).stdout).unwrap();
    assert!(status.contains("FORGED-STATUS"), "{status}");
    assert!(!forged(&status), "{status}");
    let reason_files = walkdir::WalkDir::new(p.sup.join("quarantine"))
        .into_iter()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".txt"))
        .map(|e| fs::read_to_string(e.path()).unwrap())
        .collect::<String>();
    assert!(!forged(&reason_files), "{reason_files}");
}

// ---- 1. Node files are private -----------------------------------------------

#[test]
fn node_files_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let node = tmp.path().join("node");
    let backup = tmp.path().join("backup");
    let sh = |cmd: String| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("umask 000; exec {cmd}"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    };
    let bin = env!("CARGO_BIN_EXE_sedx");
    sh(format!(
        "{bin} init {} --id sup-x --role supervision",
        node.display()
    ));
    sh(format!(
        "{bin} --node {} backup {}",
        node.display(),
        backup.display()
    ));
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    for (path, want) in [
        (node.clone(), 0o711),
        (node.join("keys"), 0o700),
        (node.join("keys/signing_ed25519"), 0o600),
        (node.join("keys/login_ed25519"), 0o600),
        (node.join("sedx.toml"), 0o600),
        (node.join("store.sqlite"), 0o600),
        (node.join("archive"), 0o700),
        (node.join("quarantine"), 0o700),
        (node.join("sent"), 0o700),
        (node.join("outbound"), 0o770),
        (backup.clone(), 0o700),
        (backup.join("store.sqlite"), 0o600),
        (backup.join("sedx.toml"), 0o600),
        (backup.join("keys/signing_ed25519"), 0o600),
    ] {
        assert_eq!(mode(&path), want, "{} is {:o}", path.display(), mode(&path));
    }
}

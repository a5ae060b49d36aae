//! The recipes of docs/format.md, run as written: a set made with gzip,
//! sha256sum and ssh-keygen and uploaded with sftp is accepted; a set sedx made
//! passes sha256sum -c and ssh-keygen -Y verify (the Ed25519 suite; the SM2
//! suite's OpenSSL recipes: tests/it/national.rs).

use crate::common::*;
use std::fs;
use std::path::Path;
use std::process::Command;

#[test]
fn set_made_with_standard_tools_is_accepted() {
    let p = Pair::with_suite(Suite::Ed25519);
    let hand = p.tmp.path().join("hand");
    fs::create_dir_all(&hand).unwrap();
    let id = uuid::Uuid::new_v4();
    let xml = sample_batch().replace(
        r#"from="insp-city" to="sup-city">"#,
        &format!(r#"id="{id}" from="insp-city" to="sup-city" seq="1" created="2026-11-27T02:00:00+08:00" count="8">"#),
    );
    fs::write(hand.join("by-hand.xml"), xml).unwrap();
    let key = p.insp.join("keys/signing_ed25519");
    sh(
        &recipe("seal"),
        &hand,
        &[
            ("NAME", "by-hand".into()),
            ("KEY", key.display().to_string()),
        ],
    );
    let host_key = fs::read_to_string(&p.sshd.host_key).unwrap();
    let known = hand.join("known_hosts");
    fs::write(&known, format!("[127.0.0.1]:{} {}", p.sshd.port, host_key)).unwrap();
    sh(
        &recipe("upload"),
        &hand,
        &[
            ("NAME", "by-hand".into()),
            ("PORT", p.sshd.port.to_string()),
            (
                "LOGIN_KEY",
                p.insp.join("keys/login_ed25519").display().to_string(),
            ),
            ("KNOWN_HOSTS", known.display().to_string()),
            ("PEER", format!("{}@127.0.0.1", whoami())),
            ("REMOTE_DIR", p.sup_inbound().display().to_string()),
        ],
    );
    assert_eq!(files_in(&p.sup_inbound()).len(), 3);
    let r = p.pass(&p.sup);
    assert_eq!((r.applied, r.quarantined), (1, 0));
    let db = p.sup.join("store.sqlite");
    assert_eq!(
        sql_text(&db, "SELECT batch_id FROM journal").unwrap(),
        id.to_string()
    );
    assert_eq!(sql_count(&db, "SELECT count(*) FROM equipment"), 3);
    assert_eq!(p.pass(&p.insp).acks_received, 1);
}

#[test]
fn set_made_by_hand_and_dropped_into_outbound_is_shipped_as_it_is() {
    let p = Pair::with_suite(Suite::Ed25519);
    let hand = p.tmp.path().join("hand");
    fs::create_dir_all(&hand).unwrap();
    let xml = equipment_batch(1, 2).replace(
        r#"from="insp-city" to="sup-city">"#,
        &format!(r#"id="{}" from="insp-city" to="sup-city" seq="1" created="2026-11-27T02:00:00Z" count="2">"#, uuid::Uuid::new_v4()),
    );
    fs::write(hand.join("dropped.xml"), xml).unwrap();
    let key = p.insp.join("keys/signing_ed25519");
    sh(
        &recipe("seal"),
        &hand,
        &[
            ("NAME", "dropped".into()),
            ("KEY", key.display().to_string()),
        ],
    );
    let out = p.insp.join("outbound");
    for f in [
        "dropped.xml.gz",
        "dropped.xml.gz.sig",
        "dropped.xml.gz.sha256",
    ] {
        fs::copy(hand.join(f), out.join(f)).unwrap();
    }
    let r = p.pass(&p.insp);
    assert_eq!((r.sealed, r.shipped), (0, 1));
    assert_eq!(
        fs::read(p.sup_inbound().join("dropped.xml.gz")).unwrap(),
        fs::read(hand.join("dropped.xml.gz")).unwrap(),
        "shipped byte for byte"
    );
    assert_eq!(p.pass(&p.sup).applied, 1);
}

#[test]
fn sets_made_by_sedx_pass_sha256sum_and_ssh_keygen() {
    let p = Pair::with_suite(Suite::Ed25519);
    p.drop_batch("b1.xml", &sample_batch());
    p.pass(&p.insp);
    p.pass(&p.sup);
    let check = p.tmp.path().join("check");
    fs::create_dir_all(&check).unwrap();
    // The batch, as it was shipped by the inspection node...
    let batch = files_in(&p.insp.join("sent"))
        .into_iter()
        .find(|f| f.ends_with(".xml.gz.sha256"))
        .unwrap();
    let batch = batch.trim_end_matches(".xml.gz.sha256").to_string();
    // ...and the acknowledgment the supervision node sent back.
    let ack = files_in(&p.sup.join("sent"))
        .into_iter()
        .find(|f| f.ends_with(".xml.gz.sha256"))
        .unwrap();
    let ack = ack.trim_end_matches(".xml.gz.sha256").to_string();
    for (dir, name) in [(p.insp.join("sent"), &batch), (p.sup.join("sent"), &ack)] {
        for ext in [".xml.gz", ".xml.gz.sig", ".xml.gz.sha256"] {
            fs::copy(
                dir.join(format!("{name}{ext}")),
                check.join(format!("{name}{ext}")),
            )
            .unwrap();
        }
    }
    let line = |node: &Path, id: &str| {
        format!(
            "{id} {}",
            fs::read_to_string(node.join("keys/signing_ed25519.pub")).unwrap()
        )
    };
    fs::write(
        check.join("allowed_signers"),
        line(&p.insp, INSP) + &line(&p.sup, SUP),
    )
    .unwrap();
    sh(
        &recipe("check"),
        &check,
        &[("NAME", batch.clone()), ("SENDER", INSP.into())],
    );
    let xml = fs::read_to_string(check.join(format!("{batch}.xml"))).unwrap();
    assert!(xml.contains("31103101012006050007") && xml.contains(r#"seq="1""#));
    let ack_recipe = recipe("check").replace("-n sedx-batch", "-n sedx-ack");
    sh(
        &ack_recipe,
        &check,
        &[("NAME", ack.clone()), ("SENDER", SUP.into())],
    );
    // And the check fails when it should: the wrong signer, or a changed byte.
    let wrong = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &recipe("check")])
        .current_dir(&check)
        .env("NAME", &batch)
        .env("SENDER", SUP)
        .output()
        .unwrap();
    assert!(
        !wrong.status.success(),
        "a batch is not accepted as signed by the other node"
    );
}

/// The lines of a file the recipes leave (empty when there is none).
fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// An agency that runs no sedx and no SFTP server takes part through the hub
/// with the recipes of docs/format.md only: it sends, pulls what waits for it,
/// answers, and reads the answers to its own batches.
#[test]
fn a_participant_without_sedx_pulls_answers_and_reads_its_answers() {
    let p = Pair::with_suite(Suite::Ed25519);
    let mut hub = sedx::context::config::Config::load(&p.sup).unwrap();
    hub.peers[0].transport = sedx::context::config::Transport::Local;
    hub.save(&p.sup).unwrap();
    let agency = p.tmp.path().join("agency");
    fs::create_dir_all(&agency).unwrap();
    let hub_line = fs::read_to_string(p.sup.join("keys/signing_ed25519.pub")).unwrap();
    fs::write(agency.join("allowed_signers"), format!("{SUP} {hub_line}")).unwrap();
    let host_key = fs::read_to_string(&p.sshd.host_key).unwrap();
    let known = agency.join("known_hosts");
    fs::write(&known, format!("[127.0.0.1]:{} {}", p.sshd.port, host_key)).unwrap();
    let env = |name: &str| -> Vec<(&'static str, String)> {
        vec![
            ("NAME", name.to_string()),
            ("ME", INSP.into()),
            ("HUB_ID", SUP.into()),
            (
                "KEY",
                p.insp.join("keys/signing_ed25519").display().to_string(),
            ),
            (
                "LOGIN_KEY",
                p.insp.join("keys/login_ed25519").display().to_string(),
            ),
            ("PORT", p.sshd.port.to_string()),
            ("KNOWN_HOSTS", known.display().to_string()),
            ("HUB", format!("{}@127.0.0.1", whoami())),
            ("PEER", format!("{}@127.0.0.1", whoami())),
            ("REMOTE_DIR", p.sup_inbound().display().to_string()),
            (
                "REMOTE_OUTBOX",
                p.sup.join("outbox").join(INSP).display().to_string(),
            ),
        ]
    };

    // The hub has a construction notice for the agency; the agency sends a batch.
    fs::write(p.sup.join("outbound/notice.xml"), drop_doc(SUP, &[NOTICE])).unwrap();
    p.pass(&p.sup);
    let id = uuid::Uuid::new_v4();
    let xml = equipment_batch(1, 2).replace(
        r#"from="insp-city" to="sup-city">"#,
        &format!(r#"id="{id}" from="insp-city" to="sup-city" seq="1" created="2026-11-27T02:00:00Z" count="2">"#),
    );
    fs::write(agency.join("mine.xml"), xml).unwrap();
    sh(&recipe("seal"), &agency, &env("mine"));
    sh(&recipe("upload"), &agency, &env("mine"));

    // It pulls the notice, checks it, and removes it at the hub.
    sh(&recipe("pull"), &agency, &env(""));
    let fetched = lines(&agency.join("fetched"));
    assert_eq!(fetched.len(), 1, "{fetched:?}");
    let notice = fs::read_to_string(agency.join(format!("{}.xml", fetched[0]))).unwrap();
    assert!(notice.contains("SG-1"), "{notice}");
    assert!(files_in(&p.sup.join("outbox").join(INSP)).is_empty());
    // It answers the notice's batch.
    sh(&recipe("answer"), &agency, &env(&fetched[0]));
    let ack = files_in(&agency)
        .into_iter()
        .find(|f| f.contains("-ack-") && f.ends_with(".xml.gz.sha256"))
        .unwrap();
    let ack = ack.trim_end_matches(".xml.gz.sha256").to_string();
    sh(&recipe("upload"), &agency, &env(&ack));

    // The hub applies the batch, takes the answer, and answers the batch.
    let r = p.pass(&p.sup);
    assert_eq!((r.applied, r.acks_received, r.quarantined), (1, 1, 0));
    assert_eq!(
        sql_text(
            &p.sup.join("store.sqlite"),
            "SELECT ack_status FROM outbox WHERE kind = 'batch'"
        )
        .as_deref(),
        Some("accepted"),
        "the hub's batch is answered"
    );
    // The agency pulls the answer to its own batch.
    fs::remove_file(agency.join("fetched")).unwrap();
    sh(&recipe("pull"), &agency, &env(""));
    let fetched = lines(&agency.join("fetched"));
    assert_eq!(fetched.len(), 1, "{fetched:?}");
    assert!(fetched[0].contains("-ack-"), "{fetched:?}");
    let answer = fs::read_to_string(agency.join(format!("{}.xml", fetched[0]))).unwrap();
    assert!(
        answer.contains(&format!(r#"batch="{id}""#))
            && answer.contains(r#"status="accepted""#)
            && answer.contains(r#"seq-used="true""#),
        "{answer}"
    );
    // And the hub saw the agency pull.
    p.pass(&p.sup);
    let status = sedx(&p.sup, &["status", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert!(json["peers"][0]["pull"]["last_pull"].is_string(), "{json}");
    assert_eq!(status.status.code(), Some(0), "{json}");
}

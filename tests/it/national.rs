//! The national suite (SM2 signatures with SM3, SM3 markers) on a channel:
//! the exchange, the attacks on it (a set in the other suite, the wrong key, a
//! tampered payload), and docs/format.md's OpenSSL recipes run as written,
//! both ways. `SEDX_TEST_SUITE=sm2` runs the whole exchange suite on it too.

use crate::common::*;
use crate::hostile::{assert_refused, flip_byte, sealed_by_insp, RECORD};
use sedx::wire::set::SetName;
use sedx::wire::sm2sig::{Sm2Key, Sm2Trust};
use std::fs;
use std::path::Path;
use std::process::Command;

fn good_batch(seq: u64) -> Vec<u8> {
    gzip(wire_batch(INSP, SUP, seq, &[RECORD]).as_bytes())
}

/// A fresh SM2 key, as OpenSSL makes it, in `dir`.
fn stranger_key(dir: &Path, name: &str) -> Sm2Key {
    let path = dir.join(format!("{name}.pem"));
    stdout(
        Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:SM2",
                "-out",
            ])
            .arg(&path)
            .output()
            .unwrap(),
    );
    Sm2Key::load(&path).unwrap()
}

#[test]
fn an_sm2_channel_carries_batches_and_answers_sealed_with_sm2_and_sm3() {
    let p = Pair::with_suite(Suite::Sm2);
    p.drop_batch("b1.xml", &sample_batch());
    assert_eq!(p.pass(&p.insp).shipped, 1);
    let inbound = files_in(&p.sup_inbound());
    assert!(
        inbound.iter().any(|f| f.ends_with(".xml.gz.sm3"))
            && !inbound.iter().any(|f| f.ends_with(".sha256")),
        "{inbound:?}"
    );
    // The signature is an SM2 one in DER, not an SSHSIG.
    let sig = inbound.iter().find(|f| f.ends_with(".sig")).unwrap();
    let sig = fs::read(p.sup_inbound().join(sig)).unwrap();
    assert!(sedx::wire::sm2sig::parse_sig(&sig).is_ok());
    let r = p.pass(&p.sup);
    assert_eq!((r.applied, r.quarantined, r.shipped), (1, 0, 1));
    let db = p.sup.join("store.sqlite");
    if !on_postgres() {
        assert_eq!(sql_count(&db, "SELECT count(*) FROM equipment"), 3);
    }
    // The answer travels in the channel's suite too, and settles the batch.
    let r = p.pass(&p.insp);
    assert_eq!((r.acks_received, r.quarantined), (1, 0));
    let answers = files_in(&p.insp.join("archive").join(SUP));
    assert!(
        answers
            .iter()
            .any(|f| f.contains("-ack-") && f.ends_with(".xml.gz.sm3")),
        "{answers:?}"
    );
    // The other way: the supervision node's notice goes down on the same channel.
    fs::write(p.sup.join("outbound/notice.xml"), drop_doc(SUP, &[NOTICE])).unwrap();
    assert_eq!(p.pass(&p.sup).shipped, 1);
    let r = p.pass(&p.insp);
    assert_eq!((r.applied, r.quarantined), (1, 0));
    assert_eq!(p.pass(&p.sup).acks_received, 1);
}

#[test]
fn a_set_sealed_with_ed25519_on_an_sm2_channel_is_refused_as_the_wrong_suite() {
    let p = Pair::with_suite(Suite::Sm2);
    // Authentic in every other way: the sender's own Ed25519 key, a good batch.
    let name = plant_in(
        &p.sup_inbound(),
        "old-suite",
        &good_batch(1),
        &ed25519_key(&p.insp).into(),
    );
    assert_refused(&p, &name, "SET-SUITE");
}

#[test]
fn a_set_sealed_with_sm2_on_an_ed25519_channel_is_refused_as_the_wrong_suite() {
    let p = Pair::with_suite(Suite::Ed25519);
    let name = plant_sm2(
        &p.sup_inbound(),
        "new-suite",
        &good_batch(1),
        &sm2_key(&p.insp),
    );
    assert_refused(&p, &name, "SET-SUITE");
}

#[test]
fn a_set_marked_in_both_suites_is_refused() {
    let p = Pair::with_suite(Suite::Sm2);
    let name = plant_sm2(&p.sup_inbound(), "both", &good_batch(1), &sm2_key(&p.insp));
    write_marker(&p.sup_inbound(), &name, Suite::Ed25519);
    assert_refused(&p, &name, "SET-SUITE");
}

#[test]
fn an_sm2_set_signed_by_an_unknown_key_is_refused() {
    let p = Pair::with_suite(Suite::Sm2);
    let key = stranger_key(p.tmp.path(), "stranger");
    let name = plant_sm2(&p.sup_inbound(), "stranger", &good_batch(1), &key);
    assert_refused(&p, &name, "SET-SIGNATURE");
}

#[test]
fn an_sm2_set_signed_with_another_trusted_nodes_key_is_refused_as_the_wrong_signer() {
    let p = Pair::with_suite(Suite::Sm2);
    let other = stranger_key(p.tmp.path(), "other");
    append_line(
        &p.sup.join("keys/sm2_trust"),
        &Sm2Trust::line("insp-other", other.public()),
    );
    let name = plant_sm2(&p.sup_inbound(), "impostor", &good_batch(1), &other);
    assert_refused(&p, &name, "SET-SIGNER");
    let reason = reason_of(&p, "impostor");
    assert!(reason.contains("insp-other"), "{reason}");
}

#[test]
fn a_tampered_sm2_payload_fails_the_sm3_checksum() {
    let p = Pair::with_suite(Suite::Sm2);
    let name = sealed_by_insp(&p);
    flip_byte(&name.payload(&p.sup_inbound()), 100);
    assert_refused(&p, &name, "SET-CHECKSUM");
}

#[test]
fn a_tampered_sm2_payload_with_a_new_sm3_marker_fails_the_signature() {
    let p = Pair::with_suite(Suite::Sm2);
    let name = sealed_by_insp(&p);
    let dir = p.sup_inbound();
    flip_byte(&name.payload(&dir), 100);
    write_marker(&dir, &name, Suite::Sm2);
    assert_refused(&p, &name, "SET-SIGNATURE");
}

#[test]
fn an_sm2_signature_that_is_not_der_is_refused() {
    let p = Pair::with_suite(Suite::Sm2);
    let name = sealed_by_insp(&p);
    let sig = name.sig(&p.sup_inbound());
    let mut der = fs::read(&sig).unwrap();
    der.push(0); // trailing bytes: OpenSSL refuses them too
    fs::write(&sig, der).unwrap();
    assert_refused(&p, &name, "SET-SIGNATURE");
}

#[test]
fn openssls_empty_default_id_is_refused_with_the_fix_named() {
    // `openssl dgst -sm3 -sign` without -sigopt distid signs with an empty id:
    // refused, and the reason says which option to add.
    let p = Pair::with_suite(Suite::Sm2);
    let dir = p.sup_inbound();
    let name = SetName::new("no-distid").unwrap();
    fs::write(name.payload(&dir), good_batch(1)).unwrap();
    let key = p.insp.join("keys/signing_sm2.pem");
    stdout(
        Command::new("openssl")
            .args(["dgst", "-sm3", "-sign"])
            .arg(&key)
            .arg("-out")
            .arg(name.sig(&dir))
            .arg(name.payload(&dir))
            .output()
            .unwrap(),
    );
    write_marker(&dir, &name, Suite::Sm2);
    assert_refused(&p, &name, "SET-SIGNATURE");
    let reason = reason_of(&p, "no-distid");
    assert!(reason.contains("distid:1234567812345678"), "{reason}");
}

#[test]
fn an_sm2_set_made_with_openssl_alone_is_accepted() {
    let p = Pair::with_suite(Suite::Sm2);
    let hand = p.tmp.path().join("hand");
    fs::create_dir_all(&hand).unwrap();
    // A participant's own key, made by OpenSSL; its trust line goes to the hub.
    let env = |name: &str| -> Vec<(&'static str, String)> {
        vec![
            ("NAME", name.to_string()),
            ("ME", INSP.into()),
            ("KEY", hand.join("signing_sm2.pem").display().to_string()),
            ("MARKER", "sm3".into()),
            ("PORT", p.sshd.port.to_string()),
            (
                "LOGIN_KEY",
                p.insp.join("keys/login_ed25519").display().to_string(),
            ),
            (
                "KNOWN_HOSTS",
                hand.join("known_hosts").display().to_string(),
            ),
            ("PEER", format!("{}@127.0.0.1", whoami())),
            ("REMOTE_DIR", p.sup_inbound().display().to_string()),
        ]
    };
    sh(&recipe("sm2-key"), &hand, &env(""));
    let line = fs::read_to_string(hand.join(format!("{INSP}.sm2_trust"))).unwrap();
    // The hub trusts only this key for the participant from now on.
    fs::write(
        p.sup.join("keys/sm2_trust"),
        format!("{}\n{line}", Sm2Trust::line(SUP, sm2_key(&p.sup).public())),
    )
    .unwrap();
    let id = uuid::Uuid::new_v4();
    let xml = sample_batch().replace(
        r#"from="insp-city" to="sup-city">"#,
        &format!(r#"id="{id}" from="insp-city" to="sup-city" seq="1" created="2026-11-27T02:00:00+08:00" count="8">"#),
    );
    fs::write(hand.join("by-openssl.xml"), xml).unwrap();
    sh(&recipe("sm2-seal"), &hand, &env("by-openssl"));
    let host_key = fs::read_to_string(&p.sshd.host_key).unwrap();
    fs::write(
        hand.join("known_hosts"),
        format!("[127.0.0.1]:{} {}", p.sshd.port, host_key),
    )
    .unwrap();
    sh(&recipe("upload"), &hand, &env("by-openssl"));
    assert_eq!(
        files_in(&p.sup_inbound()),
        vec![
            "by-openssl.xml.gz",
            "by-openssl.xml.gz.sig",
            "by-openssl.xml.gz.sm3"
        ]
    );
    let r = p.pass(&p.sup);
    assert_eq!((r.applied, r.quarantined), (1, 0));
    if !on_postgres() {
        let db = p.sup.join("store.sqlite");
        assert_eq!(
            sql_text(&db, "SELECT batch_id FROM journal").unwrap(),
            id.to_string()
        );
    }
    assert_eq!(p.pass(&p.insp).acks_received, 1);
    // And a set signed by the node's old key is no longer taken from it.
    plant_sm2(
        &p.sup_inbound(),
        "old-key",
        &good_batch(2),
        &sm2_key(&p.insp),
    );
    let r = p.pass(&p.sup);
    assert_eq!((r.applied, r.quarantined), (0, 1));
    let reason = reason_of(&p, "old-key");
    assert!(reason.starts_with("SET-SIGNATURE"), "{reason}");
}

#[test]
fn sm2_sets_made_by_sedx_verify_with_openssl() {
    let p = Pair::with_suite(Suite::Sm2);
    p.drop_batch("b1.xml", &sample_batch());
    p.pass(&p.insp);
    p.pass(&p.sup);
    let check = p.tmp.path().join("check");
    fs::create_dir_all(&check).unwrap();
    let stem = |dir: &Path| {
        files_in(dir)
            .into_iter()
            .find(|f| f.ends_with(".xml.gz.sm3"))
            .unwrap()
            .trim_end_matches(".xml.gz.sm3")
            .to_string()
    };
    let batch = stem(&p.insp.join("sent"));
    let ack = stem(&p.sup.join("sent"));
    for (dir, name) in [(p.insp.join("sent"), &batch), (p.sup.join("sent"), &ack)] {
        for ext in [".xml.gz", ".xml.gz.sig", ".xml.gz.sm3"] {
            fs::copy(
                dir.join(format!("{name}{ext}")),
                check.join(format!("{name}{ext}")),
            )
            .unwrap();
        }
    }
    // The keys as a participant holds them: both nodes' sm2_trust lines.
    fs::write(
        check.join("sm2_trust"),
        format!(
            "{}\n{}\n",
            Sm2Trust::line(INSP, sm2_key(&p.insp).public()),
            Sm2Trust::line(SUP, sm2_key(&p.sup).public())
        ),
    )
    .unwrap();
    let env =
        |name: &str, sender: &str| vec![("NAME", name.to_string()), ("SENDER", sender.into())];
    sh(&recipe("sm2-check"), &check, &env(&batch, INSP));
    let xml = fs::read_to_string(check.join(format!("{batch}.xml"))).unwrap();
    assert!(xml.contains("31103101012006050007") && xml.contains(r#"seq="1""#));
    sh(&recipe("sm2-check"), &check, &env(&ack, SUP));
    // It fails when it should: the wrong signer, a changed byte.
    assert!(
        !shell(&recipe("sm2-check"), &check, &env(&batch, SUP))
            .status
            .success(),
        "a batch is not accepted as signed by the other node"
    );
    flip_byte(&check.join(format!("{ack}.xml.gz")), 50);
    assert!(
        !shell(&recipe("sm2-check"), &check, &env(&ack, SUP))
            .status
            .success(),
        "a changed byte fails the check"
    );
}

#[test]
fn init_and_cards_carry_the_suite_and_peer_add_makes_an_sm2_channel() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let init = |dir: &Path, id: &str, role: &str, suite: &[&str]| {
        stdout(
            Command::new(env!("CARGO_BIN_EXE_sedx"))
                .arg("init")
                .arg(dir)
                .args(["--id", id, "--role", role])
                .args(suite)
                .output()
                .unwrap(),
        )
    };
    let said = init(&a, "sup-a", "supervision", &["--suite", "sm2"]);
    assert!(said.contains("sm2"), "{said}");
    init(&b, "insp-b", "inspection", &[]);
    // The SM2 key is OpenSSL's format, private to the node.
    let key = a.join("keys/signing_sm2.pem");
    stdout(
        Command::new("openssl")
            .args(["pkey", "-noout", "-in"])
            .arg(&key)
            .output()
            .unwrap(),
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let card = tmp.path().join("a.card");
    stdout(sedx(
        &a,
        &[
            "card",
            "--host",
            "127.0.0.1",
            "--host-key",
            "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "--out",
            card.to_str().unwrap(),
        ],
    ));
    let text = fs::read_to_string(&card).unwrap();
    assert!(
        text.contains(r#"suite = "sm2""#) && text.contains("sm2_key = "),
        "{text}"
    );
    stdout(sedx(&b, &["peer", "add", card.to_str().unwrap()]));
    let cfg = sedx::context::config::Config::load(&b).unwrap();
    assert_eq!(cfg.suite_of("sup-a"), Suite::Sm2);
    let trust = Sm2Trust::load(&b.join("keys/sm2_trust")).unwrap();
    assert_eq!(
        trust.keys_of("sup-a"),
        vec![Sm2Key::load(&key).unwrap().public()]
    );
    // A card without the SM2 key cannot make an SM2 channel.
    let stripped: String = text
        .lines()
        .filter(|l| !l.starts_with("sm2_key"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&card, stripped).unwrap();
    let out = sedx(&b, &["peer", "add", card.to_str().unwrap()]);
    assert!(!out.status.success());
}

#[test]
fn a_set_in_outbound_sealed_in_the_old_suite_is_not_sent() {
    // A set sealed before the channel switched to SM2, copied back into
    // outbound/ (a resend by hand): the peer would refuse it, so it stays here.
    let p = Pair::with_suite(Suite::Sm2);
    let out = p.insp.join("outbound");
    let doc = wire_batch(INSP, SUP, 1, &[RECORD]);
    let name = plant_in(
        &out,
        "old-suite",
        &gzip(doc.as_bytes()),
        &ed25519_key(&p.insp).into(),
    );
    let r = p.pass(&p.insp);
    assert_eq!((r.shipped, r.quarantined), (0, 1), "{r:?}");
    assert!(files_in(&p.sup_inbound()).is_empty());
    let reason = fs::read_to_string(
        p.insp
            .join("quarantine/outbound")
            .join(format!("{name}.reason.txt")),
    )
    .unwrap();
    assert!(reason.starts_with("SET-SUITE"), "{reason}");
}

#[test]
fn an_unauthenticated_sm2_acknowledgment_is_quarantined_and_never_answered() {
    // An SM2 signature names no kind; the root does. Answering an answer could
    // make two nodes answer each other forever.
    let p = Pair::with_suite(Suite::Sm2);
    let key = stranger_key(p.tmp.path(), "stranger");
    let ack = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><ack xmlns="urn:sedx:ack:1" from="{INSP}" to="{SUP}" set="x" status="accepted" created="2026-11-29T02:00:00Z"/>"#
    );
    plant_sm2(&p.sup_inbound(), "forged-ack", &gzip(ack.as_bytes()), &key);
    let r = p.pass(&p.sup);
    assert_eq!((r.quarantined, r.shipped), (1, 0), "{r:?}");
    // A forged batch is answered, so that its sender learns of it.
    plant_sm2(&p.sup_inbound(), "forged-batch", &good_batch(1), &key);
    let r = p.pass(&p.sup);
    assert_eq!((r.quarantined, r.shipped), (1, 1), "{r:?}");
}

//! Broken and hostile sets: each is quarantined with a reason file, answered
//! with a negative acknowledgment that reaches the sender over SFTP, and the
//! node goes on working.

use crate::common::*;
use sedx::wire::set::SetName;
use ssh_key::PrivateKey;
use std::fs;
use std::io::Write;
use std::path::Path;

pub(crate) const RECORD: &str = "<equipment><registrationCode>31103101012006050007</registrationCode><category>3110</category><userUnit>U</userUnit></equipment>";

/// The set is refused with `code`, kept in quarantine with a reason, and the
/// sender receives a negative acknowledgment naming the code.
fn expected_seq(p: &Pair) -> u64 {
    sedx::context::node::Node::open(&p.sup)
        .unwrap()
        .store
        .expected_seq(INSP)
        .unwrap()
}

pub(crate) fn assert_refused(p: &Pair, name: &SetName, code: &str) {
    let before = expected_seq(p);
    let r = p.pass(&p.sup);
    assert_eq!((r.quarantined, r.applied), (1, 0), "{r:?}");
    let q = p.sup.join("quarantine").join(INSP);
    let reason = fs::read_to_string(q.join(format!("{name}.reason.txt"))).unwrap();
    assert!(reason.starts_with(code), "expected {code}, got {reason}");
    assert!(
        q.join(name.payload_file()).exists(),
        "the set is kept, not deleted"
    );
    assert!(files_in(&p.sup_inbound()).is_empty());
    assert_eq!(r.shipped, 1, "a negative acknowledgment goes back");
    let r = p.pass(&p.insp);
    assert_eq!(r.acks_received, 1);
    let acks = p.insp.join("archive").join(SUP);
    let text = files_in(&acks)
        .into_iter()
        .filter(|f| f.ends_with(".xml.gz"))
        .map(|f| {
            let mut text = String::new();
            use std::io::Read;
            flate2::read::GzDecoder::new(fs::File::open(acks.join(f)).unwrap())
                .read_to_string(&mut text)
                .unwrap();
            text
        })
        .find(|t| t.contains(&format!("set=\"{name}\"")))
        .expect("an acknowledgment for the refused set");
    assert!(
        text.contains("status=\"rejected\"") && text.contains(&format!("code=\"{code}\"")),
        "{text}"
    );
    // It says whether the number is used up: when the channel moved past it,
    // or when another batch had used it (a replay).
    let used = expected_seq(p) > before || code == "BATCH-SEQUENCE";
    assert!(
        text.contains(&format!("seq-used=\"{used}\"")),
        "seq-used should be {used}: {text}"
    );
    // The node keeps working: the next good batch on the channel (the number
    // the receiver expects now) is applied.
    let expected = expected_seq(p);
    let good = gzip(wire_batch(INSP, SUP, expected, &[RECORD]).as_bytes());
    plant_in(&p.sup_inbound(), "after", &good, &signing_key(&p.insp));
    let r = p.pass(&p.sup);
    assert_eq!((r.applied, r.quarantined, r.held), (1, 0, 0), "{r:?}");
}

pub(crate) fn sealed_by_insp(p: &Pair) -> SetName {
    p.drop_batch("b.xml", &sample_batch());
    let mut insp = p.insp();
    let name = sedx::send::seal_file(&mut insp, &p.insp.join("outbound/b.xml"), false)
        .unwrap()
        .remove(0);
    sedx::wire::set::move_set(&name, &p.insp.join("outbound"), &p.sup_inbound()).unwrap();
    name
}

pub(crate) fn flip_byte(path: &Path, at: usize) {
    let mut b = fs::read(path).unwrap();
    let i = at.min(b.len() - 1);
    b[i] ^= 0x40;
    fs::write(path, b).unwrap();
}

#[test]
fn tampered_payload_fails_the_checksum() {
    let p = Pair::new();
    let name = sealed_by_insp(&p);
    flip_byte(&name.payload(&p.sup_inbound()), 100);
    assert_refused(&p, &name, "SET-CHECKSUM");
}

#[test]
fn tampered_payload_with_a_new_checksum_fails_the_signature() {
    let p = Pair::new();
    let name = sealed_by_insp(&p);
    let dir = p.sup_inbound();
    flip_byte(&name.payload(&dir), 100);
    write_marker(&dir, &name, p.suite());
    assert_refused(&p, &name, "SET-SIGNATURE");
}

#[test]
fn set_signed_by_an_unknown_key_is_refused() {
    // Ed25519 keys (the SM2 counterparts: tests/it/national.rs).
    let p = Pair::with_suite(Suite::Ed25519);
    let stranger = PrivateKey::random(&mut rand_core::OsRng, ssh_key::Algorithm::Ed25519).unwrap();
    let name = plant_in(
        &p.sup_inbound(),
        "stranger",
        &gzip(wire_batch(INSP, SUP, 1, &[RECORD]).as_bytes()),
        &stranger.into(),
    );
    assert_refused(&p, &name, "SET-SIGNATURE");
}

#[test]
fn signer_who_is_not_the_sender_is_refused() {
    let p = Pair::with_suite(Suite::Ed25519);
    let other = PrivateKey::random(&mut rand_core::OsRng, ssh_key::Algorithm::Ed25519).unwrap();
    let line = format!("insp-other {}\n", other.public_key().to_openssh().unwrap());
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(p.sup.join("keys/allowed_signers"))
        .unwrap();
    f.write_all(line.as_bytes()).unwrap();
    let name = plant_in(
        &p.sup_inbound(),
        "impostor",
        &gzip(wire_batch(INSP, SUP, 1, &[RECORD]).as_bytes()),
        &other.into(),
    );
    assert_refused(&p, &name, "SET-SIGNER");
}

#[test]
fn set_without_marker_waits_until_the_marker_arrives() {
    let p = Pair::new();
    let name = plant_in(
        &p.sup_inbound(),
        "pending",
        &gzip(wire_batch(INSP, SUP, 1, &[RECORD]).as_bytes()),
        &signing_key(&p.insp),
    );
    let marker = fs::read(name.marker(&p.sup_inbound(), p.suite())).unwrap();
    fs::remove_file(name.marker(&p.sup_inbound(), p.suite())).unwrap();
    let r = p.pass(&p.sup);
    assert_eq!((r.applied, r.quarantined, r.shipped), (0, 0, 0));
    assert_eq!(files_in(&p.sup_inbound()).len(), 2);
    fs::write(name.marker(&p.sup_inbound(), p.suite()), marker).unwrap();
    let r = p.pass(&p.sup);
    assert_eq!(r.applied, 1);
}

#[test]
fn truncated_gzip_is_refused() {
    let p = Pair::new();
    let gz = gzip(wire_batch(INSP, SUP, 1, &[RECORD]).as_bytes());
    let name = plant_in(
        &p.sup_inbound(),
        "truncated",
        &gz[..gz.len() - 12],
        &signing_key(&p.insp),
    );
    assert_refused(&p, &name, "SET-GZIP");
}

#[test]
fn doctype_and_external_entities_are_refused() {
    let p = Pair::new();
    let xxe = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE batch [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n{}<equipment><registrationCode>&x;</registrationCode><category>3110</category><userUnit>U</userUnit></equipment></batch>",
        batch_header(1, INSP, SUP, 1)
    );
    let name = plant_in(
        &p.sup_inbound(),
        "xxe",
        &gzip(xxe.as_bytes()),
        &signing_key(&p.insp),
    );
    assert_refused(&p, &name, "XML-DOCTYPE");
    let stored = sql_count(
        &p.sup.join("store.sqlite"),
        "SELECT count(*) FROM equipment WHERE registration_code LIKE 'root:%'",
    );
    assert_eq!(stored, 0);
}

#[test]
fn gzip_bomb_is_refused_not_swallowed() {
    let p = Pair::new();
    let mut cfg = sedx::context::config::Config::load(&p.sup).unwrap();
    cfg.node.max_expanded_bytes = 1 << 20;
    cfg.save(&p.sup).unwrap();
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(batch_header(1, INSP, SUP, 0).as_bytes())
        .unwrap();
    // Well-formed records under every other limit, 64 MiB of them.
    let records = RECORD.repeat((1 << 20) / RECORD.len());
    for _ in 0..64 {
        e.write_all(records.as_bytes()).unwrap();
    }
    e.write_all(b"</batch>").unwrap();
    let gz = e.finish().unwrap();
    assert!(gz.len() * 200 < 64 << 20, "{} bytes", gz.len());
    let name = plant_in(&p.sup_inbound(), "bomb", &gz, &signing_key(&p.insp));
    assert_refused(&p, &name, "SET-TOO-LARGE");
    let work = files_in(&p.sup.join(".work"));
    assert!(work.is_empty(), "scratch files are cleaned up: {work:?}");
}

#[test]
fn xsd_invalid_batch_is_refused_with_line_and_the_channel_goes_on() {
    let p = Pair::new();
    let bad = wire_batch(INSP, SUP, 1, &[RECORD]).replace(
        "<category>3110</category>",
        "<category>3110</category><colour>red</colour>",
    );
    let name = plant_in(
        &p.sup_inbound(),
        "invalid",
        &gzip(bad.as_bytes()),
        &signing_key(&p.insp),
    );
    let reason_has_line = {
        assert_refused(&p, &name, "XML-SCHEMA");
        fs::read_to_string(
            p.sup
                .join("quarantine")
                .join(INSP)
                .join("invalid.reason.txt"),
        )
        .unwrap()
    };
    assert!(
        reason_has_line.contains("line 3, column"),
        "{reason_has_line}"
    );
    // Authentic, so its sequence number is used up and the channel does not stall.
    assert_eq!(
        sql_text(
            &p.sup.join("store.sqlite"),
            "SELECT status FROM journal WHERE seq=1"
        )
        .unwrap(),
        "rejected"
    );
    // libxml2 checks the batch while its records are applied: the apply is rolled
    // back, so not one record of the invalid batch is kept.
    // (The one record held now came with the good batch that followed it.)
    assert_eq!(
        sql_count(
            &p.sup.join("store.sqlite"),
            "SELECT count(*) FROM equipment WHERE source_batch = (SELECT batch_id FROM journal WHERE seq = 1)"
        ),
        0
    );
    assert_eq!(
        sql_count(
            &p.sup.join("store.sqlite"),
            "SELECT count(*) FROM equipment"
        ),
        1
    );
}

#[test]
fn batch_for_another_receiver_is_refused() {
    let p = Pair::new();
    let name = plant_in(
        &p.sup_inbound(),
        "elsewhere",
        &gzip(wire_batch(INSP, "sup-other", 1, &[RECORD]).as_bytes()),
        &signing_key(&p.insp),
    );
    assert_refused(&p, &name, "BATCH-RECEIVER");
}

#[test]
fn replayed_sequence_with_a_new_batch_id_is_refused() {
    let p = Pair::new();
    p.drop_batch("one.xml", &equipment_batch(1, 1));
    p.pass(&p.insp);
    assert_eq!(p.pass(&p.sup).applied, 1);
    p.pass(&p.insp);
    let name = plant_in(
        &p.sup_inbound(),
        "replay",
        &gzip(wire_batch(INSP, SUP, 1, &[RECORD]).as_bytes()),
        &signing_key(&p.insp),
    );
    assert_refused(&p, &name, "BATCH-SEQUENCE");
}

#[test]
fn garbage_marker_and_signature_are_refused() {
    let p = Pair::new();
    let dir = p.sup_inbound();
    let name = SetName::new("garbage").unwrap();
    fs::write(name.payload(&dir), b"\x1f\x8bnot really").unwrap();
    fs::write(
        name.sig(&dir),
        b"-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n",
    )
    .unwrap();
    fs::write(name.marker(&dir, p.suite()), b"this is not a checksum\n").unwrap();
    assert_refused(&p, &name, "SET-MARKER");
}

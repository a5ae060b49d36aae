//! samples/: a valid batch of every record type, accepted end to end, and an
//! invalid one for every reason code a document can draw, refused with it.
//! The structurally invalid samples fail `xmllint --schema`; the others pass it.

use crate::common::*;
use sedx::context::config::{Config, PeerConfig};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn samples(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(repo().join("samples").join(dir))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    v.sort();
    v
}

fn xmllint_ok(path: &Path) -> bool {
    // Only ever on the project's own samples (xmllint expands entities).
    Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(repo().join("xsd/batch.xsd"))
        .arg(path)
        .output()
        .unwrap()
        .status
        .success()
}

fn sender_of(xml: &str) -> &'static str {
    if xml.contains(r#"from="sup-city""#) {
        SUP
    } else {
        INSP
    }
}

#[test]
fn every_record_type_has_a_valid_sample_that_is_accepted() {
    let valid = samples("valid");
    assert_eq!(
        valid.len(),
        sedx::domain::spec::SPECS.len(),
        "one per record type"
    );
    let p = Pair::new();
    for path in &valid {
        assert!(xmllint_ok(path), "{} fails xmllint", path.display());
        let out = Command::new(env!("CARGO_BIN_EXE_sedx"))
            .arg("validate")
            .arg(path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let xml = fs::read_to_string(path).unwrap();
        let node = if sender_of(&xml) == SUP {
            &p.sup
        } else {
            &p.insp
        };
        fs::copy(path, node.join("outbound").join(path.file_name().unwrap())).unwrap();
    }
    for node in [&p.insp, &p.sup, &p.insp, &p.sup, &p.insp] {
        p.pass(node);
    }
    for (node, peer) in [(&p.insp, SUP), (&p.sup, INSP)] {
        let db = node.join("store.sqlite");
        let sent = sql_count(&db, "SELECT count(*) FROM outbox WHERE kind = 'batch'");
        let accepted = sql_count(
            &db,
            "SELECT count(*) FROM outbox WHERE kind = 'batch' AND ack_status = 'accepted'",
        );
        assert_eq!(sent, 5, "{peer}");
        assert_eq!(
            accepted,
            sent,
            "every sample to {peer} accepted: {:?}",
            acks_received(node, peer)
        );
        assert!(files_in(&node.join("quarantine")).is_empty());
    }
}

/// The sample as it travels: header filled with this sequence number (a sample
/// that carries its own header keeps its count).
fn on_the_wire(xml: &str, seq: u64) -> String {
    let scan = sedx::wire::document::scan(xml.as_bytes()).unwrap();
    let count = scan
        .root
        .get("count")
        .map(str::to_string)
        .unwrap_or(scan.records.to_string());
    let start = xml.find("<batch ").unwrap();
    let end = start + xml[start..].find('>').unwrap() + 1;
    format!(
        "{}<batch xmlns=\"urn:sedx:batch:1\" id=\"{}\" from=\"insp-city\" to=\"sup-city\" seq=\"{seq}\" created=\"2026-11-27T02:00:00Z\" count=\"{count}\">{}",
        &xml[..start],
        uuid::Uuid::new_v4(),
        &xml[end..]
    )
}

#[test]
fn every_reason_code_has_an_invalid_sample_that_draws_it() {
    let p = Pair::new();
    // Ropeways start in 2099 here (REC-ROLLOUT); a second peer makes routing matter (REC-ROUTE).
    let mut cfg = Config::load(&p.sup).unwrap();
    cfg.rules.rollout.insert("9".into(), "2099-01-01".into());
    let mut second: PeerConfig = cfg.peers[0].clone();
    second.id = "insp-b".into();
    second.agency = Some("上海市电梯检测站".into());
    cfg.peers.push(second);
    cfg.save(&p.sup).unwrap();
    let key = signing_key(&p.insp);
    let mut seq = 0;
    let invalid = samples("invalid");
    for path in &invalid {
        let code = path.file_stem().unwrap().to_str().unwrap().to_string();
        let xml = fs::read_to_string(path).unwrap();
        assert!(
            xml.contains(&format!("Expected: {code}.")),
            "{}",
            path.display()
        );
        if code.starts_with("XML-") {
            assert!(!xmllint_ok(path), "{code} sample passes xmllint");
            let out = Command::new(env!("CARGO_BIN_EXE_sedx"))
                .arg("validate")
                .arg(path)
                .output()
                .unwrap();
            assert!(!out.status.success());
            assert!(
                String::from_utf8_lossy(&out.stderr).contains(&code),
                "{code}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            continue;
        }
        assert!(xmllint_ok(path), "{code} sample is structurally valid");
        if sender_of(&xml) == SUP {
            // Checked on the way out of the supervision node.
            fs::copy(path, p.sup.join("outbound").join(path.file_name().unwrap())).unwrap();
            p.pass(&p.sup);
            let reasons = fs::read_to_string(
                p.sup
                    .join("quarantine")
                    .join(format!("{code}.rejected.txt")),
            )
            .unwrap();
            assert!(
                reasons.contains(&format!("\t{code}\t")),
                "{code}: {reasons}"
            );
            continue;
        }
        let wire = if code.starts_with("BATCH-") && code != "BATCH-COUNT" {
            xml.clone() // its header is the point: refused before it uses a sequence number
        } else {
            seq += 1;
            on_the_wire(&xml, seq)
        };
        plant_in(
            &p.sup_inbound(),
            &format!("sample-{code}"),
            &gzip(wire.as_bytes()),
            &key,
        );
        p.pass(&p.sup);
        p.pass(&p.insp);
        let ack = acks_received(&p.insp, SUP)
            .into_iter()
            .find(|a| a.contains(&format!("set=\"sample-{code}\"")))
            .unwrap_or_else(|| panic!("no acknowledgment for the {code} sample"));
        assert!(ack.contains(&format!("code=\"{code}\"")), "{code}: {ack}");
    }
    // Every code a document can draw has its sample.
    let have: Vec<String> = invalid
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for code in sedx::Code::ALL {
        let c = code.as_str();
        // Set-level codes, a replayed sequence, a reused batch id and the codes of
        // acknowledgments are about files, history and answers (tests/hostile.rs,
        // tests/security.rs).
        if !c.starts_with("SET-")
            && !c.starts_with("ACK-")
            && !["BATCH-SEQUENCE", "BATCH-CONFLICT"].contains(&c)
        {
            assert!(have.iter().any(|h| h == c), "no sample for {c}");
        }
    }
}

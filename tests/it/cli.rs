//! The command line: clear one-line errors and a non-zero exit, never a panic;
//! the watcher (`sedx run`) does the whole exchange by itself.

use crate::common::*;
use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn assert_clean_failure(out: &std::process::Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure");
    assert!(err.starts_with("sedx: "), "one clear line: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_inputs_give_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let garbage = tmp.path().join("garbage.xml");
    fs::write(&garbage, b"\xff\xfe<not xml").unwrap();
    assert_clean_failure(&sedx_plain(&["validate", garbage.to_str().unwrap()]));
    let gz = tmp.path().join("garbage.xml.gz");
    fs::write(&gz, b"\x1f\x8b\x08\x00garbage").unwrap();
    assert_clean_failure(&sedx_plain(&["validate", gz.to_str().unwrap()]));
    assert_clean_failure(&sedx_plain(&["validate", "/nonexistent/file.xml"]));
    assert_clean_failure(&sedx_plain(&["--node", "/nonexistent", "status"]));
    assert_clean_failure(&sedx_plain(&[
        "init",
        tmp.path().join("n").to_str().unwrap(),
        "--id",
        "../evil",
        "--role",
        "inspection",
    ]));
    let node = tmp.path().join("n");
    let out = sedx_plain(&[
        "init",
        node.to_str().unwrap(),
        "--id",
        "sup-1",
        "--role",
        "supervision",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("sup-1 namespaces=\"sedx-batch,sedx-ack\" ssh-ed25519 "),
        "{text}"
    );
    assert_clean_failure(&sedx_plain(&[
        "init",
        node.to_str().unwrap(),
        "--id",
        "sup-1",
        "--role",
        "supervision",
    ]));
    assert_clean_failure(&sedx(
        &node,
        &["verify", garbage.to_str().unwrap(), "--from", "x"],
    ));
    assert_clean_failure(&sedx(&node, &["resend", "no-such-batch"]));
    fs::write(node.join("sedx.toml"), "[node]\nid = 3\n").unwrap();
    assert_clean_failure(&sedx(&node, &["status"]));
}

#[test]
fn validate_and_verify_commands() {
    let p = Pair::new();
    let sample = repo().join("samples/batch-inspection.xml");
    let out = sedx_plain(&["validate", sample.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid batch document (8 records)"));
    p.drop_batch("b.xml", &sample_batch());
    p.pass(&p.insp);
    let set = p.sup_inbound().join(
        files_in(&p.sup_inbound())
            .into_iter()
            .find(|f| f.ends_with(".xml.gz"))
            .unwrap(),
    );
    let out = sedx(&p.sup, &["verify", set.to_str().unwrap(), "--from", INSP]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("OK "));
    let out = sedx(&p.sup, &["verify", set.to_str().unwrap(), "--from", SUP]);
    assert_clean_failure(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("SET-SIGNER"));
}

#[test]
fn known_hosts_line_pins_the_host_key_too() {
    let p = Pair::new();
    let mut cfg = sedx::context::config::Config::load(&p.insp).unwrap();
    let key = fs::read_to_string(&p.sshd.host_key).unwrap();
    cfg.peers[0].host_key = format!("[127.0.0.1]:{} {}", p.sshd.port, key.trim());
    cfg.save(&p.insp).unwrap();
    p.drop_batch("b.xml", &sample_batch());
    assert_eq!(p.pass(&p.insp).shipped, 1);
    // A different key in the same form is refused.
    let other =
        ssh_key::PrivateKey::random(&mut rand_core::OsRng, ssh_key::Algorithm::Ed25519).unwrap();
    cfg.peers[0].host_key = format!(
        "[127.0.0.1]:{} {}",
        p.sshd.port,
        other.public_key().to_openssh().unwrap()
    );
    cfg.save(&p.insp).unwrap();
    p.drop_batch("c.xml", &equipment_batch(1, 1));
    let r = p.insp().pass();
    assert_eq!(r.shipped, 0);
    use sedx::context::report::{FailureKind, Stage};
    assert!(
        r.errors.iter().any(|e| e.stage == Stage::Ship
            && e.kind == FailureKind::Transport
            && e.detail.contains("host key of sup-city refused")),
        "{:?}",
        r.errors
    );
    // The command says which kind of trouble it was by its exit status.
    let out = run_once(&p.insp, None);
    assert_eq!(out.status.code(), Some(69), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 error(s); first: ship:"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn watcher_does_the_whole_exchange_by_itself() {
    let p = Pair::new();
    let start = |dir: &std::path::Path| {
        Running(
            Command::new(env!("CARGO_BIN_EXE_sedx"))
                .arg("--node")
                .arg(dir)
                .arg("run")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let _sup = start(&p.sup);
    let _insp = start(&p.insp);
    // Dropped the way other programs do: written under a temporary name, then renamed.
    let tmp = p.insp.join("outbound/.b1.xml.part");
    fs::write(&tmp, sample_batch()).unwrap();
    fs::rename(&tmp, p.insp.join("outbound/b1.xml")).unwrap();
    let idb = p.insp.join("store.sqlite");
    let deadline = Instant::now() + Duration::from_secs(120);
    let acked = loop {
        let status = rusqlite::Connection::open(&idb)
            .ok()
            .and_then(|c| {
                c.query_row(
                    "SELECT ack_status FROM outbox WHERE kind='batch'",
                    [],
                    |r| r.get::<_, Option<String>>(0),
                )
                .ok()
            })
            .flatten();
        if status.is_some() || Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(acked.as_deref(), Some("accepted"));
    assert_eq!(
        sql_count(
            &p.sup.join("store.sqlite"),
            "SELECT count(*) FROM equipment"
        ),
        3
    );
}

/// Logs carry no terminal colour codes when stderr is a file or a pipe (journald,
/// log files, the tests).
#[test]
fn logs_into_a_pipe_have_no_colour_codes() {
    let p = Pair::new();
    p.drop_batch("b.xml", &sample_batch());
    let out = sedx(&p.insp, &["run", "--once"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("sealed"), "{log}");
    assert!(!log.contains('\u{1b}'), "{log:?}");
}

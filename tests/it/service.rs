//! In service: the exchange window, retries with backoff, acknowledgment
//! timeouts, and status for people and scripts.

use crate::common::*;
use sedx::context::config::Config;

/// A window that is surely closed now: it opens in an hour, for an hour.
fn closed_window() -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::hours(8);
    let m = t.hour() as u32 * 60 + t.minute() as u32;
    let hm = |x: u32| format!("{:02}:{:02}", (x % 1440) / 60, x % 60);
    format!("{}-{}", hm(m + 60), hm(m + 120))
}

/// `sedx status ARGS`: its exit status (0 ok, 1 warning, 2 critical) and output.
fn status_of(node: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = sedx(node, &[&["status"][..], args].concat());
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn batches_queue_outside_the_window_and_answers_still_go() {
    let p = Pair::new();
    let window = closed_window();
    configure(&p.insp, |c| c.node.window = window.clone());
    configure(&p.sup, |c| c.node.window = window.clone());
    p.drop_batch("b.xml", &sample_batch());
    let r = p.pass(&p.insp);
    assert_eq!((r.sealed, r.shipped, r.waiting_for_window), (1, 0, 1));
    let status = stdout(sedx(&p.insp, &["status"]));
    assert!(
        status.contains("closed; batches queue") && status.contains("queued 1;"),
        "{status}"
    );
    let out = stdout(sedx(&p.insp, &["send"]));
    assert!(out.contains("shipped 0, queued for the window 1"), "{out}");
    let out = stdout(sedx(&p.insp, &["send", "--now"]));
    assert!(out.contains("shipped 1"), "{out}");
    // Receiving and answering work at any time.
    let r = p.pass(&p.sup);
    assert_eq!((r.applied, r.shipped), (1, 1));
    assert_eq!(p.pass(&p.insp).acks_received, 1);
}

#[test]
fn transport_errors_back_off_and_nothing_is_lost() {
    let p = Pair::new();
    configure(&p.insp, |c| c.node.retry_base_secs = 3600);
    p.sshd.stop();
    p.drop_batch("b.xml", &sample_batch());
    let r = p.insp().pass();
    assert_eq!(r.shipped, 0);
    assert!(!r.errors.is_empty());
    let (code, status) = status_of(&p.insp, &[]);
    assert!(
        status.contains("TRANSPORT FAILING: 1 failure(s)"),
        "{status}"
    );
    // A monitoring check sees it: exit status 2 and one line.
    assert_eq!(code, 2, "{status}");
    let (code, line) = status_of(&p.insp, &["--summary"]);
    assert_eq!(code, 2);
    assert!(
        line.starts_with("CRITICAL sedx insp-city: sup-city: transport failing")
            && line.lines().count() == 1,
        "{line}"
    );
    let _back = Sshd::start_on(&p.sshd.dir, Some(p.sshd.port));
    let r = p.pass(&p.insp);
    assert_eq!((r.shipped, r.backing_off), (0, 1), "waits before retrying");
    assert_eq!(
        files_in(&p.insp.join("outbound")).len(),
        3,
        "the set stays queued"
    );
    let out = stdout(sedx(&p.insp, &["send", "--now"]));
    assert!(out.contains("shipped 1"), "{out}");
    let (code, status) = status_of(&p.insp, &[]);
    assert!(!status.contains("TRANSPORT FAILING"), "{status}");
    assert_eq!(code, 0, "{status}");
    assert!(
        status.contains("OK sedx insp-city: exchange working"),
        "{status}"
    );
    assert_eq!(p.pass(&p.sup).applied, 1);
}

#[test]
fn missing_acknowledgment_raises_an_alert_and_resends() {
    let p = Pair::new();
    configure(&p.insp, |c| c.node.ack_timeout_secs = 0);
    p.drop_batch("b.xml", &sample_batch());
    assert_eq!(p.pass(&p.insp).shipped, 1);
    // No answer yet: overdue, alerted and sent again.
    let r = p.pass(&p.insp);
    assert_eq!((r.overdue, r.shipped), (1, 1));
    let (code, status) = status_of(&p.insp, &[]);
    assert!(status.contains("OVERDUE "), "{status}");
    assert_eq!(code, 2, "an overdue acknowledgment is critical: {status}");
    let json: serde_json::Value = serde_json::from_str(&status_of(&p.insp, &["--json"]).1).unwrap();
    let waiting = &json["peers"][0]["awaiting_ack"];
    assert_eq!(waiting.as_array().unwrap().len(), 1, "{json}");
    assert_eq!(waiting[0]["overdue"], true);
    assert_eq!(waiting[0]["ship_count"], 2);
    assert_eq!(p.pass(&p.sup).applied, 1);
    p.pass(&p.insp);
    let json: serde_json::Value = serde_json::from_str(&status_of(&p.insp, &["--json"]).1).unwrap();
    assert!(
        json["peers"][0]["awaiting_ack"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{json}"
    );
    assert_eq!(json["peers"][0]["recent_outcomes"][0]["status"], "accepted");
    assert_eq!(
        sql_count(&p.sup.join("store.sqlite"), "SELECT count(*) FROM journal"),
        1
    );
}

#[test]
fn status_json_shows_each_peer_at_a_glance() {
    let p = Pair::new();
    p.drop_batch("b.xml", &sample_batch());
    p.pass(&p.insp);
    p.pass(&p.sup);
    let json: serde_json::Value =
        serde_json::from_str(&stdout(sedx(&p.sup, &["status", "--json"]))).unwrap();
    assert_eq!(json["node"], SUP);
    let peer = &json["peers"][0];
    assert_eq!(peer["id"], INSP);
    assert_eq!(peer["expected_seq"], 2);
    assert!(peer["last_received"].is_string());
    assert!(
        peer["last_sent"].is_string(),
        "the acknowledgment went back: {json}"
    );
    assert_eq!(json["quarantine"].as_array().unwrap().len(), 0);
}

#[test]
fn sigterm_stops_the_watcher_cleanly_and_logs_are_one_json_event_per_line() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let p = Pair::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sedx"))
        .arg("--log-json")
        .arg("--node")
        .arg(&p.insp)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    p.drop_batch("b.xml", &sample_batch());
    let db = p.insp.join("store.sqlite");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline
        && rusqlite::Connection::open(&db)
            .and_then(|c| {
                c.query_row(
                    "SELECT count(*) FROM outbox WHERE state = 'shipped'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
            })
            .unwrap_or(0)
            == 0
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.is_some_and(|s| s.success()),
        "clean exit on SIGTERM: {status:?}"
    );
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        events.iter().any(|e| e["fields"]["message"] == "shipped"),
        "{log}"
    );
    // Every line names its node and gives Shanghai time with its offset.
    for e in &events {
        assert_eq!(e["span"]["node"], INSP, "{e}");
        assert!(
            e["timestamp"]
                .as_str()
                .is_some_and(|t| t.ends_with("+08:00")),
            "{e}"
        );
    }
    assert_eq!(
        events.last().unwrap()["fields"]["message"],
        "stopped",
        "{log}"
    );
}

#[test]
fn a_node_restored_from_backup_carries_on() {
    let p = Pair::new();
    p.drop_batch("one.xml", &equipment_batch(1, 2));
    p.pass(&p.insp);
    p.pass(&p.sup);
    p.pass(&p.insp);
    let backup = p.tmp.path().join("backup-1");
    let out = sedx(&p.insp, &["backup", backup.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !sedx(&p.insp, &["backup", backup.to_str().unwrap()])
            .status
            .success(),
        "never overwrites"
    );
    // The node's disk is lost.
    std::fs::rename(&p.insp, p.tmp.path().join("lost")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sedx"))
        .args([
            "restore",
            backup.to_str().unwrap(),
            "--to",
            p.insp.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = stdout(sedx(&p.insp, &["status"]));
    assert!(status.contains("last seq 1;"), "{status}");
    p.drop_batch("two.xml", &equipment_batch(10, 2));
    assert_eq!(p.pass(&p.insp).shipped, 1);
    let r = p.pass(&p.sup);
    assert_eq!(
        (r.applied, r.held),
        (1, 0),
        "sequence 2 follows 1: nothing lost, nothing repeated"
    );
    assert_eq!(
        sql_count(
            &p.sup.join("store.sqlite"),
            "SELECT count(*) FROM equipment"
        ),
        4
    );
}

#[test]
fn the_systemd_unit_runs_the_watcher_and_stops_it_with_sigterm() {
    let unit = std::fs::read_to_string(repo().join("scripts/sedx.service")).unwrap();
    let get = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}= in the unit"))
            .to_string()
    };
    let exec = get("ExecStart");
    assert!(
        exec.starts_with("/usr/local/bin/sedx --node ") && exec.ends_with(" run"),
        "{exec}"
    );
    assert_eq!(get("KillSignal"), "SIGTERM");
    assert_eq!(get("Restart"), "always");
    // The command line it runs is one sedx accepts.
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_sedx"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
}

/// A transport failure is logged once, and the recovery in one line.
#[test]
fn a_failure_is_logged_once_and_the_recovery_too() {
    let p = Pair::new();
    configure(&p.insp, |c| c.node.retry_base_secs = 0);
    p.sshd.stop();
    p.drop_batch("b.xml", &sample_batch());
    let out = sedx(&p.insp, &["run", "--once"]);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{log}");
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{log}");
    assert!(errors[0].contains("peer=sup-city"), "{log}");
    let _back = Sshd::start_on(&p.sshd.dir, Some(p.sshd.port));
    let out = sedx(&p.insp, &["send", "--now"]);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    let recovered: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("peer reachable again"))
        .collect();
    assert_eq!(recovered.len(), 1, "{log}");
    assert!(recovered[0].contains("failures=1"), "{log}");
}

/// The receiver's log says why records were refused: each reason code with its
/// count and an example, not only a number.
#[test]
fn refused_records_are_logged_by_reason_code() {
    let p = Pair::new();
    let key = signing_key(&p.insp);
    let good = "<equipment><registrationCode>31103101012006050001</registrationCode><category>3110</category><userUnit>U</userUnit></equipment>";
    let bad_code = |i: u32| {
        format!("<equipment><registrationCode>BAD{i}</registrationCode><category>3110</category><userUnit>U</userUnit></equipment>")
    };
    let bad_org = "<equipment><registrationCode>31103101012006050002</registrationCode><category>3110</category><userUnit>U</userUnit><orgCode>13220082-5</orgCode></equipment>";
    let (b1, b2) = (bad_code(1), bad_code(2));
    let doc = wire_batch(INSP, SUP, 1, &[good, &b1, &b2, bad_org]);
    plant_in(&p.sup_inbound(), "mixed", &gzip(doc.as_bytes()), &key);
    let out = sedx(&p.sup, &["run", "--once"]);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    let line = |code: &str| {
        log.lines()
            .find(|l| l.contains("records refused") && l.contains(&format!("code={code}")))
            .unwrap_or_else(|| panic!("no line for {code}: {log}"))
            .to_string()
    };
    let regcode = line("REC-REGCODE");
    assert!(
        regcode.contains("count=2") && regcode.contains("example=BAD1"),
        "{regcode}"
    );
    assert!(line("REC-ORGCODE").contains("count=1"), "{log}");
}

#[test]
fn acknowledgments_leave_while_a_long_inbound_queue_is_applied() {
    let p = Pair::new();
    let n = 2 * sedx::run::pass::ACK_FLUSH_SETS + 10;
    for i in 0..n {
        p.drop_batch(&format!("b{i:03}.xml"), &equipment_batch(i * 10, 1));
    }
    let r = p.pass(&p.insp);
    assert_eq!(r.shipped, n as u64);
    assert_eq!(files_in(&p.sup_inbound()).len(), 3 * n as usize);
    // The hub is stopped just before it applies the last set of the queue:
    // the acknowledgments of the sets applied by then have already left.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sedx"))
        .arg("--node")
        .arg(&p.sup)
        .args(["run", "--once"])
        .env("SEDX_CRASH_AT", format!("before-apply#{n}"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("crash injected at before-apply"));
    let arrived = |p: &Pair| {
        files_in(&p.insp.join("inbound").join(SUP))
            .iter()
            .filter(|f| is_marker(f))
            .count() as u32
    };
    let early = arrived(&p);
    // They leave at least every ACK_FLUSH_SETS sets (and every second): of the
    // n - 1 applied, fewer than ACK_FLUSH_SETS can still be waiting.
    assert!(
        early + sedx::run::pass::ACK_FLUSH_SETS > n - 1,
        "{early} of {} acknowledgments had left when the last set was about to be applied",
        n - 1
    );
    // Restarted, the node applies the rest and answers everything once.
    p.pass(&p.sup);
    assert_eq!(arrived(&p), n);
    let r = p.pass(&p.insp);
    assert_eq!(r.acks_received, n as u64);
}

#[test]
fn quarantine_items_are_retried_once_fixed_or_dismissed_with_a_reason() {
    let p = Pair::new();
    // Supervision does not know the inspection node's key yet.
    let signers = trust_file(&p.sup);
    let trusted = std::fs::read_to_string(&signers).unwrap();
    let without: String = trusted
        .lines()
        .filter(|l| !l.starts_with(INSP))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&signers, without).unwrap();
    p.drop_batch("b.xml", &equipment_batch(1, 3));
    p.pass(&p.insp);
    p.pass(&p.sup);
    let list = stdout(sedx(&p.sup, &["quarantine", "list"]));
    assert!(
        list.contains("1 open item(s)") && list.contains("received-set insp-city"),
        "{list}"
    );
    let id = list
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let shown = stdout(sedx(&p.sup, &["quarantine", "show", &id]));
    assert!(shown.contains("sedx quarantine retry ID"), "{shown}");
    let (_, text) = status_of(&p.sup, &[]);
    assert!(text.contains("quarantine: 1 item(s)"), "{text}");

    // The key is added; the set goes back through the pipeline and is applied.
    std::fs::write(&signers, &trusted).unwrap();
    let out = stdout(sedx(&p.sup, &["quarantine", "retry", &id, "--by", "wang"]));
    assert!(out.contains("put back into"), "{out}");
    let again = sedx(&p.sup, &["quarantine", "retry", &id]);
    assert!(
        !again.status.success(),
        "a closed item is not retried twice"
    );
    let r = p.pass(&p.sup);
    assert_eq!(r.applied, 1);
    assert_eq!(
        sql_count(
            &p.sup.join("store.sqlite"),
            "SELECT count(*) FROM equipment"
        ),
        3
    );
    let (_, text) = status_of(&p.sup, &[]);
    assert!(text.contains("quarantine: 0 item(s)"), "{text}");
    p.pass(&p.insp);
    assert!(
        sql_text(
            &p.insp.join("store.sqlite"),
            "SELECT ack_status FROM outbox WHERE kind = 'batch'"
        )
        .is_some_and(|s| s == "accepted"),
        "the sender learns it was accepted in the end"
    );

    // A broken drop is dismissed with a reason; its file stays.
    p.drop_batch("broken.xml", "<batch>not closed");
    p.pass(&p.insp);
    let list = stdout(sedx(&p.insp, &["quarantine", "list"]));
    let id = list
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(list.contains("drop outbound broken.xml"), "{list}");
    let refused = sedx(&p.insp, &["quarantine", "dismiss", &id, "--reason", ""]);
    assert!(!refused.status.success(), "a dismissal says why");
    stdout(sedx(
        &p.insp,
        &[
            "quarantine",
            "dismiss",
            &id,
            "--reason",
            "测试文件",
            "--by",
            "li",
        ],
    ));
    let all = stdout(sedx(&p.insp, &["quarantine", "list", "--all"]));
    assert!(
        all.contains("[dismissed") && all.contains("by li: 测试文件"),
        "{all}"
    );
    assert!(stdout(sedx(&p.insp, &["quarantine", "list"])).contains("0 open item(s)"));
    assert!(
        p.insp.join("quarantine/broken.xml").exists(),
        "nothing is deleted"
    );
}

#[test]
fn import_refusals_are_labelled_as_import_and_the_command_fails() {
    let p = Pair::new();
    let file = p.tmp.path().join("register.xml");
    let report = "<inspectionReport><reportNumber>R-1</reportNumber><registrationCode>31103101012006050007</registrationCode><kind>periodic</kind><date>2006-07-01</date><conclusion>合格</conclusion><agency>某检验机构</agency><approved>2006-07-02T09:00:00+08:00</approved></inspectionReport>";
    let equipment = "<equipment><registrationCode>31103101012006050007</registrationCode><category>3110</category><userUnit>上海外滩置业有限公司</userUnit></equipment>";
    std::fs::write(&file, drop_doc(SUP, &[equipment, report])).unwrap();
    let out = sedx(&p.sup, &["import", file.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "refused records make import fail"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1 record(s) in the register, 1 refused on import: REC-OWNER×1"),
        "{text}"
    );
    let list = stdout(sedx(&p.sup, &["quarantine", "list"]));
    assert!(
        list.contains("import-refused") && list.contains("refused on import: REC-OWNER×1"),
        "{list}"
    );
    assert!(!list.contains("on the way out"), "{list}");
}

#[test]
fn sighup_reloads_the_configuration_without_a_restart() {
    use std::process::{Command, Stdio};
    let p = Pair::new();
    let good = Config::load(&p.insp).unwrap().peers[0].host_key.clone();
    configure(&p.insp, |c| {
        c.node.scan_interval_secs = 1;
        c.peers[0].host_key = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into();
    });
    let log_path = p.tmp.path().join("run.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sedx"))
        .arg("--node")
        .arg(&p.insp)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let pid = child.id().to_string();
    let hup = || {
        assert!(Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success())
    };
    p.drop_batch("b.xml", &equipment_batch(1, 2));
    assert!(wait_for(|| log().contains("host key")), "{}", log());

    // A broken file is not taken: the service says so and keeps running.
    let toml = p.insp.join("sedx.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, format!("{text}\nwindw = \"always\"\n")).unwrap();
    hup();
    assert!(
        wait_for(|| log().contains("configuration not reloaded")),
        "{}",
        log()
    );
    assert!(child.try_wait().unwrap().is_none(), "still running");

    // The pin is fixed: after SIGHUP the waiting batch ships.
    std::fs::write(&toml, text).unwrap();
    configure(&p.insp, |c| c.peers[0].host_key = good);
    hup();
    let arrived = wait_for(|| files_in(&p.sup_inbound()).iter().any(|f| is_marker(f)));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(arrived, "the batch shipped after the reload: {}", log());
    assert!(log().contains("configuration reloaded"), "{}", log());
    assert!(status.success(), "{}", log());
}

//! Two `sedx run` processes for one node whose store is on PostgreSQL: one
//! active, one standing by (`--wait`) on the database's advisory lock. The
//! active one is killed (-9) in the middle of a long exchange both ways; the
//! standby takes over and every record is applied once, every batch answered.

use crate::common::*;
use std::process::{Command, Stdio};

fn run(node: &std::path::Path, log: &std::path::Path) -> Running {
    Running(
        Command::new(env!("CARGO_BIN_EXE_sedx"))
            .arg("--node")
            .arg(node)
            .args(["--wait", "run"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    )
}

fn read(log: &std::path::Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

#[test]
fn a_standby_takes_over_when_the_active_process_is_killed() {
    if !on_postgres() {
        eprintln!(
            "a standby needs the PostgreSQL store: scripts/test.sh runs this in its second round"
        );
        return;
    }
    let p = Pair::new();
    for node in [&p.insp, &p.sup] {
        configure(node, |c| c.node.scan_interval_secs = 1);
    }
    let (up, per) = (40u32, 25u32);
    for i in 0..up {
        p.drop_batch(&format!("up{i:03}.xml"), &equipment_batch(i * per + 1, per));
    }
    let down = 10u32;
    for i in 0..down {
        let code = format!("311031010120060{:05}", 90000 + i);
        drop_into(
            &p.sup,
            &format!("down{i:03}.xml"),
            &drop_doc(SUP, &[&equipment(&code, Some(CI))]),
        );
    }
    let sdb = p.sup.join("store.sqlite");
    let idb = p.insp.join("store.sqlite");
    let _insp = run(&p.insp, &p.tmp.path().join("insp.log"));
    let (alog, blog) = (p.tmp.path().join("a.log"), p.tmp.path().join("b.log"));
    let mut a = run(&p.sup, &alog);
    assert!(
        wait_for(|| read(&alog).contains("running")),
        "{}",
        read(&alog)
    );
    let _b = run(&p.sup, &blog);
    assert!(
        wait_for(|| read(&blog).contains("standby")),
        "{}",
        read(&blog)
    );
    let (code, status) = outcome(sedx(&p.sup, &["status"]));
    assert!(
        status.contains(&format!("active 运行中: pid {}", a.0.id())),
        "{code} {status}"
    );
    // Killed in the middle of the inbound queue.
    assert!(wait_for(
        || sql_count(&sdb, "SELECT count(*) FROM journal") >= 5
    ));
    a.0.kill().unwrap();
    let killed = std::time::Instant::now();
    let applied_at_kill = sql_count(&sdb, "SELECT count(*) FROM journal");
    assert!(
        wait_for(|| read(&blog).contains("took over")),
        "{}",
        read(&blog)
    );
    let took = killed.elapsed();
    eprintln!(
        "standby took over {:.1} s after the kill, {applied_at_kill} of {up} batches applied by then",
        took.as_secs_f64()
    );
    assert!(
        (applied_at_kill as u32) < up,
        "killed before the end of the queue"
    );
    // The standby finishes both ways.
    assert!(
        wait_for(
            || sql_count(&sdb, "SELECT count(*) FROM journal") == i64::from(up)
                && sql_count(
                    &idb,
                    "SELECT count(*) FROM outbox WHERE kind = 'batch' AND ack_status = 'accepted'"
                ) == i64::from(up)
                && sql_count(
                    &sdb,
                    "SELECT count(*) FROM outbox WHERE kind = 'batch' AND ack_status = 'accepted'"
                ) == i64::from(down)
        ),
        "{}",
        read(&blog)
    );
    assert_eq!(
        sql_count(
            &sdb,
            "SELECT count(*) FROM journal WHERE status = 'accepted'"
        ),
        i64::from(up),
        "every batch applied once, whole"
    );
    assert_eq!(
        sql_count(
            &sdb,
            "SELECT count(*) FROM equipment WHERE origin = 'insp-city'"
        ),
        i64::from(up * per)
    );
    assert_eq!(
        sql_count(&idb, "SELECT count(*) FROM journal"),
        i64::from(down)
    );
    assert_eq!(sql_count(&sdb, "SELECT count(*) FROM quarantine"), 0);
    let (_, status) = outcome(sedx(&p.sup, &["status"]));
    assert!(status.contains("active 运行中: pid"), "{status}");
    assert!(!status.contains(&format!("pid {} ", a.0.id())), "{status}");

    // The active process loses the database (its connection cut by the server):
    // it stops working the node, and a third process standing by takes over.
    let clog = p.tmp.path().join("c.log");
    let _c = run(&p.sup, &clog);
    assert!(
        wait_for(|| read(&clog).contains("standby")),
        "{}",
        read(&clog)
    );
    let url = sedx::context::config::Config::load(&p.sup)
        .unwrap()
        .postgres_url()
        .unwrap()
        .to_string();
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    admin
        .batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .unwrap();
    assert!(
        wait_for(|| read(&blog).contains("lost the node's lock")),
        "{}",
        read(&blog)
    );
    assert!(
        wait_for(|| read(&clog).contains("took over")),
        "{}",
        read(&clog)
    );
    drop_into(
        &p.sup,
        "after.xml",
        &drop_doc(SUP, &[&equipment("31103101012006099999", Some(CI))]),
    );
    assert!(
        wait_for(|| sql_count(&idb, "SELECT count(*) FROM journal") == i64::from(down) + 1),
        "the new active process works the node: {}",
        read(&clog)
    );
}

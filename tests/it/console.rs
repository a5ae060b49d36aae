//! The node's HTTP endpoint: `/metrics` in the Prometheus text format, whose
//! values are the ones `sedx status --json` gives, and the overview page.

use crate::common::*;
use std::io::{Read, Write};
use std::process::{Command, Stdio};

/// A GET over a plain socket: (status line, body).
fn get(addr: &str, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    let (head, body) = all.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

#[test]
fn metrics_equal_the_status_and_the_overview_shows_the_node() {
    let p = Pair::new();
    p.drop_batch("b.xml", &sample_batch());
    p.pass(&p.insp);
    p.pass(&p.sup);
    p.pass(&p.insp);
    // A port that was free a moment ago.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let log = p.tmp.path().join("run.log");
    let _run = Running(
        Command::new(env!("CARGO_BIN_EXE_sedx"))
            .arg("--node")
            .arg(&p.sup)
            .args(["run", "--http", &addr])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_for(|| std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("metrics at")),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let (status_line, body) = get(&addr, "/metrics");
    assert!(status_line.contains("200"), "{status_line}");
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap();
    let value = |name: &str, label: Option<(&str, &str)>| -> f64 {
        let s = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .unwrap_or_else(|| panic!("no {name} {label:?} in\n{body}"));
        match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => panic!("{name} is not a number"),
        }
    };
    let status: serde_json::Value =
        serde_json::from_slice(&sedx(&p.sup, &["status", "--json"]).stdout).unwrap();
    let peer = &status["peers"][0];
    assert_eq!(
        value("sedx_peer_queued_sets", Some(("peer", INSP))),
        peer["queued"].as_f64().unwrap()
    );
    assert_eq!(
        value("sedx_peer_awaiting_ack_batches", Some(("peer", INSP))),
        peer["awaiting_ack"].as_array().unwrap().len() as f64
    );
    assert_eq!(
        value("sedx_peer_transport_failures", Some(("peer", INSP))),
        peer["transport"]["failures"].as_f64().unwrap()
    );
    // The exchange above: one batch of the sample.
    let accepted = sql_count(
        &p.sup.join("store.sqlite"),
        "SELECT sum(accepted) FROM journal",
    );
    let rejected = sql_count(
        &p.sup.join("store.sqlite"),
        "SELECT sum(rejected) FROM journal",
    );
    assert!(accepted > 0);
    assert_eq!(
        value("sedx_records_applied_total", Some(("peer", INSP))),
        accepted as f64
    );
    assert_eq!(
        value("sedx_records_refused_total", Some(("peer", INSP))),
        rejected as f64
    );
    let outcome = sql_text(&p.sup.join("store.sqlite"), "SELECT status FROM journal").unwrap();
    assert_eq!(
        value(
            "sedx_batches_received_total",
            Some(("status", outcome.as_str()))
        ),
        1.0
    );
    assert_eq!(value("sedx_sets_shipped_total", Some(("kind", "ack"))), 1.0);

    let (status_line, page) = get(&addr, "/");
    assert!(status_line.contains("200"), "{status_line}");
    assert!(
        page.contains("总览 overview: sup-city") && page.contains(INSP),
        "{page}"
    );
    // 查看设备信息: found by its code, typed with a full-width digit.
    let (_, page) = get(&addr, "/equipment?code=%EF%BC%931103101012006050007");
    assert!(
        page.contains("<pre id=\"equipment\">equipment 31103101012006050007"),
        "{page}"
    );
    let (_, page) = get(&addr, "/equipment?code=31109999992006050007");
    assert!(page.contains("未找到设备 no equipment"), "{page}");
    let (_, page) = get(&addr, "/acceptance");
    assert!(page.contains("业务受理 acceptance queue"), "{page}");
    let (status_line, _) = get(&addr, "/nothing");
    assert!(status_line.contains("404"), "{status_line}");
}

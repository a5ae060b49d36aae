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
    // Records by kind: what the journal says was applied, kind by kind.
    let by_kind: f64 = scrape
        .samples
        .iter()
        .filter(|s| {
            s.metric == "sedx_records_by_kind_total" && s.labels.get("direction") == Some("in")
        })
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => panic!("a counter"),
        })
        .sum();
    assert_eq!(by_kind, accepted as f64);
    assert_eq!(
        value("sedx_records_by_kind_total", Some(("kind", "equipment"))),
        sql_count(
            &p.sup.join("store.sqlite"),
            "SELECT count(*) FROM equipment"
        ) as f64
    );

    // The pages need a login; /metrics does not.
    let (status_line, _) = get(&addr, "/");
    assert!(status_line.contains("303"), "{status_line}");
}

/// A client with a cookie jar, over a plain socket (what a browser sends,
/// nothing more).
struct Client {
    addr: String,
    cookies: std::collections::BTreeMap<String, String>,
}

/// An answer: status code, headers (lower-case names), body.
struct Answer {
    code: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// The hidden CSRF field of the page's first form.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a form with a token")
            + 19;
        self.body[at..at + 64].to_string()
    }
}

impl Client {
    fn new(addr: &str) -> Client {
        Client {
            addr: addr.to_string(),
            cookies: Default::default(),
        }
    }

    fn send(&mut self, method: &str, path: &str, form: &[(&str, &str)]) -> Answer {
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| format!("{k}={}", enc(v)))
            .collect();
        let body = body.join("&");
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut s = std::net::TcpStream::connect(&self.addr).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nCookie: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            cookie.join("; "),
            body.len()
        )
        .unwrap();
        let mut all = String::new();
        s.read_to_string(&mut all).unwrap();
        let (head, body) = all.split_once("\r\n\r\n").unwrap();
        let mut lines = head.lines();
        let code = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        for (k, v) in &headers {
            if k == "set-cookie" {
                let (kv, _) = v.split_once(';').unwrap_or((v, ""));
                let (name, value) = kv.split_once('=').unwrap();
                if v.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_string(), value.to_string());
                }
            }
        }
        Answer {
            code,
            headers,
            body: body.to_string(),
        }
    }

    fn get(&mut self, path: &str) -> Answer {
        self.send("GET", path, &[])
    }

    fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        self.send("POST", path, form)
    }

    fn login(&mut self, user: &str, password: &str) -> Answer {
        let form = self.get("/login");
        assert_eq!(form.code, 200);
        let token = form.csrf();
        self.post(
            "/login",
            &[
                ("csrf", &token),
                ("user", user),
                ("password", password),
                ("next", "/"),
            ],
        )
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn free_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

/// `sedx run --http` for `node`, once its console listens; the log is returned too.
fn serve(node: &std::path::Path, addr: &str) -> (Running, std::path::PathBuf) {
    let log = node.join("run.log");
    let run = Running(
        Command::new(env!("CARGO_BIN_EXE_sedx"))
            .arg("--node")
            .arg(node)
            .args(["run", "--http", addr])
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
    (run, log)
}

/// `sedx user add` with the password on stdin.
fn add_user(node: &std::path::Path, name: &str, role: &str, password: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sedx"))
        .arg("--node")
        .arg(node)
        .args(["user", "add", name, "--role", role])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

const OPERATOR_PW: &str = "黄浦江 correct horse";
const VIEWER_PW: &str = "viewer password 1";

#[test]
fn the_console_needs_a_login_a_token_on_every_form_and_an_operator_to_act() {
    let p = Pair::new();
    add_user(&p.sup, "wang", "operator", OPERATOR_PW);
    add_user(&p.sup, "li", "viewer", VIEWER_PW);
    let short = Command::new(env!("CARGO_BIN_EXE_sedx"))
        .arg("--node")
        .arg(&p.sup)
        .args(["user", "add", "zhao", "--role", "viewer"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!short.status.success(), "an empty password is refused");
    let toml = std::fs::read_to_string(p.sup.join("sedx.toml")).unwrap();
    assert!(
        toml.contains("$argon2id$") && !toml.contains(OPERATOR_PW),
        "only the hash is kept"
    );
    // `sedx check` reads the users: a password that is not a hash is caught.
    let toml = p.sup.join("sedx.toml");
    let good = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        format!(
            "{good}\n[[user]]\nname = \"zhou\"\nrole = \"viewer\"\npassword = \"plain text\"\n"
        ),
    )
    .unwrap();
    let (code, check) = outcome(sedx(&p.sup, &["check", "--offline"]));
    assert_eq!(code, 2, "{check}");
    assert!(
        check.contains("FAIL user zhou") && check.contains("sedx user add zhou --role viewer"),
        "{check}"
    );
    assert!(
        check.contains("OK   user wang: console operator"),
        "{check}"
    );
    std::fs::write(&toml, good).unwrap();
    // Something to act on: a broken drop, quarantined on the supervision node,
    // and a batch it sent; then its window closes.
    drop_into(&p.sup, "broken.xml", "<batch>not closed");
    let change = format!("<codeChange><changeId>BG-1</changeId><field>registration-code</field><oldValue>{E1}</oldValue><newValue>{E2}</newValue><date>2006-09-01</date></codeChange>");
    drop_into(&p.sup, "change.xml", &drop_doc(SUP, &[&change]));
    p.pass(&p.sup);
    let sent = sql_text(
        &p.sup.join("store.sqlite"),
        "SELECT batch_id FROM outbox WHERE kind = 'batch'",
    )
    .unwrap();
    let far = (time::OffsetDateTime::now_utc().hour() + 8 + 12) % 24;
    configure(&p.sup, |c| {
        c.node.window = format!("{far:02}:00-{far:02}:01")
    });
    let id = sql_count(
        &p.sup.join("store.sqlite"),
        "SELECT max(id) FROM quarantine",
    )
    .to_string();
    let addr = free_addr();
    let (_run, _) = serve(&p.sup, &addr);

    // Without a session: pages redirect to the login, actions are refused.
    let mut anon = Client::new(&addr);
    let a = anon.get("/quarantine");
    assert_eq!(a.code, 303);
    assert_eq!(a.header("location"), Some("/login?next=/quarantine"));
    let a = anon.post("/quarantine/retry", &[("id", &id)]);
    assert_eq!(a.code, 403);
    // A wrong password is refused (and audited); the login form's token is checked.
    assert_eq!(anon.login("wang", "wrong password").code, 401);
    let mut forged = Client::new(&addr);
    let a = forged.post(
        "/login",
        &[
            ("csrf", &"0".repeat(64)),
            ("user", "wang"),
            ("password", OPERATOR_PW),
        ],
    );
    assert_eq!(a.code, 403, "a login form without its token");

    // A viewer reads everything and acts on nothing.
    let mut viewer = Client::new(&addr);
    let a = viewer.login("li", VIEWER_PW);
    assert_eq!(a.code, 303, "{}", a.body);
    let cookie = a.header("set-cookie").unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    for page in [
        "/",
        "/batches",
        "/quarantine",
        "/acceptance",
        "/equipment",
        "/discrepancies",
        "/audit",
    ] {
        let a = viewer.get(page);
        assert_eq!(a.code, 200, "{page}: {}", a.body);
    }
    let page = viewer.get("/quarantine");
    assert!(
        !page.body.contains("/quarantine/retry"),
        "no buttons for a viewer"
    );
    let a = viewer.post(
        "/quarantine/dismiss",
        &[("csrf", &page.csrf()), ("id", &id), ("reason", "x")],
    );
    assert_eq!(a.code, 403, "a viewer cannot act: {}", a.body);

    // An operator acts, with the token only.
    let mut op = Client::new(&addr);
    assert_eq!(op.login("wang", OPERATOR_PW).code, 303);
    let page = op.get("/quarantine");
    assert!(page.body.contains("/quarantine/retry"), "{}", page.body);
    let a = op.post(
        "/quarantine/dismiss",
        &[("id", &id), ("reason", "broken drop")],
    );
    assert_eq!(a.code, 403, "no token");
    let a = op.post(
        "/quarantine/dismiss",
        &[
            ("csrf", &"f".repeat(64)),
            ("id", &id),
            ("reason", "broken drop"),
        ],
    );
    assert_eq!(a.code, 403, "another token");
    let db = p.sup.join("store.sqlite");
    assert_eq!(
        sql_text(
            &db,
            &format!("SELECT state FROM quarantine WHERE id = {id}")
        )
        .as_deref(),
        Some("open"),
        "nothing was done by the refused forms"
    );
    let a = op.post(
        "/quarantine/dismiss",
        &[
            ("csrf", &page.csrf()),
            ("id", &id),
            ("reason", "broken drop"),
        ],
    );
    assert_eq!(a.code, 303, "{}", a.body);
    assert_eq!(
        sql_text(
            &db,
            &format!("SELECT state || ' ' || closed_by FROM quarantine WHERE id = {id}")
        )
        .as_deref(),
        Some("dismissed wang")
    );
    let page = op.get("/quarantine");
    assert!(
        page.body.contains("已忽略 dismissed item"),
        "the outcome is shown: {}",
        page.body
    );

    // Resend puts the batch back in outbound/; outside the window it waits
    // until an operator says send now.
    let page = op.get(&format!("/batch?id={sent}"));
    assert!(
        page.body.contains("封装 sealed") && page.body.contains("id=\"resend\""),
        "{}",
        page.body
    );
    let a = op.post("/batch/resend", &[("csrf", &page.csrf()), ("id", &sent)]);
    assert_eq!(a.code, 303);
    let ships = || sql_count(&db, "SELECT ship_count FROM outbox WHERE kind = 'batch'");
    assert_eq!(ships(), 1);
    let a = op.post("/send-now", &[("csrf", &page.csrf())]);
    assert_eq!(a.code, 303);
    assert!(
        wait_for(|| ships() == 2),
        "send now did not ship the resent batch"
    );
    let timeline = op.get(&format!("/batch?id={sent}")).body;
    let steps: Vec<usize> = ["投放 dropped", "封装 sealed", "发送 shipped", "重发 resent"]
        .iter()
        .map(|s| {
            timeline
                .find(s)
                .unwrap_or_else(|| panic!("{s} in {timeline}"))
        })
        .collect();
    assert!(
        steps.windows(2).all(|w| w[0] < w[1]),
        "in order: {timeline}"
    );
    // The overview follows sedx.toml as it changes.
    assert!(op
        .get("/")
        .body
        .contains(&format!("window {far:02}:00-{far:02}:01")));
    configure(&p.sup, |c| c.node.window = "always".into());
    assert!(op.get("/").body.contains("exchange window always: 开 open"));

    // The audit trail has each action, refused logins too, on its own page.
    let audit = op.get("/audit").body;
    for row in [
        "<td>wang</td><td>login</td><td></td><td>refused</td>",
        "<td>li</td><td>login</td><td></td><td>ok</td>",
        &format!("<td>wang</td><td>quarantine dismiss</td><td>{id}</td><td>ok</td>"),
        &format!("<td>wang</td><td>resend</td><td>{sent}</td><td>ok</td>"),
        "<td>wang</td><td>send now</td><td></td><td>ok</td>",
    ] {
        assert!(audit.contains(row), "{row} in {audit}");
    }
    assert_eq!(
        sql_count(
            &db,
            "SELECT count(*) FROM audit WHERE action = 'quarantine dismiss'"
        ),
        1
    );
    // Logging out ends the session.
    let a = op.post("/logout", &[("csrf", &page.csrf())]);
    assert_eq!(a.code, 303);
    assert_eq!(op.get("/").code, 303);
}

const E1: &str = "31103101012006050007";
const E2: &str = "31103101152006070001";

/// The console in a real browser (Debian's chromium, headless) over a live
/// exchange: log in, read the overview's figures, find an equipment by its
/// old code, and retry a quarantined set once its cause is fixed.
#[test]
fn an_operator_uses_the_console_in_a_real_browser() {
    let p = Pair::new();
    add_user(&p.sup, "wang", "operator", OPERATOR_PW);
    // An equipment with a report goes up; supervision changes its code.
    p.drop_batch(
        "b.xml",
        &drop_doc(
            INSP,
            &[
                &equipment(E1, Some(CI)),
                &report("DJ-1", E1, "periodic", CI, true),
            ],
        ),
    );
    p.pass(&p.insp);
    p.pass(&p.sup);
    p.pass(&p.insp);
    let change = format!("<codeChange><changeId>BG-1</changeId><field>registration-code</field><oldValue>{E1}</oldValue><newValue>{E2}</newValue><date>2006-09-01</date></codeChange>");
    drop_into(&p.sup, "change.xml", &drop_doc(SUP, &[&change]));
    p.pass(&p.sup);
    p.pass(&p.insp);
    p.pass(&p.sup);
    // Supervision does not trust the inspection node's key for a moment: the
    // next batch is quarantined. Then the key is back.
    let signers = trust_file(&p.sup);
    let trusted = std::fs::read_to_string(&signers).unwrap();
    let without: String = trusted
        .lines()
        .filter(|l| !l.starts_with(INSP))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&signers, without).unwrap();
    p.drop_batch("more.xml", &equipment_batch(1, 3));
    p.pass(&p.insp);
    p.pass(&p.sup);
    std::fs::write(&signers, &trusted).unwrap();
    let db = p.sup.join("store.sqlite");
    assert_eq!(
        sql_count(&db, "SELECT count(*) FROM quarantine WHERE state = 'open'"),
        1
    );
    let equipment_before = sql_count(&db, "SELECT count(*) FROM equipment");

    let addr = free_addr();
    let (_run, _) = serve(&p.sup, &addr);
    let b = crate::browser::Browser::start();
    b.goto(&format!("http://{addr}/"));
    assert!(
        b.current_url().contains("/login?next=/"),
        "{}",
        b.current_url()
    );
    b.type_into("#user", "wang");
    b.type_into("#password", OPERATOR_PW);
    b.click("#login");
    assert_eq!(
        b.current_url(),
        format!("http://{addr}/"),
        "{}",
        b.page_text()
    );

    // The overview: the figures of the exchange above, as `status --json` has them.
    let status: serde_json::Value =
        serde_json::from_slice(&sedx(&p.sup, &["status", "--json"]).stdout).unwrap();
    let peer = &status["peers"][0];
    assert_eq!(b.text("#quarantine"), "1");
    assert_eq!(b.text("#peers td.queued"), peer["queued"].to_string());
    assert_eq!(
        b.text("#peers td.awaiting"),
        peer["awaiting_ack"].as_array().unwrap().len().to_string()
    );
    let last = b.text("#peers td.last-received");
    assert!(last.ends_with("+08:00"), "Shanghai time: {last}");
    assert!(b.text("#peers").contains(INSP));
    let shot = b.screenshot("overview");
    b.keep_for_docs(&shot);

    // 查看设备信息 by the old code: the new one is shown, with its report.
    b.click("a[href='/equipment']");
    b.type_into("#q", E1);
    b.click("#show");
    let view = b.text("#equipment");
    assert!(view.starts_with(&format!("equipment {E2}")), "{view}");
    assert!(view.contains(&format!("{E1} → {E2}")), "{view}");
    assert!(view.contains("report DJ-1"), "{view}");
    let shot = b.screenshot("equipment");
    b.keep_for_docs(&shot);

    // 隔离区: the set is retried through the page and the service applies it.
    b.click("a[href='/quarantine']");
    assert!(
        b.text("#open").contains("SET-SIGNATURE"),
        "{}",
        b.text("#open")
    );
    b.screenshot("quarantine");
    b.click("#open button.retry");
    assert!(
        b.text("#flash").contains("已重试 retried"),
        "{}",
        b.page_text()
    );
    assert!(
        wait_for(|| sql_count(&db, "SELECT count(*) FROM equipment") == equipment_before + 3),
        "the retried set was not applied"
    );
    b.goto(&format!("http://{addr}/batches"));
    let list = b.text("#batches");
    assert!(
        list.contains("收到 in") && list.contains("applied"),
        "{list}"
    );
    b.screenshot("batches");
    // The batch's own page: its timeline and its records.
    b.click("#batches tr:nth-child(2) a");
    let timeline = b.text("#timeline");
    assert!(
        timeline.contains("收到 received") && timeline.contains("核验·校验·入库"),
        "{timeline}"
    );
    assert_eq!(b.text("#ack"), "accepted: 3 applied, 0 refused");
    assert!(
        b.text("#records").contains("equipment"),
        "{}",
        b.text("#records")
    );
    b.screenshot("batch");
    b.goto(&format!("http://{addr}/"));
    assert_eq!(b.text("#quarantine"), "0");
    b.goto(&format!("http://{addr}/audit"));
    assert!(
        b.text("#audit").contains("quarantine retry"),
        "{}",
        b.text("#audit")
    );
}

/// Alerts reach a webhook (started here, failing its first call) and a command,
/// each exactly once, and so does each resolution.
#[test]
fn alerts_are_raised_once_and_resolved_once_on_both_hooks() {
    let p = Pair::new();
    // The webhook receiver: answers 500 once (sedx tries again), then 200.
    let hook = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let hook_addr = hook.server_addr().to_ip().unwrap();
    let got: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>> = Default::default();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    {
        let (got, calls) = (got.clone(), calls.clone());
        std::thread::spawn(move || {
            for mut req in hook.incoming_requests() {
                let mut body = String::new();
                req.as_reader().read_to_string(&mut body).unwrap();
                let first = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
                if !first {
                    got.lock()
                        .unwrap()
                        .push(serde_json::from_str(&body).unwrap());
                }
                let _ = req.respond(tiny_http::Response::empty(if first { 500 } else { 200 }));
            }
        });
    }
    let piped = p.tmp.path().join("alerts.jsonl");
    configure(&p.sup, |c| {
        c.node.scan_interval_secs = 1;
        c.alerts = Some(sedx::context::config::AlertsSection {
            webhook: Some(format!("http://{hook_addr}/hook")),
            command: Some(vec![
                "sh".into(),
                "-c".into(),
                format!("cat >> {}", piped.display()),
            ]),
            check_secs: 1,
            transport_failing_secs: 1,
            gap_held_secs: 1800,
            disk_min_mb: 0,
        });
    });
    let addr = free_addr();
    let (_run, log) = serve(&p.sup, &addr);
    let seen = |kind: &str, state: &str| {
        got.lock()
            .unwrap()
            .iter()
            .filter(|m| m["kind"] == kind && m["state"] == state)
            .count()
    };

    // A quarantined drop: raised at once, resolved when it is dismissed.
    drop_into(&p.sup, "broken.xml", "<batch>not closed");
    assert!(
        wait_for(|| seen("quarantined", "raised") == 1),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    let db = p.sup.join("store.sqlite");
    let id = sql_count(&db, "SELECT max(id) FROM quarantine").to_string();
    let out = sedx(
        &p.sup,
        &["quarantine", "dismiss", &id, "--reason", "a test"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(wait_for(|| seen("quarantined", "resolved") == 1));

    // The transport fails for longer than transport_failing_secs, then works.
    p.sshd.stop();
    let change = format!("<codeChange><changeId>BG-9</changeId><field>registration-code</field><oldValue>{E1}</oldValue><newValue>{E2}</newValue><date>2006-09-01</date></codeChange>");
    drop_into(&p.sup, "change.xml", &drop_doc(SUP, &[&change]));
    assert!(
        wait_for(|| seen("transport-failing", "raised") == 1),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    p.sshd
        .restart_including(&format!("{}/none-*.conf", p.tmp.path().display()));
    assert!(
        wait_for(|| seen("transport-failing", "resolved") == 1),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    // The disk "runs low" (the threshold raised above what is free), then recovers;
    // [alerts] is read again at each round, no restart needed.
    let set_disk = |mb: u64| configure(&p.sup, |c| c.alerts.as_mut().unwrap().disk_min_mb = mb);
    set_disk(u64::MAX / (1 << 21));
    assert!(wait_for(|| seen("disk-low", "raised") == 1));
    set_disk(0);
    assert!(wait_for(|| seen("disk-low", "resolved") == 1));
    // Nothing is left to send; a few more rounds send nothing again.
    assert!(wait_for(
        || sql_count(&db, "SELECT count(*) FROM alert") == 0
    ));
    std::thread::sleep(std::time::Duration::from_secs(3));
    let hooked = got.lock().unwrap().clone();
    assert_eq!(
        hooked.len(),
        6,
        "each alert and each resolution once: {hooked:#?}"
    );
    let m = &hooked[0];
    assert_eq!(m["node"], SUP);
    assert!(
        m["summary"].as_str().unwrap().starts_with("文件被隔离"),
        "{m}"
    );
    assert!(m["since"].as_str().unwrap().ends_with("+08:00"), "{m}");
    assert_eq!(
        hooked[0]["id"], hooked[1]["id"],
        "the resolution names its alert"
    );
    // The command got the same messages, once each.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&piped)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let key = |v: &serde_json::Value| format!("{} {}", v["id"], v["state"]);
    assert_eq!(
        lines.iter().map(key).collect::<Vec<_>>(),
        hooked.iter().map(key).collect::<Vec<_>>()
    );
}

/// `[http]` with a certificate and key: HTTPS only, and the session cookie is
/// `Secure`.
#[test]
fn the_console_speaks_tls_when_given_a_certificate() {
    let p = Pair::new();
    add_user(&p.sup, "wang", "operator", OPERATOR_PW);
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(p.sup.join("keys/console.key"))
        .arg("-out")
        .arg(p.sup.join("keys/console.crt"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let addr = free_addr();
    configure(&p.sup, |c| {
        c.http = Some(sedx::context::config::HttpSection {
            listen: addr.clone(),
            cert: Some("keys/console.crt".into()),
            key: Some("keys/console.key".into()),
            session_minutes: 60,
        })
    });
    let log = p.sup.join("run.log");
    let _run = Running(
        Command::new(env!("CARGO_BIN_EXE_sedx"))
            .arg("--node")
            .arg(&p.sup)
            .arg("run")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_for(|| std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("at https://")),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let pem = std::fs::read(p.sup.join("keys/console.crt")).unwrap();
    let root = ureq::tls::Certificate::from_pem(&pem).unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .provider(ureq::tls::TlsProvider::NativeTls)
                .root_certs(ureq::tls::RootCerts::new_with_certs(&[root]))
                .build(),
        )
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let port = addr.rsplit(':').next().unwrap();
    let mut page = agent
        .get(&format!("https://localhost:{port}/login"))
        .call()
        .unwrap();
    assert_eq!(page.status(), 200);
    let cookie = page
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let body = page.body_mut().read_to_string().unwrap();
    assert!(body.contains("sedx 登录 log in"), "{body}");
    // Plain HTTP gets no page.
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let _ = write!(
        s,
        "GET /login HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    assert!(
        !String::from_utf8_lossy(&all).contains("登录"),
        "no page over plain HTTP"
    );
}

/// Every metric the example Grafana dashboard queries is one sedx serves.
#[test]
fn the_grafana_dashboard_asks_for_metrics_that_exist() {
    let p = Pair::new();
    p.drop_batch("b.xml", &sample_batch());
    p.pass(&p.insp);
    p.pass(&p.sup);
    p.pass(&p.insp);
    drop_into(&p.sup, "broken.xml", "<batch>not closed");
    p.pass(&p.sup);
    let addr = free_addr();
    let (_run, _) = serve(&p.sup, &addr);
    let (_, body) = get(&addr, "/metrics");
    let dash = std::fs::read_to_string(repo().join("docs/grafana-dashboard.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&dash).unwrap();
    let mut asked = 0;
    for panel in dash["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            for (i, _) in expr.match_indices("sedx_") {
                let name: String = expr[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                asked += 1;
                // A family with no samples yet still has its TYPE line (a
                // counter's without _total, a histogram's without _bucket).
                let family = name.trim_end_matches("_total").trim_end_matches("_bucket");
                assert!(
                    body.lines().any(|l| l.starts_with(&format!("{name}{{"))
                        || l.starts_with(&format!("{name} "))
                        || l.starts_with(&format!("# TYPE {family} "))),
                    "the dashboard asks for {name}, which /metrics lacks:\n{body}"
                );
            }
        }
    }
    assert!(asked >= 10, "{asked}");
}

/// A peer's values reach the pages as text, never as markup: a user unit
/// carrying a script is shown escaped, in the search list and in the view.
#[test]
fn markup_sent_by_a_peer_is_shown_as_text_on_the_pages() {
    let p = Pair::new();
    add_user(&p.sup, "li", "viewer", VIEWER_PW);
    let hostile = "上海<script>alert(1)</script>&<b>公司</b>";
    let record = equipment(E1, Some(CI))
        .replace("上海外滩置业有限公司", &quick_xml::escape::escape(hostile));
    p.drop_batch("b.xml", &drop_doc(INSP, &[&record]));
    p.pass(&p.insp);
    p.pass(&p.sup);
    let addr = free_addr();
    let (_run, _) = serve(&p.sup, &addr);
    let mut c = Client::new(&addr);
    assert_eq!(c.login("li", VIEWER_PW).code, 303);
    for path in [
        format!("/equipment?q={}", enc("script")),
        format!("/equipment?q={E1}"),
    ] {
        let page = c.get(&path);
        assert_eq!(page.code, 200);
        assert!(
            page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
                || page
                    .body
                    .contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
            "{path}: {}",
            page.body
        );
        assert!(
            !page.body.contains("<script>") && !page.body.contains("<b>公司"),
            "{}",
            page.body
        );
        let csp = page.header("content-security-policy").unwrap();
        assert!(csp.contains("default-src 'none'"), "{csp}");
    }
}

//! Alerts (`[alerts]` in sedx.toml): conditions the node watches for, raised
//! once when they have lasted long enough and resolved once when they clear,
//! sent as JSON to a webhook (POST, retried with backoff) and/or on the stdin
//! of a command (sendmail, an SMS gateway's client). The store keeps each
//! alert's state, so a restart neither repeats nor forgets one.

use crate::context::clock::{age_secs, shanghai, shanghai_text};
use crate::context::config::{AlertsSection, Config};
use crate::context::error::{Error, Result};
use crate::context::node::Node;
use crate::store::AlertRow;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    TransportFailing,
    AckOverdue,
    Quarantined,
    GapHeld,
    PullSilent,
    DiskLow,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::TransportFailing => "transport-failing",
            AlertKind::AckOverdue => "ack-overdue",
            AlertKind::Quarantined => "quarantined",
            AlertKind::GapHeld => "gap-held",
            AlertKind::PullSilent => "pull-silent",
            AlertKind::DiskLow => "disk-low",
        }
    }
    fn zh(self) -> &'static str {
        match self {
            AlertKind::TransportFailing => "传输失败",
            AlertKind::AckOverdue => "回执超时",
            AlertKind::Quarantined => "文件被隔离",
            AlertKind::GapHeld => "序号缺失",
            AlertKind::PullSilent => "对端未取件",
            AlertKind::DiskLow => "磁盘空间不足",
        }
    }
    fn parse(s: &str) -> Option<AlertKind> {
        [
            AlertKind::TransportFailing,
            AlertKind::AckOverdue,
            AlertKind::Quarantined,
            AlertKind::GapHeld,
            AlertKind::PullSilent,
            AlertKind::DiskLow,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A condition seen in one check.
struct Condition {
    key: String,
    kind: AlertKind,
    subject: String,
    detail: String,
    /// Raised once it has lasted this long.
    after_secs: u64,
}

/// The message each receiver gets.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AlertMessage {
    /// Stable for one alert: its raising and its resolution share it.
    pub id: String,
    /// "raised" or "resolved".
    pub state: &'static str,
    pub kind: String,
    pub node: String,
    pub subject: String,
    pub summary: String,
    pub detail: String,
    pub since: String,
    pub at: String,
}

/// Watch the node in `dir` on a thread of its own, every `check_secs`.
pub fn start(dir: PathBuf) -> Result<()> {
    std::thread::Builder::new()
        .name("sedx-alerts".into())
        .spawn(move || {
            let mut delivery = Delivery::default();
            let mut node: Option<Node> = None;
            let mut opened = None;
            loop {
                let cfg = Config::load(&dir).ok().and_then(|c| c.alerts);
                let every = cfg.as_ref().map_or(30, |a| a.check_secs.max(1));
                if let Some(cfg) = cfg {
                    let now = Config::modified(&dir);
                    if node.is_none() || now != opened {
                        opened = now;
                        node = Node::open(&dir)
                            .map_err(|e| tracing::error!("alerts: {e}"))
                            .ok();
                    }
                    if let Some(n) = &node {
                        if let Err(e) = check(n, &cfg, &mut delivery) {
                            tracing::error!("alerts: {e}");
                            node = None;
                        }
                    }
                }
                std::thread::sleep(Duration::from_secs(every));
            }
        })
        .map_err(|e| Error::Other(format!("alerts thread: {e}")))?;
    Ok(())
}

/// One round: note what holds now, raise what has lasted, resolve what
/// cleared, and deliver what is due.
pub fn check(node: &Node, cfg: &AlertsSection, delivery: &mut Delivery) -> Result<()> {
    let now = conditions(node, cfg)?;
    let store = &node.store;
    for c in &now {
        store.alert_seen(&c.key, c.kind.as_str(), &c.subject, &c.detail)?;
    }
    for row in store.alerts()? {
        match now.iter().find(|c| c.key == row.key) {
            Some(c) if row.raised_at.is_none() => {
                if age_secs(&row.since) >= i64::try_from(c.after_secs).unwrap_or(i64::MAX) {
                    store.alert_raise(&row.key)?;
                    tracing::warn!(alert = %row.key, "alert raised: {}", row.detail);
                }
            }
            Some(_) => {}
            None => {
                store.alert_cleared(&row.key)?;
                if row.raised_at.is_some() && row.resolved_at.is_none() {
                    tracing::info!(alert = %row.key, "alert resolved");
                }
            }
        }
    }
    for row in store.alerts()? {
        let resolution = row.resolved_at.is_some();
        if row.raised_at.is_none() || (row.delivered && !resolution) {
            continue;
        }
        if resolution && !row.delivered {
            // Resolved before its raising went out: nothing to tell.
            store.alert_delivered(&row.key, true)?;
            continue;
        }
        let msg = message(node.id(), &row);
        if delivery.send(cfg, &msg)? {
            store.alert_delivered(&row.key, resolution)?;
        }
    }
    Ok(())
}

fn message(node: &str, row: &AlertRow) -> AlertMessage {
    let resolved = row.resolved_at.is_some();
    let kind = AlertKind::parse(&row.kind);
    AlertMessage {
        id: row.key.clone(),
        state: if resolved { "resolved" } else { "raised" },
        kind: row.kind.clone(),
        node: node.to_string(),
        subject: row.subject.clone(),
        summary: format!(
            "{}{} {}: {}",
            kind.map_or("", AlertKind::zh),
            if resolved {
                "（已恢复 resolved）"
            } else {
                ""
            },
            node,
            row.subject
        ),
        detail: row.detail.clone(),
        since: shanghai_text(&row.since),
        at: shanghai(time::OffsetDateTime::now_utc()),
    }
}

fn conditions(node: &Node, cfg: &AlertsSection) -> Result<Vec<Condition>> {
    let s = crate::tools::status::gather(node)?;
    let mut out = Vec::new();
    let mut add = |kind: AlertKind, key: String, subject: &str, detail: String, after_secs| {
        out.push(Condition {
            key: format!("{}:{key}", kind.as_str()),
            kind,
            subject: subject.to_string(),
            detail,
            after_secs,
        })
    };
    for p in &s.peers {
        if p.transport.failures > 0 {
            add(
                AlertKind::TransportFailing,
                p.id.clone(),
                &p.id,
                format!(
                    "transport to {} failing ({} attempts): {}; check the network, the peer's sshd and `sedx check`",
                    p.id,
                    p.transport.failures,
                    crate::context::text::field(p.transport.last_error.as_deref().unwrap_or("-"))
                ),
                cfg.transport_failing_secs,
            );
        }
        for a in p.awaiting_ack.iter().filter(|a| a.overdue) {
            add(
                AlertKind::AckOverdue,
                format!("{}:{}", p.id, a.batch),
                &p.id,
                format!(
                    "batch {} (seq {}) shipped to {} {} ago and not acknowledged; ask the peer whether it arrived, or `sedx resend {}`",
                    a.batch, a.seq, p.id, a.waiting_secs, a.batch
                ),
                0,
            );
        }
        if !p.held.is_empty() {
            add(
                AlertKind::GapHeld,
                format!("{}:{}", p.id, p.expected_seq),
                &p.id,
                format!(
                    "sets from {} held: seq {} is missing; ask the peer to resend it",
                    p.id, p.expected_seq
                ),
                cfg.gap_held_secs,
            );
        }
        if p.pull.as_ref().is_some_and(|pull| pull.silent) {
            add(
                AlertKind::PullSilent,
                p.id.clone(),
                &p.id,
                format!(
                    "{} has not pulled its sets for longer than pull_alert_secs; call the peer",
                    p.id
                ),
                0,
            );
        }
    }
    for q in node.store.quarantined()? {
        add(
            AlertKind::Quarantined,
            q.id.to_string(),
            q.peer.as_deref().unwrap_or("outbound"),
            format!(
                "item {}: {} {}: {}; see the console's 隔离区 page, fix the cause and retry",
                q.id,
                crate::context::text::field(&q.name),
                q.code,
                crate::context::text::field(&q.detail)
            ),
            0,
        );
    }
    if let Some(free) = free_mb(&node.layout.root) {
        if free < cfg.disk_min_mb {
            add(
                AlertKind::DiskLow,
                "node".into(),
                "disk",
                format!(
                    "{free} MB free under {} (alert below {} MB); make room (archive/, backups) before sets are refused",
                    node.layout.root.display(),
                    cfg.disk_min_mb
                ),
                0,
            );
        }
    }
    Ok(out)
}

/// Free space for unprivileged writers under `dir`, in MB.
fn free_mb(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a zeroed struct the call fills.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail.saturating_mul(st.f_frsize) / (1024 * 1024))
}

/// Sending to the receivers, with backoff per alert; what one receiver got
/// is not sent to it again when another one failed.
#[derive(Default)]
pub struct Delivery {
    /// (alert id, state, receiver) that got it.
    done: std::collections::HashSet<(String, &'static str, &'static str)>,
    /// alert id and state → (failures, no new try before).
    backoff: HashMap<(String, &'static str), (u32, Instant)>,
}

impl Delivery {
    /// True once every configured receiver has the message.
    pub fn send(&mut self, cfg: &AlertsSection, msg: &AlertMessage) -> Result<bool> {
        let slot = (msg.id.clone(), msg.state);
        if let Some((_, not_before)) = self.backoff.get(&slot) {
            if Instant::now() < *not_before {
                return Ok(false);
            }
        }
        let body =
            serde_json::to_string(msg).map_err(|e| Error::Other(format!("alert as JSON: {e}")))?;
        let mut all = true;
        if let Some(url) = &cfg.webhook {
            all &= self.once(msg, "webhook", || post(url, &body));
        }
        if let Some(cmd) = cfg.command.as_ref().filter(|c| !c.is_empty()) {
            all &= self.once(msg, "command", || run_command(cmd, &body));
        }
        if all {
            self.backoff.remove(&slot);
            self.done.retain(|d| d.0 != msg.id || d.1 != msg.state);
        } else {
            let e = self.backoff.entry(slot).or_insert((0, Instant::now()));
            e.0 += 1;
            let wait = Duration::from_secs((1u64 << e.0.min(9)).min(300));
            e.1 = Instant::now() + wait;
        }
        Ok(all)
    }

    fn once(
        &mut self,
        msg: &AlertMessage,
        receiver: &'static str,
        go: impl FnOnce() -> std::result::Result<(), String>,
    ) -> bool {
        let key = (msg.id.clone(), msg.state, receiver);
        if self.done.contains(&key) {
            return true;
        }
        match go() {
            Ok(()) => {
                self.done.insert(key);
                true
            }
            Err(e) => {
                tracing::warn!(alert = %msg.id, receiver, "alert not delivered, tried again later: {e}");
                false
            }
        }
    }
}

fn post(url: &str, body: &str) -> std::result::Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .provider(ureq::tls::TlsProvider::NativeTls)
                // The system's roots: a bureau's own CA is added there.
                .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                .build(),
        )
        .build()
        .into();
    agent
        .post(url)
        .header("Content-Type", "application/json; charset=utf-8")
        .send(body)
        .map(|_| ())
        .map_err(|e| format!("webhook {url}: {e}"))
}

/// Run the command (no shell) with the alert on stdin; it has 30 s.
fn run_command(cmd: &[String], body: &str) -> std::result::Result<(), String> {
    let mut child = std::process::Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("command {}: {e}", cmd[0]))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(body.as_bytes());
        let _ = stdin.write_all(b"\n");
    }
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok(()),
            Ok(Some(st)) => return Err(format!("command {} ended with {st}", cmd[0])),
            Ok(None) if started.elapsed() > Duration::from_secs(30) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("command {} took longer than 30 s", cmd[0]));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("command {}: {e}", cmd[0])),
        }
    }
}

//! `sedx status`: the state of a node at a glance, per peer, as text or JSON.

use crate::context::error::Result;
use crate::context::node::Node;
use crate::store::PeerState;
use crate::wire::set;
use serde::Serialize;
use std::fmt::Write;

#[derive(Debug, Serialize)]
pub struct Status {
    pub node: String,
    pub role: &'static str,
    pub window: String,
    pub window_open: bool,
    pub peers: Vec<PeerStatus>,
    /// Sets in outbound/ whose receiver could not be read.
    pub unroutable: u64,
    pub kept_home: u64,
    pub held_back: u64,
    pub deferred_waiting: u64,
    pub quarantine: Vec<QuarantineItem>,
    /// Folders in inbound/ of no configured peer and the complete sets in each.
    pub unknown_inbound: Vec<UnknownFolder>,
    /// Proposals and change requests awaiting this node's decision (R12, R13).
    pub undecided: Vec<crate::store::views::Undecided>,
    /// On PostgreSQL: the process that holds the node (the active one of an
    /// active/standby pair), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<Active>,
}

/// Which process works the node (PostgreSQL stores, where a standby may wait).
#[derive(Debug, Serialize)]
pub struct Active {
    pub held: bool,
    pub holder: Option<crate::store::lease::Holder>,
}

#[derive(Debug, Serialize)]
pub struct UnknownFolder {
    pub folder: String,
    pub sets: usize,
}

#[derive(Debug, Serialize)]
pub struct PeerStatus {
    pub id: String,
    /// Sets in outbound/ for this peer (batches and acknowledgments).
    pub queued: u64,
    pub last_sent: Option<String>,
    pub last_received: Option<String>,
    pub last_seq_sent: u64,
    pub awaiting_ack: Vec<Awaiting>,
    /// The next sequence number expected from the peer.
    pub expected_seq: u64,
    /// Sequence numbers held back by a gap.
    pub held: Vec<u64>,
    pub transport: PeerState,
    pub recent_outcomes: Vec<Outcome>,
    /// A peer that pulls from this hub: its outbox folder here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull: Option<PullStatus>,
}

#[derive(Debug, Serialize)]
pub struct PullStatus {
    /// When sets were last seen taken from the folder.
    pub last_pull: Option<String>,
    /// Sets waiting there to be pulled.
    pub waiting: usize,
    pub oldest_waiting_secs: i64,
    /// Waiting longer than pull_alert_secs: the peer has stopped pulling.
    pub silent: bool,
}

#[derive(Debug, Serialize)]
pub struct Awaiting {
    pub batch: String,
    pub seq: u64,
    pub shipped_at: String,
    pub waiting_secs: i64,
    pub overdue: bool,
    pub ship_count: u64,
}

#[derive(Debug, Serialize)]
pub struct Outcome {
    pub batch: String,
    pub seq: u64,
    pub status: String,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct QuarantineItem {
    pub at: String,
    pub from: String,
    pub name: String,
    pub code: String,
    pub detail: String,
}

use crate::context::clock::{age_secs, shanghai_text, shanghai_unix};

pub fn gather(node: &Node) -> Result<Status> {
    let store = &node.store;
    let mut queued: std::collections::BTreeMap<String, u64> = Default::default();
    let mut unroutable = 0;
    for name in set::complete_sets(&node.layout.outbound)? {
        match crate::transport::ship::routing(&name, &node.layout.outbound) {
            Ok(r) => *queued.entry(r.to).or_default() += 1,
            Err(_) => unroutable += 1,
        }
    }
    let outbox = store.outbox_all()?;
    let held = store.held()?;
    let timeout = node.cfg.node.ack_timeout_secs as i64;
    let mut peers = Vec::new();
    for p in &node.cfg.peers {
        let mine: Vec<_> = outbox.iter().filter(|e| e.peer == p.id).collect();
        let batches: Vec<_> = mine
            .iter()
            .filter(|e| e.kind == crate::wire::document::DocKind::Batch)
            .collect();
        let awaiting_ack = batches
            .iter()
            .filter(|e| e.state == crate::store::OutboxState::Shipped)
            .map(|e| {
                let shipped_at = e.shipped_at.clone().unwrap_or_default();
                let waiting_secs = age_secs(&shipped_at);
                Awaiting {
                    batch: e.batch_id.clone(),
                    seq: e.seq.unwrap_or(0),
                    overdue: waiting_secs >= timeout,
                    shipped_at,
                    waiting_secs,
                    ship_count: e.ship_count,
                }
            })
            .collect();
        let recent_outcomes = batches
            .iter()
            .filter(|e| e.ack_status.is_some())
            .rev()
            .take(5)
            .map(|e| Outcome {
                batch: e.batch_id.clone(),
                seq: e.seq.unwrap_or(0),
                status: e.ack_status.clone().unwrap_or_default(),
                detail: e.ack_detail.clone().unwrap_or_default(),
            })
            .collect();
        let pull = if p.transport == crate::context::config::Transport::Local {
            let watch = crate::transport::pull::pull_watch(node, p)?;
            let oldest = watch.waiting.first().map(|w| age_secs(&w.1)).unwrap_or(0);
            Some(PullStatus {
                last_pull: store.peer_state(&p.id)?.last_pull_at,
                waiting: watch.waiting.len(),
                oldest_waiting_secs: oldest,
                silent: !watch.waiting.is_empty() && oldest >= node.cfg.node.pull_alert_secs as i64,
            })
        } else {
            None
        };
        peers.push(PeerStatus {
            pull,
            id: p.id.clone(),
            queued: queued.get(&p.id).copied().unwrap_or(0),
            last_sent: mine.iter().filter_map(|e| e.shipped_at.clone()).max(),
            last_received: store.last_received(&p.id)?,
            last_seq_sent: batches.iter().filter_map(|e| e.seq).max().unwrap_or(0),
            awaiting_ack,
            expected_seq: store.expected_seq(&p.id)?,
            held: held.iter().filter(|h| h.0 == p.id).map(|h| h.1).collect(),
            transport: store.peer_state(&p.id)?,
            recent_outcomes,
        });
    }
    let window = node.cfg.window();
    let active = match node.cfg.postgres_url() {
        Some(url) => {
            let holder = crate::store::lease::holder(url)?;
            Some(Active {
                held: holder.is_some(),
                holder,
            })
        }
        None => None,
    };
    Ok(Status {
        active,
        node: node.id().to_string(),
        role: node.cfg.node.role.as_str(),
        window: node.cfg.node.window.clone(),
        window_open: window.open_now(),
        peers,
        unroutable,
        kept_home: store.counter("kept_home")?,
        held_back: store.counter("held_back")?,
        deferred_waiting: store.count("deferred")?,
        quarantine: store
            .quarantined()?
            .into_iter()
            .map(|q| QuarantineItem {
                at: q.at,
                from: q.peer.unwrap_or_else(|| "outbound".into()),
                name: q.name,
                code: q.code,
                detail: q.detail,
            })
            .collect(),
        unknown_inbound: crate::receive::strangers(node)?
            .into_iter()
            .map(|(folder, sets)| UnknownFolder { folder, sets })
            .collect(),
        undecided: crate::store::views::undecided(store, None)?,
    })
}

/// How a node is doing, as monitoring systems (Nagios, Zabbix, ...) read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Health {
    Ok,
    /// Attention soon: a sequence gap, sets in an unknown inbound folder, sets in
    /// outbound/ whose receiver cannot be read.
    Warning,
    /// The exchange is not working: a peer's transport failing, a batch not
    /// acknowledged in time.
    Critical,
}

impl Health {
    /// The exit status of `sedx status` (0 ok, 1 warning, 2 critical).
    pub fn exit_code(self) -> u8 {
        self as u8
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Ok => "OK",
            Health::Warning => "WARNING",
            Health::Critical => "CRITICAL",
        }
    }
}

impl Status {
    /// The worst condition, with the reasons for it.
    pub fn health(&self) -> (Health, Vec<String>) {
        let mut worst = Health::Ok;
        let mut why = Vec::new();
        let mut note = |h: Health, what: String| {
            worst = worst.max(h);
            why.push(what);
        };
        for p in &self.peers {
            if p.transport.failures > 0 {
                note(
                    Health::Critical,
                    format!(
                        "{}: transport failing ({} failures)",
                        p.id, p.transport.failures
                    ),
                );
            }
            let overdue = p.awaiting_ack.iter().filter(|a| a.overdue).count();
            if overdue > 0 {
                note(
                    Health::Critical,
                    format!("{}: {overdue} batch(es) not acknowledged in time", p.id),
                );
            }
            if let Some(pull) = p.pull.as_ref().filter(|x| x.silent) {
                note(
                    Health::Critical,
                    format!(
                        "{}: not pulling ({} set(s) waiting, oldest {} min)",
                        p.id,
                        pull.waiting,
                        pull.oldest_waiting_secs / 60
                    ),
                );
            }
            if !p.held.is_empty() {
                note(
                    Health::Warning,
                    format!("{}: waiting for seq {}", p.id, p.expected_seq),
                );
            }
        }
        for u in &self.unknown_inbound {
            note(
                Health::Warning,
                format!(
                    "inbound/{}: {} set(s) of no configured peer",
                    crate::context::text::field(&u.folder),
                    u.sets
                ),
            );
        }
        if self.unroutable > 0 {
            note(
                Health::Warning,
                format!("{} set(s) in outbound/ cannot be routed", self.unroutable),
            );
        }
        (worst, why)
    }

    /// One line for a monitoring check: `STATE sedx NODE: reasons`.
    pub fn summary(&self) -> String {
        let (health, why) = self.health();
        let why = if why.is_empty() {
            "exchange working".to_string()
        } else {
            why.join("; ")
        };
        format!("{} sedx {}: {why}", health.as_str(), self.node)
    }

    pub fn text(&self) -> String {
        let mut o = String::new();
        let w = &mut o;
        let _ = writeln!(w, "node {} ({})", self.node, self.role);
        if let Some(a) = &self.active {
            match &a.holder {
                Some(h) => {
                    let _ = writeln!(
                        w,
                        "active 运行中: pid {} on {} (`sedx {}`) since {}",
                        h.pid,
                        h.host,
                        h.what,
                        shanghai_text(&h.since)
                    );
                }
                None => {
                    let _ = writeln!(w, "active 运行中: none (no `sedx run` holds the node)");
                }
            }
        }
        let _ = writeln!(
            w,
            "exchange window {} (Asia/Shanghai): {}",
            self.window,
            if self.window_open {
                "open"
            } else {
                "closed; batches queue"
            }
        );
        for p in &self.peers {
            let _ = writeln!(w, "peer {}:", p.id);
            let _ = writeln!(
                w,
                "  queued {}; last sent {}; last received {}",
                p.queued,
                p.last_sent.as_deref().map_or("never".into(), shanghai_text),
                p.last_received
                    .as_deref()
                    .map_or("never".into(), shanghai_text)
            );
            if let Some(pull) = &p.pull {
                let _ = writeln!(
                    w,
                    "  {}pulls from this hub: last pull {}; {} set(s) waiting{}",
                    if pull.silent {
                        "NOT PULLING 未取件: "
                    } else {
                        ""
                    },
                    pull.last_pull
                        .as_deref()
                        .map_or("never".into(), shanghai_text),
                    pull.waiting,
                    if pull.waiting > 0 {
                        format!(", oldest {} min", pull.oldest_waiting_secs / 60)
                    } else {
                        String::new()
                    }
                );
            }
            if p.transport.failures > 0 {
                let _ = writeln!(
                    w,
                    "  TRANSPORT FAILING: {} failure(s), last at {}: {}; next retry {}",
                    p.transport.failures,
                    p.transport
                        .last_error_at
                        .as_deref()
                        .map_or("-".into(), shanghai_text),
                    crate::context::text::field(p.transport.last_error.as_deref().unwrap_or("-")),
                    if p.transport.next_attempt > crate::context::clock::unix_now() {
                        shanghai_unix(p.transport.next_attempt)
                    } else {
                        "at the next pass".into()
                    }
                );
            }
            let _ = writeln!(
                w,
                "  sent: last seq {}; {} awaiting acknowledgment",
                p.last_seq_sent,
                p.awaiting_ack.len()
            );
            for a in &p.awaiting_ack {
                let _ = writeln!(
                    w,
                    "    {}{} seq {} shipped {} ({}x), waiting {} s",
                    if a.overdue { "OVERDUE " } else { "" },
                    a.batch,
                    a.seq,
                    shanghai_text(&a.shipped_at),
                    a.ship_count,
                    a.waiting_secs
                );
            }
            for o in &p.recent_outcomes {
                let _ = writeln!(
                    w,
                    "    {} seq {}: {} {}",
                    crate::context::text::field(&o.batch),
                    o.seq,
                    o.status,
                    crate::context::text::field(&o.detail)
                );
            }
            let _ = writeln!(w, "  received: applied through seq {}", p.expected_seq - 1);
            if !p.held.is_empty() {
                let seqs: Vec<String> = p.held.iter().map(u64::to_string).collect();
                let _ = writeln!(
                    w,
                    "  GAP: waiting for seq {}; holding seq {}",
                    p.expected_seq,
                    seqs.join(", ")
                );
            }
        }
        if self.unroutable > 0 {
            let _ = writeln!(
                w,
                "outbound: {} set(s) whose receiver cannot be read",
                self.unroutable
            );
        }
        let _ = writeln!(
            w,
            "rules: {} non-statutory report(s) kept home (R15); {} record(s) held back for their category's start (R9), {} still waiting",
            self.kept_home, self.held_back, self.deferred_waiting
        );
        for u in &self.unknown_inbound {
            let _ = writeln!(
                w,
                "UNKNOWN INBOUND FOLDER inbound/{}: {} set(s) from no configured peer, not read (未配置的对端目录)",
                crate::context::text::field(&u.folder),
                u.sets
            );
        }
        if !self.undecided.is_empty() {
            let _ = writeln!(
                w,
                "awaiting decision 待决定: {} (sedx decisions)",
                self.undecided.len()
            );
            for u in self.undecided.iter().take(10) {
                let _ = writeln!(
                    w,
                    "  {} {} {} equipment {} agency {} from {}",
                    u.date, u.kind, u.id, u.registration_code, u.agency, u.from
                );
            }
        }
        let _ = writeln!(w, "quarantine: {} item(s)", self.quarantine.len());
        for q in self.quarantine.iter().take(20) {
            let _ = writeln!(
                w,
                "  {} {} {}: {} {}",
                shanghai_text(&q.at),
                q.from,
                crate::context::text::field(&q.name),
                q.code,
                crate::context::text::field(&q.detail)
            );
        }
        o
    }
}

impl Node {
    /// A readable summary of the node's state.
    pub fn status(&self) -> Result<String> {
        Ok(gather(self)?.text())
    }
}

//! The console's pages: the store's views made into rows and rendered by
//! templates (askama: checked when sedx is compiled, HTML-escaped by default).
//! Values from peers are shown through `text::field` like everywhere else.

use super::{charts, encode, Reply, Req};
use crate::context::clock::{shanghai_text, shanghai_unix, unix_now};
use crate::context::error::{Error, Result};
use crate::context::node::Node;
use crate::store::views;
use askama::Template;

/// What every page shows around its content.
pub struct Frame {
    pub node: String,
    pub hub: bool,
    pub user: String,
    pub role: &'static str,
    pub operator: bool,
    pub csrf: String,
    pub flash: Option<String>,
}

fn render(t: &impl Template) -> Result<String> {
    t.render()
        .map_err(|e| Error::Other(format!("template: {e}")))
}

fn opt_time(t: Option<&str>) -> String {
    t.map_or_else(|| "-".into(), shanghai_text)
}

/// A duration as people say it: "3 分 12 秒 / 3m12s".
fn ago(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86399 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// A GET page of this console.
pub fn page(node: &Node, frame: &Frame, req: &Req) -> Result<Reply> {
    let html = match req.path.as_str() {
        "/" => overview(node, frame)?,
        "/batches" => batches(node, frame, &req.param("q").unwrap_or_default())?,
        "/batch" => match batch(node, frame, &req.param("id").unwrap_or_default())? {
            Some(html) => html,
            None => return Ok(Reply::Text(404, "未找到批次 no such batch".into())),
        },
        "/quarantine" => quarantine(node, frame)?,
        "/acceptance" => acceptance(node, frame, req)?,
        "/equipment" => equipment(node, frame, &req.param("q").or_else(|| req.param("code")))?,
        "/discrepancies" => discrepancies(node, frame)?,
        "/audit" => audit(node, frame)?,
        _ => return Ok(Reply::Text(404, "未找到 not found".into())),
    };
    Ok(Reply::Page(200, html))
}

#[derive(Template)]
#[template(path = "login.html")]
struct Login<'a> {
    token: &'a str,
    next: &'a str,
    said: Option<&'a str>,
}

pub fn login_page(token: &str, next: &str, said: Option<&str>) -> Result<String> {
    render(&Login { token, next, said })
}

struct PeerRow {
    id: String,
    queued: u64,
    awaiting: usize,
    oldest: String,
    overdue: bool,
    last_sent: String,
    last_received: String,
    failing: bool,
    transport: String,
    gap: String,
    pull: String,
}

struct AlertLine {
    kind: String,
    subject: String,
    detail: String,
    since: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct Overview<'a> {
    frame: &'a Frame,
    title: &'a str,
    health: &'a str,
    why: String,
    window: String,
    window_open: bool,
    peers: Vec<PeerRow>,
    alerts: Vec<AlertLine>,
    quarantine: usize,
    undecided: usize,
    per_day: String,
    latency: String,
}

fn overview(node: &Node, frame: &Frame) -> Result<String> {
    let s = crate::tools::status::gather(node)?;
    let (health, why) = s.health();
    let peers = s
        .peers
        .iter()
        .map(|p| {
            let oldest = p.awaiting_ack.iter().map(|a| a.waiting_secs).max();
            PeerRow {
                id: p.id.clone(),
                queued: p.queued,
                awaiting: p.awaiting_ack.len(),
                oldest: oldest.map_or_else(|| "-".into(), ago),
                overdue: p.awaiting_ack.iter().any(|a| a.overdue),
                last_sent: opt_time(p.last_sent.as_deref()),
                last_received: opt_time(p.last_received.as_deref()),
                failing: p.transport.failures > 0,
                transport: if p.transport.failures > 0 {
                    format!(
                        "失败 failing ×{}, 下次重试 next try {}: {}",
                        p.transport.failures,
                        shanghai_unix(p.transport.next_attempt.max(unix_now())),
                        crate::context::text::field(
                            p.transport.last_error.as_deref().unwrap_or("")
                        )
                    )
                } else {
                    "正常 ok".into()
                },
                gap: if p.held.is_empty() {
                    "-".into()
                } else {
                    format!(
                        "等待 waiting for seq {} ({} held)",
                        p.expected_seq,
                        p.held.len()
                    )
                },
                pull: p.pull.as_ref().map_or_else(
                    || "-".into(),
                    |pull| {
                        format!(
                            "{}{}",
                            opt_time(pull.last_pull.as_deref()),
                            if pull.silent {
                                " 未取件 NOT PULLING"
                            } else {
                                ""
                            }
                        )
                    },
                ),
            }
        })
        .collect();
    let alerts = node
        .store
        .alerts()?
        .into_iter()
        .filter(|a| a.raised_at.is_some() && a.resolved_at.is_none())
        .map(|a| AlertLine {
            kind: a.kind,
            subject: a.subject,
            detail: a.detail,
            since: shanghai_text(&a.since),
        })
        .collect();
    let daily = views::daily_records(&node.store, 30)?;
    let totals = views::exchange_totals(&node.store)?;
    render(&Overview {
        frame,
        title: "总览 overview",
        health: health.as_str(),
        why: if why.is_empty() {
            "交换正常 exchange working".into()
        } else {
            why.join("; ")
        },
        window: s.window.clone(),
        window_open: s.window_open,
        peers,
        alerts,
        quarantine: s.quarantine.len(),
        undecided: s.undecided.len(),
        per_day: charts::records_per_day(&daily, 30),
        latency: charts::latency(&totals.ack_latency_secs),
    })
}

struct BatchLine {
    direction: &'static str,
    id: String,
    link: String,
    peer: String,
    seq: String,
    at: String,
    status: String,
    counts: String,
}

#[derive(Template)]
#[template(path = "batches.html")]
struct Batches<'a> {
    frame: &'a Frame,
    title: &'a str,
    q: &'a str,
    rows: Vec<BatchLine>,
}

fn batches(node: &Node, frame: &Frame, q: &str) -> Result<String> {
    let rows = views::batches(&node.store, q, 500)?
        .into_iter()
        .map(|b| BatchLine {
            direction: if b.direction == "out" {
                "发出 out"
            } else {
                "收到 in"
            },
            link: format!("/batch?id={}", encode(&b.batch_id)),
            id: b.batch_id,
            peer: b.peer,
            seq: b.seq.map_or_else(|| "-".into(), |s| s.to_string()),
            at: shanghai_text(&b.at),
            status: b.status,
            counts: match (b.accepted, b.rejected) {
                (Some(a), Some(r)) => format!("{a} / {r}"),
                _ => "-".into(),
            },
        })
        .collect();
    render(&Batches {
        frame,
        title: "批次 batches",
        q,
        rows,
    })
}

#[derive(Template)]
#[template(path = "batch.html")]
struct Batch<'a> {
    frame: &'a Frame,
    title: &'a str,
    id: &'a str,
    sent: bool,
    timeline: Vec<(&'static str, String, String)>,
    ack: Option<(String, String)>,
    rejections: Vec<(u64, String, String, String)>,
    records: Vec<(String, String)>,
}

fn batch(node: &Node, frame: &Frame, id: &str) -> Result<Option<String>> {
    let Some(d) = views::batch_detail(&node.store, id)? else {
        return Ok(None);
    };
    let step = |s: &str| -> &'static str {
        match s {
            "dropped" => "投放 dropped",
            "sealed" => "封装 sealed",
            "shipped" => "发送 shipped",
            "resent" => "重发 resent",
            "acknowledged" => "确认 acknowledged",
            "received" => "收到 received",
            _ => "核验·校验·入库 verified, validated, applied",
        }
    };
    let sent = d
        .timeline
        .first()
        .is_some_and(|t| t.0 == "sealed" || t.0 == "dropped");
    render(&Batch {
        frame,
        title: "批次 batch",
        id,
        sent,
        timeline: d
            .timeline
            .into_iter()
            .map(|(s, t, what)| (step(s), shanghai_text(&t), what))
            .collect(),
        ack: d.ack,
        rejections: d.rejections,
        records: d.records,
    })
    .map(Some)
}

struct QuarantineLine {
    id: i64,
    at: String,
    from: String,
    kind: &'static str,
    name: String,
    code: String,
    detail: String,
    place: String,
    closed: String,
}

#[derive(Template)]
#[template(path = "quarantine.html")]
struct Quarantine<'a> {
    frame: &'a Frame,
    title: &'a str,
    open: Vec<QuarantineLine>,
    closed: Vec<QuarantineLine>,
}

fn quarantine(node: &Node, frame: &Frame) -> Result<String> {
    let field = |s: &str| crate::context::text::field(s).into_owned();
    let (mut open, mut closed) = (Vec::new(), Vec::new());
    for q in node.store.quarantine_all()?.into_iter().rev() {
        let line = QuarantineLine {
            id: q.id,
            at: shanghai_text(&q.at),
            from: q.peer.clone().unwrap_or_else(|| "本节点 outbound".into()),
            kind: q.kind.as_str(),
            name: field(&q.name),
            code: q.code.clone(),
            detail: field(&q.detail),
            place: q.place.clone(),
            closed: format!(
                "{} {} {}: {}",
                q.state.as_str(),
                opt_time(q.closed_at.as_deref()),
                field(q.closed_by.as_deref().unwrap_or("-")),
                field(q.note.as_deref().unwrap_or("-"))
            ),
        };
        if q.state == crate::store::QuarantineState::Open {
            open.push(line);
        } else if closed.len() < 100 {
            closed.push(line);
        }
    }
    render(&Quarantine {
        frame,
        title: "隔离区 quarantine",
        open,
        closed,
    })
}

#[derive(Template)]
#[template(path = "acceptance.html")]
struct Acceptance<'a> {
    frame: &'a Frame,
    title: &'a str,
    agencies: Vec<String>,
    categories: Vec<String>,
    agency: String,
    category: String,
    district: String,
    from: String,
    to: String,
    total: usize,
    rows: Vec<views::Awaiting>,
}

/// 业务受理 (R11), filtered by agency, district (in the address), category and
/// planned start.
fn acceptance(node: &Node, frame: &Frame, req: &Req) -> Result<String> {
    let all = views::acceptance(&node.store)?;
    let p = |n: &str| req.param(n).unwrap_or_default().trim().to_string();
    let (agency, category, district, from, to) = (
        p("agency"),
        p("category"),
        p("district"),
        p("from"),
        p("to"),
    );
    let mut agencies: Vec<String> = all.iter().map(|a| a.agency.clone()).collect();
    let mut categories: Vec<String> = all.iter().map(|a| a.category.clone()).collect();
    for v in [&mut agencies, &mut categories] {
        v.sort();
        v.dedup();
    }
    let total = all.len();
    let rows = all
        .into_iter()
        .filter(|a| agency.is_empty() || a.agency == agency)
        .filter(|a| category.is_empty() || a.category == category)
        .filter(|a| district.is_empty() || a.address.contains(district.as_str()))
        .filter(|a| from.is_empty() || a.planned_start.as_str() >= from.as_str())
        .filter(|a| to.is_empty() || a.planned_start.as_str() <= to.as_str())
        .collect();
    render(&Acceptance {
        frame,
        title: "业务受理 acceptance",
        agencies,
        categories,
        agency,
        category,
        district,
        from,
        to,
        total,
        rows,
    })
}

#[derive(Template)]
#[template(path = "equipment.html")]
struct Equipment<'a> {
    frame: &'a Frame,
    title: &'a str,
    q: &'a str,
    code: String,
    view: Option<String>,
    found: Vec<(String, String, String)>,
    searched: bool,
}

/// 查看设备信息: by registration code (old codes followed), else by use
/// certificate, factory serial or user unit.
fn equipment(node: &Node, frame: &Frame, q: &Option<String>) -> Result<String> {
    let q = q.as_deref().unwrap_or("").trim();
    let code = crate::domain::ids::normalize_code(q);
    let view = if q.is_empty() {
        None
    } else {
        views::equipment_show(&node.store, &code)?
    };
    let found = if q.is_empty() || view.is_some() {
        Vec::new()
    } else {
        views::equipment_search(&node.store, q, 200)?
            .into_iter()
            .map(|(c, unit)| (format!("/equipment?q={}", encode(&c)), c, unit))
            .collect()
    };
    render(&Equipment {
        frame,
        title: "查看设备信息 equipment",
        q,
        code,
        view,
        found,
        searched: !q.is_empty(),
    })
}

#[derive(Template)]
#[template(path = "discrepancies.html")]
struct Discrepancies<'a> {
    frame: &'a Frame,
    title: &'a str,
    lines: Vec<String>,
    undecided: Vec<views::Undecided>,
}

fn discrepancies(node: &Node, frame: &Frame) -> Result<String> {
    render(&Discrepancies {
        frame,
        title: "差异 discrepancies",
        lines: views::discrepancies(&node.store)?,
        undecided: views::undecided(&node.store, None)?,
    })
}

#[derive(Template)]
#[template(path = "audit.html")]
struct Audit<'a> {
    frame: &'a Frame,
    title: &'a str,
    rows: Vec<crate::store::AuditEntry>,
}

fn audit(node: &Node, frame: &Frame) -> Result<String> {
    let rows = node
        .store
        .audit_trail(1000)?
        .into_iter()
        .map(|mut e| {
            e.at = shanghai_text(&e.at);
            e
        })
        .collect();
    render(&Audit {
        frame,
        title: "审计 audit",
        rows,
    })
}

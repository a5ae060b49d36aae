//! The node's HTTP endpoint (`sedx run --http ADDR`, 127.0.0.1 by default): the
//! overview page (总览) and `/metrics` for Prometheus, on a thread of its own
//! with its own view of the node (a second, read-only use of the store).

use crate::context::error::{Error, Result};
use crate::context::node::Node;
use std::path::PathBuf;

/// Serve `addr` for the node in `dir` until the process ends; returns once
/// the socket is bound (a bind failure is returned, not logged away).
pub fn start(dir: PathBuf, addr: &str) -> Result<std::net::SocketAddr> {
    let server =
        tiny_http::Server::http(addr).map_err(|e| Error::Config(format!("--http {addr}: {e}")))?;
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| Error::Config(format!("--http {addr}: not an IP address")))?;
    std::thread::Builder::new()
        .name("sedx-http".into())
        .spawn(move || serve(server, dir))
        .map_err(|e| Error::Other(format!("http thread: {e}")))?;
    Ok(bound)
}

fn serve(server: tiny_http::Server, dir: PathBuf) {
    let mut node = None;
    for request in server.incoming_requests() {
        if node.is_none() {
            node = Node::open(&dir)
                .map_err(|e| tracing::error!("console: {e}"))
                .ok();
        }
        let url = request.url().to_string();
        let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
        let reply = match (&node, path) {
            (None, _) => text(503, "node not available; see the log".into(), "text/plain"),
            (Some(n), "/metrics") => match crate::tools::metrics::render(n) {
                Ok(body) => text(
                    200,
                    body,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
                Err(e) => text(500, e.to_string(), "text/plain"),
            },
            (Some(n), "/") => match crate::tools::status::gather(n) {
                Ok(s) => text(200, overview(&s), "text/html; charset=utf-8"),
                Err(e) => text(500, e.to_string(), "text/plain"),
            },
            (Some(n), "/acceptance") => match crate::store::views::acceptance(&n.store) {
                Ok(queue) => text(200, acceptance_page(&queue), "text/html; charset=utf-8"),
                Err(e) => text(500, e.to_string(), "text/plain"),
            },
            (Some(n), "/equipment") => {
                let code = param(query, "code").unwrap_or_default();
                let code = crate::domain::ids::normalize_code(&code);
                match crate::store::views::equipment_show(&n.store, &code) {
                    Ok(view) => text(
                        200,
                        equipment_page(&code, view.as_deref()),
                        "text/html; charset=utf-8",
                    ),
                    Err(e) => text(500, e.to_string(), "text/plain"),
                }
            }
            _ => text(
                404,
                "未找到 / not found".into(),
                "text/plain; charset=utf-8",
            ),
        };
        let _ = request.respond(reply);
    }
}

fn text(code: u16, body: String, kind: &str) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], kind.as_bytes())
        .expect("a static header is valid");
    tiny_http::Response::from_string(body)
        .with_status_code(code)
        .with_header(header)
}

fn esc(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// 总览: the node at a glance, Chinese first.
fn overview(s: &crate::tools::status::Status) -> String {
    let (health, why) = s.health();
    let mut rows = String::new();
    for p in &s.peers {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.id),
            p.queued,
            p.awaiting_ack.len(),
            p.last_sent.as_deref().map_or("-".into(), crate::context::clock::shanghai_text),
            p.last_received.as_deref().map_or("-".into(), crate::context::clock::shanghai_text),
            if p.transport.failures > 0 { format!("失败 failing ×{}", p.transport.failures) } else { "正常 ok".into() },
            if p.held.is_empty() { "-".into() } else { format!("等待 waiting seq {}", p.expected_seq) },
        ));
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>sedx 总览 {node}</title>\
<style>body{{font-family:sans-serif;margin:1.5em;max-width:1300px}}td,th{{border:1px solid #999;padding:3px 8px}}table{{border-collapse:collapse}}</style></head>\
<body><h1>总览 overview: {node} ({role})</h1>\
<p id=\"health\">{health}: {why}</p>\
<p>交换时段 exchange window {window}: {open}</p>\
<table id=\"peers\"><tr><th>对端 peer</th><th>待发 queued</th><th>待确认 awaiting ack</th><th>最近发送 last sent</th><th>最近接收 last received</th><th>传输 transport</th><th>缺号 gap</th></tr>{rows}</table>\
<p>隔离区 quarantine: <span id=\"quarantine\">{q}</span> · 待决定 awaiting decision: {d}</p></body></html>\n",
        node = esc(&s.node),
        role = s.role,
        health = health.as_str(),
        why = esc(&if why.is_empty() { "exchange working 交换正常".to_string() } else { why.join("; ") }),
        window = esc(&s.window),
        open = if s.window_open { "开 open" } else { "关 closed" },
        q = s.quarantine.len(),
        d = s.undecided.len(),
    )
}

/// A query parameter, percent-decoded (UTF-8; anything else is dropped).
fn param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        if k != name {
            return None;
        }
        let mut bytes = Vec::new();
        let raw = v.as_bytes();
        let mut i = 0;
        while i < raw.len() {
            match raw[i] {
                b'+' => bytes.push(b' '),
                b'%' if i + 2 < raw.len() => {
                    let hex = std::str::from_utf8(&raw[i + 1..i + 3]).ok()?;
                    bytes.push(u8::from_str_radix(hex, 16).ok()?);
                    i += 2;
                }
                b => bytes.push(b),
            }
            i += 1;
        }
        String::from_utf8(bytes).ok()
    })
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>sedx {title}</title>\
<style>body{{font-family:sans-serif;margin:1.5em;max-width:1300px}}td,th{{border:1px solid #999;padding:3px 8px}}table{{border-collapse:collapse}}pre{{font-size:14px}}</style></head>\
<body><p><a href=\"/\">总览 overview</a> · <a href=\"/acceptance\">业务受理 acceptance</a> · <a href=\"/equipment\">查看设备信息 equipment</a></p>{body}</body></html>\n"
    )
}

/// 业务受理 (R11): construction notices awaiting their installation inspection.
fn acceptance_page(queue: &[crate::store::views::Awaiting]) -> String {
    let mut rows = String::new();
    for a in queue {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.notice),
            esc(&a.category),
            esc(&a.user_unit),
            esc(&a.address),
            esc(&a.planned_start),
            esc(&a.agency)
        ));
    }
    page(
        "业务受理",
        &format!(
            "<h1>业务受理 acceptance queue</h1><p>{} 项待检验 notice(s) awaiting installation inspection</p>\
<table id=\"acceptance\"><tr><th>告知编号 notice</th><th>类别 category</th><th>使用单位 user unit</th><th>地址 address</th><th>计划开工 planned</th><th>检验机构 agency</th></tr>{rows}</table>",
            queue.len()
        ),
    )
}

/// 查看设备信息: an equipment's latest data and history, old codes followed.
fn equipment_page(code: &str, view: Option<&str>) -> String {
    let form = format!(
        "<form method=\"get\" action=\"/equipment\"><label>设备注册代码 registration code <input name=\"code\" value=\"{}\"></label> <button>查询 show</button></form>",
        esc(code)
    );
    let result = match (code.is_empty(), view) {
        (true, _) => String::new(),
        (false, Some(v)) => format!("<pre id=\"equipment\">{}</pre>", esc(v)),
        (false, None) => format!(
            "<p id=\"equipment\">未找到设备 no equipment {} on record</p>",
            esc(code)
        ),
    };
    page(
        "查看设备信息",
        &format!("<h1>查看设备信息 equipment</h1>{form}{result}"),
    )
}

//! The console (`sedx run --http ADDR`, or `[http]` in sedx.toml; 127.0.0.1 by
//! default): pages for operators, Chinese first (R11's 业务受理 and 查看设备信息
//! among them), their actions behind a login, and `/metrics` for Prometheus.
//! It runs on a thread of its own with its own view of the node (a second use
//! of the store), so a slow page never holds up the exchange.
//!
//! Every page needs a login; a viewer reads, an operator also acts. Every form
//! carries the session's CSRF token; every action is written to the audit trail
//! before its answer goes out.

mod auth;
mod charts;
mod pages;

pub use auth::hash_password;

use crate::context::config::{Config, UserConfig, UserRole};
use crate::context::error::{Error, Result};
use crate::context::node::Node;
use auth::{LoginRefused, Sessions};
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

/// Where and how to serve.
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: String,
    /// TLS certificate chain and key (PEM); plain HTTP when absent.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub session_minutes: u64,
}

impl Options {
    /// From `--http ADDR` (wins) or `[http]` (or the older `http` in [node]).
    pub fn of(cfg: &Config, flag: Option<String>) -> Option<Options> {
        let section = cfg.http.as_ref();
        let listen = flag
            .or_else(|| section.map(|h| h.listen.clone()))
            .or_else(|| cfg.node.http.clone())?;
        // A bare port means loopback: the console is local unless asked otherwise.
        let listen = if listen.parse::<u16>().is_ok() {
            format!("127.0.0.1:{listen}")
        } else {
            listen
        };
        Some(Options {
            listen,
            tls: section.and_then(|h| Some((h.cert.clone()?, h.key.clone()?))),
            session_minutes: section.map_or(480, |h| h.session_minutes),
        })
    }
}

/// What the console asks of the running service: a pass now, even outside
/// the exchange window ("send now").
pub type SendNow = Box<dyn Fn() + Send>;

/// The largest form body read (a form here is a few fields).
const MAX_FORM: u64 = 16 * 1024;

/// Serve until the process ends; returns once the socket is bound (a bind or
/// certificate failure is returned, not logged away).
pub fn start(dir: PathBuf, opts: &Options, send_now: SendNow) -> Result<std::net::SocketAddr> {
    let bad = |e: &dyn std::fmt::Display| Error::Config(format!("[http] {}: {e}", opts.listen));
    let server = match &opts.tls {
        None => tiny_http::Server::http(&opts.listen).map_err(|e| bad(&e))?,
        Some((cert, key)) => {
            let read = |p: &PathBuf| {
                std::fs::read(dir.join(p)).map_err(|e| bad(&format!("{}: {e}", p.display())))
            };
            tiny_http::Server::https(
                &opts.listen,
                tiny_http::SslConfig {
                    certificate: read(cert)?,
                    private_key: read(key)?,
                },
            )
            .map_err(|e| bad(&e))?
        }
    };
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| bad(&"not an IP address"))?;
    let mut console = Console {
        sessions: Sessions::new(Duration::from_secs(opts.session_minutes.max(1) * 60))?,
        users: Vec::new(),
        node: None,
        opened: None,
        dir,
        secure: opts.tls.is_some(),
        send_now,
    };
    std::thread::Builder::new()
        .name("sedx-http".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                console.answer(request);
            }
        })
        .map_err(|e| Error::Other(format!("http thread: {e}")))?;
    Ok(bound)
}

struct Console {
    dir: PathBuf,
    node: Option<Node>,
    /// sedx.toml's modification time when `node` was opened: a changed file
    /// (peers, window) opens the node afresh.
    opened: Option<std::time::SystemTime>,
    sessions: Sessions,
    /// The users of sedx.toml as last read (kept while the file does not parse).
    users: Vec<UserConfig>,
    secure: bool,
    send_now: SendNow,
}

/// A request as the pages see it.
pub(crate) struct Req {
    pub post: bool,
    pub path: String,
    pub query: String,
    pub form: String,
    cookies: String,
}

impl Req {
    /// A query (GET) or form (POST) field, percent-decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        param(&self.query, name).or_else(|| param(&self.form, name))
    }
    fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies
            .split(';')
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

/// An answer before it becomes a tiny_http response.
pub(crate) enum Reply {
    Page(u16, String),
    Text(u16, String),
    Metrics(String),
    /// The login page with the cookie of its form's token.
    Login(u16, String, String),
    /// 303 to a path of this console, with cookies to set.
    Redirect(String, Vec<String>),
}

const SESSION_COOKIE: &str = "sedx_session";
/// The token of the login form, before there is a session (double submit).
const LOGIN_COOKIE: &str = "sedx_login";

impl Console {
    fn answer(&mut self, mut request: tiny_http::Request) {
        let url = request.url().to_string();
        let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
        let post = *request.method() == tiny_http::Method::Post;
        let mut form = String::new();
        if post {
            let mut body = request.as_reader().take(MAX_FORM);
            if body.read_to_string(&mut form).is_err() {
                form.clear();
            }
        }
        let cookies = request
            .headers()
            .iter()
            .filter(|h| h.field.equiv("Cookie"))
            .map(|h| h.value.as_str().to_string())
            .collect::<Vec<_>>()
            .join("; ");
        let req = Req {
            post,
            path: path.to_string(),
            query: query.to_string(),
            form,
            cookies,
        };
        let reply = self.route(&req).unwrap_or_else(|e| {
            tracing::error!("console {}: {e}", req.path);
            self.node = None; // open the node afresh next time
            Reply::Text(
                500,
                format!("内部错误 internal error: {e}; see the node's log"),
            )
        });
        let _ = request.respond(self.response(reply));
    }

    fn response(&self, reply: Reply) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
        let header = |k: &str, v: &str| {
            tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("header text is ASCII")
        };
        let (code, body, kind, cookies, location) = match reply {
            Reply::Page(code, body) => (code, body, "text/html; charset=utf-8", vec![], None),
            Reply::Login(code, body, cookie) => {
                (code, body, "text/html; charset=utf-8", vec![cookie], None)
            }
            Reply::Text(code, body) => (code, body, "text/plain; charset=utf-8", vec![], None),
            Reply::Metrics(body) => (
                200,
                body,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                vec![],
                None,
            ),
            Reply::Redirect(to, cookies) => (303, String::new(), "text/plain", cookies, Some(to)),
        };
        let mut r = tiny_http::Response::from_string(body)
            .with_status_code(code)
            .with_header(header("Content-Type", kind))
            .with_header(header("Cache-Control", "no-store"))
            .with_header(header("X-Content-Type-Options", "nosniff"))
            .with_header(header("Referrer-Policy", "no-referrer"))
            .with_header(header(
                "Content-Security-Policy",
                "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'",
            ));
        if let Some(to) = location {
            r.add_header(header("Location", &to));
        }
        let secure = if self.secure { "; Secure" } else { "" };
        for c in cookies {
            r.add_header(header(
                "Set-Cookie",
                &format!("{c}; Path=/; HttpOnly; SameSite=Strict{secure}"),
            ));
        }
        r
    }

    fn node(&mut self) -> Result<&Node> {
        let now = Config::modified(&self.dir);
        if self.node.is_none() || now != self.opened {
            self.node = Some(Node::open(&self.dir)?);
            self.opened = now;
        }
        Ok(self.node.as_ref().expect("opened above"))
    }

    fn route(&mut self, req: &Req) -> Result<Reply> {
        if !req.post && req.path == "/metrics" {
            return Ok(Reply::Metrics(crate::tools::metrics::render(self.node()?)?));
        }
        // Users as sedx.toml has them now: a user removed is logged out at once.
        match Config::load(&self.dir) {
            Ok(cfg) => self.users = cfg.users,
            Err(e) => tracing::warn!("console: sedx.toml not read again, users as before: {e}"),
        }
        if req.path == "/favicon.ico" {
            return Ok(Reply::Text(404, String::new()));
        }
        if req.path == "/login" {
            return self.login(req);
        }
        let sid = req.cookie(SESSION_COOKIE).unwrap_or_default().to_string();
        let Some(session) = self.sessions.get(&sid, &self.users) else {
            if req.post {
                return Ok(Reply::Text(403, "请先登录 log in first".into()));
            }
            let next = if req.query.is_empty() {
                req.path.clone()
            } else {
                format!("{}?{}", req.path, req.query)
            };
            return Ok(Reply::Redirect(
                format!("/login?next={}", encode(&next)),
                vec![],
            ));
        };
        let mut frame = pages::Frame {
            user: session.user.clone(),
            role: session.role.as_str(),
            operator: session.role == UserRole::Operator,
            csrf: session.csrf.clone(),
            flash: session.flash.take(),
            node: String::new(),
            hub: false,
        };
        if req.post {
            let token = req.param("csrf").unwrap_or_default();
            if !auth::same(&token, &frame.csrf) {
                return Ok(Reply::Text(
                    403,
                    "表单已失效 the form's token is missing or stale: reload the page and try again"
                        .into(),
                ));
            }
            if req.path == "/logout" {
                self.sessions.logout(&sid);
                self.node()?.store.audit(&frame.user, "logout", "", "ok")?;
                return Ok(Reply::Redirect(
                    "/login".into(),
                    vec![format!("{SESSION_COOKIE}=; Max-Age=0")],
                ));
            }
            if !frame.operator {
                return Ok(Reply::Text(
                    403,
                    "只读用户不能操作 a viewer cannot act: ask an operator".into(),
                ));
            }
            let (back, said) = self.act(req, &frame.user)?;
            if let Some(s) = self.sessions.get(&sid, &self.users) {
                s.flash = Some(said);
            }
            return Ok(Reply::Redirect(back, vec![]));
        }
        let node = self.node()?;
        frame.node = node.id().to_string();
        frame.hub = node.cfg.node.role == crate::domain::Role::Supervision;
        pages::page(node, &frame, req)
    }

    /// GET: the form; POST: check the name and password.
    fn login(&mut self, req: &Req) -> Result<Reply> {
        let next = req
            .param("next")
            .filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
            .unwrap_or_else(|| "/".into());
        if !req.post {
            // One token per browser, so that two login tabs (or a favicon
            // request) do not make each other's form stale.
            let token = req
                .cookie(LOGIN_COOKIE)
                .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
                .map_or_else(auth::token, str::to_string);
            return Ok(Reply::Login(
                200,
                pages::login_page(&token, &next, None)?,
                format!("{LOGIN_COOKIE}={token}"),
            ));
        }
        let sent = req.param("csrf").unwrap_or_default();
        let expected = req.cookie(LOGIN_COOKIE).unwrap_or_default();
        if expected.is_empty() || !auth::same(&sent, expected) {
            return Ok(Reply::Text(
                403,
                "表单已失效 the login form's token is missing or stale: open /login again".into(),
            ));
        }
        let name = req.param("user").unwrap_or_default();
        let password = req.param("password").unwrap_or_default();
        let users = self.users.clone();
        let outcome = self.sessions.login(&users, &name, &password);
        let store = &self.node()?.store;
        match outcome {
            Ok(sid) => {
                store.audit(&name, "login", "", "ok")?;
                Ok(Reply::Redirect(
                    next,
                    vec![
                        format!("{SESSION_COOKIE}={sid}"),
                        format!("{LOGIN_COOKIE}=; Max-Age=0"),
                    ],
                ))
            }
            Err(why) => {
                let (said, outcome) = match why {
                    LoginRefused::Wrong => {
                        ("用户名或密码错误 wrong user name or password", "refused")
                    }
                    LoginRefused::Paused => (
                        "错误次数过多，请一分钟后再试 too many wrong passwords: wait a minute",
                        "paused",
                    ),
                };
                store.audit(&name, "login", "", outcome)?;
                let token = auth::token();
                Ok(Reply::Login(
                    401,
                    pages::login_page(&token, &next, Some(said))?,
                    format!("{LOGIN_COOKIE}={token}"),
                ))
            }
        }
    }

    /// An operator's action; (where to go back, what to say). Audited with its
    /// outcome whether it worked or not.
    fn act(&mut self, req: &Req, user: &str) -> Result<(String, String)> {
        let id = req.param("id").unwrap_or_default();
        let (action, back) = match req.path.as_str() {
            "/quarantine/retry" => ("quarantine retry", "/quarantine".to_string()),
            "/quarantine/dismiss" => ("quarantine dismiss", "/quarantine".to_string()),
            "/batch/resend" => ("resend", format!("/batch?id={}", encode(&id))),
            "/send-now" => ("send now", "/".to_string()),
            _ => return Ok(("/".into(), "未知操作 unknown action".into())),
        };
        let node = self.node()?;
        let done: Result<String> = match action {
            "quarantine retry" => id
                .parse::<i64>()
                .map_err(|_| Error::Other(format!("no quarantine item {id:?}")))
                .and_then(|n| crate::context::quarantine::retry(node, n, user))
                .map(|went| format!("已重试 retried item {id}: {went}; the next pass takes it")),
            "quarantine dismiss" => {
                let reason = req.param("reason").unwrap_or_default();
                if reason.trim().is_empty() {
                    Err(Error::Other(
                        "say why it is dismissed (the reason field)".into(),
                    ))
                } else {
                    id.parse::<i64>()
                        .map_err(|_| Error::Other(format!("no quarantine item {id:?}")))
                        .and_then(|n| {
                            crate::context::quarantine::dismiss(node, n, user, reason.trim())
                        })
                        .map(|()| {
                            format!("已忽略 dismissed item {id}; its files stay in quarantine/")
                        })
                }
            }
            "resend" => node.resend(&id).map(|name| {
                format!("已重发 {name} is back in outbound/ and ships on the next pass")
            }),
            _ => {
                (self.send_now)();
                Ok("已请求立即发送 a pass runs now, outside the exchange window too".into())
            }
        };
        let node = self.node()?;
        let (outcome, said) = match done {
            Ok(said) => ("ok".to_string(), said),
            Err(e) => (
                format!("failed: {e}"),
                format!("操作失败 {action} failed: {e}"),
            ),
        };
        node.store.audit(user, action, &id, &outcome)?;
        tracing::info!(user, action, target = %id, %outcome, "console action");
        Ok((back, said))
    }
}

/// Percent-encode for a query value.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query or form parameter, percent-decoded (UTF-8; anything else is dropped).
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

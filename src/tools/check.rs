//! `sedx check`: everything a node needs before it can exchange, each failure
//! with its fix: the configuration (unknown keys refused by name), keys and file
//! modes, trust, routing, and for each peer the connection, the pinned host key,
//! the login and a probe file written into (and removed from) its inbound folder.

use crate::context::config::{Config, Layout, Role, Transport};
use crate::wire::sshsig::AllowedSigners;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Warning,
    Fail,
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub level: Level,
    pub subject: String,
    pub detail: String,
    /// What to do, when the detail does not say it already.
    pub fix: Option<String>,
}

/// The console's users, certificate and address, and where alerts go.
fn console(cfg: &Config, layout: &Layout, out: &mut Vec<Finding>) {
    for (i, u) in cfg.users.iter().enumerate() {
        let subject = format!("user {}", u.name);
        if cfg.users[..i].iter().any(|o| o.name == u.name) {
            out.push(Finding::fail(
                &subject,
                "listed twice in sedx.toml",
                Some("keep one [[user]] section per name".into()),
            ));
        } else if !u.password.starts_with("$argon2") {
            out.push(Finding::fail(
                &subject,
                "its password is not an argon2 hash: it cannot log in",
                Some(format!(
                    "remove its [[user]] section and run `sedx user add {} --role {}`",
                    u.name,
                    u.role.as_str()
                )),
            ));
        } else {
            out.push(Finding::ok(
                &subject,
                format!("console {}", u.role.as_str()),
            ));
        }
    }
    let listen = cfg
        .http
        .as_ref()
        .map(|h| h.listen.clone())
        .or_else(|| cfg.node.http.clone());
    if let Some(listen) = listen {
        let tls = cfg
            .http
            .as_ref()
            .and_then(|h| h.cert.as_ref().zip(h.key.as_ref()));
        match listen.parse::<std::net::SocketAddr>() {
            Err(e) => out.push(Finding::fail(
                "console",
                format!("listen {listen:?}: {e}"),
                Some("an address and port, \"127.0.0.1:9187\"".into()),
            )),
            Ok(a) if !a.ip().is_loopback() && tls.is_none() => out.push(Finding {
                level: Level::Warning,
                subject: "console".into(),
                detail: format!("{listen} is reachable from other machines without TLS"),
                fix: Some(
                    "set cert and key in [http], or listen on 127.0.0.1 behind a TLS proxy".into(),
                ),
            }),
            Ok(_) => out.push(Finding::ok("console", format!("listens on {listen}"))),
        }
        if let Some((cert, key)) = tls {
            if let Err(e) = std::fs::metadata(layout.resolve(cert)) {
                out.push(Finding::fail(
                    "console certificate",
                    format!("{}: {e}", layout.resolve(cert).display()),
                    None,
                ));
            }
            private_file(out, "console TLS key", &layout.resolve(key), false);
        }
        if cfg.users.is_empty() {
            out.push(Finding {
                level: Level::Warning,
                subject: "console".into(),
                detail: "no users: nobody can log in".into(),
                fix: Some("`sedx user add NAME --role operator`".into()),
            });
        }
    }
    if let Some(a) = &cfg.alerts {
        if let Some(url) = &a.webhook {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                out.push(Finding::fail(
                    "alerts",
                    format!("webhook {url:?} is not an http(s) URL"),
                    None,
                ));
            }
        }
        if let Some(cmd) = a.command.as_ref().and_then(|c| c.first()) {
            let found = if cmd.contains('/') {
                Path::new(cmd).is_file()
            } else {
                std::env::var_os("PATH")
                    .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
            };
            if !found {
                out.push(Finding::fail(
                    "alerts",
                    format!("command {cmd} not found"),
                    Some("give the program's full path in [alerts] command".into()),
                ));
            }
        }
        if a.webhook.is_none() && a.command.as_ref().is_none_or(|c| c.is_empty()) {
            out.push(Finding {
                level: Level::Warning,
                subject: "alerts".into(),
                detail: "[alerts] has neither webhook nor command: alerts show on the console only"
                    .into(),
                fix: None,
            });
        }
    }
}

impl Finding {
    fn ok(subject: impl Into<String>, detail: impl Into<String>) -> Finding {
        Finding {
            level: Level::Ok,
            subject: subject.into(),
            detail: detail.into(),
            fix: None,
        }
    }
    fn fail(subject: impl Into<String>, detail: impl Into<String>, fix: Option<String>) -> Finding {
        Finding {
            level: Level::Fail,
            subject: subject.into(),
            detail: detail.into(),
            fix,
        }
    }

    pub fn line(&self) -> String {
        let tag = match self.level {
            Level::Ok => "OK  ",
            Level::Warning => "WARN",
            Level::Fail => "FAIL",
        };
        let mut s = format!("{tag} {}: {}", self.subject, self.detail);
        if let Some(fix) = &self.fix {
            s.push_str(&format!("\n     fix 解决: {fix}"));
        }
        s
    }
}

/// The worst level found: 0 all well, 1 warnings, 2 failures.
pub fn exit_code(findings: &[Finding]) -> u8 {
    findings.iter().map(|f| f.level as u8).max().unwrap_or(0)
}

fn private_file(out: &mut Vec<Finding>, what: &str, path: &Path, dir: bool) {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Err(e) => out.push(Finding::fail(
            what,
            format!("{}: {e}", path.display()),
            Some("run `sedx init` for a new node, or restore the node from its backup".into()),
        )),
        Ok(m) if m.permissions().mode() & 0o077 != 0 => out.push(Finding::fail(
            what,
            format!(
                "{} can be read by others (mode {:o})",
                path.display(),
                m.permissions().mode() & 0o7777
            ),
            Some(format!(
                "chmod {} {}",
                if dir { "700" } else { "600" },
                path.display()
            )),
        )),
        Ok(_) => out.push(Finding::ok(what, format!("{} private", path.display()))),
    }
}

/// Check the node in `dir`; with `connect`, reach every peer too.
pub fn run(dir: &Path, connect: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    let cfg = match Config::load(dir) {
        Ok(c) => c,
        Err(e) => {
            out.push(Finding::fail("sedx.toml", e.to_string(), None));
            return out;
        }
    };
    out.push(Finding::ok(
        "sedx.toml",
        format!(
            "node {} ({}), {} peer(s)",
            cfg.node.id,
            cfg.node.role.as_str(),
            cfg.peers.len()
        ),
    ));
    let layout = Layout::new(dir);
    let keys = layout.resolve(&cfg.node.signing_key);
    if let Some(parent) = keys.parent() {
        private_file(&mut out, "keys folder", parent, true);
    }
    let mut files = vec![
        ("signing key", &cfg.node.signing_key),
        ("login key", &cfg.node.login_key),
    ];
    match cfg.postgres_url() {
        None => files.push(("store", &cfg.node.store)),
        Some(url) => match crate::store::Store::open_postgres(url) {
            Ok(_) => out.push(Finding::ok(
                "store",
                format!("PostgreSQL at {}", crate::context::node::redact(url)),
            )),
            Err(e) => out.push(Finding::fail(
                "store",
                format!("PostgreSQL at {}: {e}", crate::context::node::redact(url)),
                Some("check that the server runs and the URL's user, password and database".into()),
            )),
        },
    }
    for (what, p) in files {
        private_file(&mut out, what, &layout.resolve(p), false);
    }
    for (what, p) in [
        ("signing key", &cfg.node.signing_key),
        ("login key", &cfg.node.login_key),
    ] {
        if let Err(e) = crate::wire::sshsig::load_private_key(&layout.resolve(p)) {
            out.push(Finding::fail(
                what,
                e.to_string(),
                Some(
                    "make the node again with `sedx init`, or restore its keys from the backup"
                        .into(),
                ),
            ));
        }
    }
    let signers = match AllowedSigners::load(&layout.resolve(&cfg.node.allowed_signers)) {
        Ok(s) => Some(s),
        Err(e) => {
            out.push(Finding::fail(
                "allowed_signers",
                e.to_string(),
                Some(
                    "each line: `PEER_ID namespaces=\"sedx-batch,sedx-ack\" ssh-ed25519 AAAA...`"
                        .into(),
                ),
            ));
            None
        }
    };
    let sm2_key_path = layout.resolve(&cfg.node.sm2_signing_key);
    if cfg.uses_sm2() || sm2_key_path.exists() {
        if sm2_key_path.exists() {
            private_file(&mut out, "SM2 signing key", &sm2_key_path, false);
        }
        if let Err(e) = crate::wire::sm2sig::Sm2Key::load(&sm2_key_path) {
            out.push(Finding::fail(
                "SM2 signing key",
                e.to_string(),
                Some(format!(
                    "make one: `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:SM2 -out {p} && chmod 600 {p}`, and give peers the new card (`sedx card`)",
                    p = sm2_key_path.display()
                )),
            ));
        }
    }
    let sm2_trust = match crate::wire::sm2sig::Sm2Trust::load(&layout.resolve(&cfg.node.sm2_trust))
    {
        Ok(t) => Some(t),
        Err(e) => {
            out.push(Finding::fail(
                "sm2_trust",
                e.to_string(),
                Some("each line: `PEER_ID BASE64` (the DER of its SM2 public key, as its card's sm2_key)".into()),
            ));
            None
        }
    };
    console(&cfg, &layout, &mut out);
    let several = cfg.peers.len() > 1 && cfg.node.role == Role::Supervision;
    for p in &cfg.peers {
        let subject = format!("peer {}", p.id);
        if cfg.suite_of(&p.id) == crate::wire::suite::Suite::Sm2 {
            if let Some(t) = &sm2_trust {
                if t.keys_of(&p.id).is_empty() {
                    out.push(Finding::fail(
                        &subject,
                        format!("its channel uses SM2 but sm2_trust has no key of {}: every set it sends is refused", p.id),
                        Some(format!(
                            "`sedx peer add` its card, or add its line `{} BASE64` (its card's sm2_key) to {}",
                            p.id,
                            layout.resolve(&cfg.node.sm2_trust).display()
                        )),
                    ));
                } else {
                    out.push(Finding::ok(
                        &subject,
                        "its channel uses SM2 / SM3 and its SM2 key is trusted (sm2_trust)",
                    ));
                }
            }
        } else if let Some(s) = &signers {
            if s.entries
                .iter()
                .any(|e| e.principals.iter().any(|x| x == &p.id))
            {
                out.push(Finding::ok(
                    &subject,
                    "its signing key is trusted (allowed_signers)",
                ));
            } else {
                out.push(Finding::fail(
                    &subject,
                    format!("no key of {} in allowed_signers: every set it sends is refused", p.id),
                    Some(format!(
                        "`sedx peer add` its card, or add its line `{} namespaces=\"sedx-batch,sedx-ack\" ssh-ed25519 ...` to {}",
                        p.id,
                        layout.resolve(&cfg.node.allowed_signers).display()
                    )),
                ));
            }
        }
        if several && p.agency.is_none() {
            out.push(Finding {
                level: Level::Warning,
                subject: subject.clone(),
                detail: "no agency: records are routed to it only by a batch's to=\"...\"".into(),
                fix: Some(format!(
                    "add agency = \"...\" (the inspection agency it speaks for) to [[peer]] {}",
                    p.id
                )),
            });
        }
        if p.transport == Transport::Local {
            for (what, d) in [
                ("inbound", layout.inbound_of(p)),
                ("outbox", layout.outbox_of(p)),
            ] {
                if d.is_dir() {
                    out.push(Finding::ok(
                        &subject,
                        format!("its {what} folder {} is there", d.display()),
                    ));
                } else {
                    out.push(Finding::fail(
                        &subject,
                        format!("its {what} folder {} is missing", d.display()),
                        Some("run scripts/peer-account.sh for it (as root), or start sedx once to make it".into()),
                    ));
                }
            }
            continue;
        }
        if !connect {
            continue;
        }
        let key = layout.resolve(p.key.as_ref().unwrap_or(&cfg.node.login_key));
        match crate::transport::session::PeerSession::open(p, &key) {
            Err(e) => out.push(Finding::fail(&subject, e.to_string(), None)),
            Ok(link) => {
                out.push(Finding::ok(
                    &subject,
                    format!(
                        "{}:{} reached, host key matches the pin, logged in as {}",
                        p.host, p.port, p.user
                    ),
                ));
                match link.probe() {
                    Ok(()) => out.push(Finding::ok(
                        &subject,
                        format!(
                            "{} is writable (probe file written and removed)",
                            p.remote_inbound
                        ),
                    )),
                    Err(e) => out.push(Finding::fail(&subject, e.to_string(), None)),
                }
                if let Some(outbox) = p
                    .remote_outbox
                    .as_deref()
                    .filter(|_| p.transport == Transport::Pull)
                {
                    match link.list_sets(outbox) {
                        Ok(sets) => out.push(Finding::ok(
                            &subject,
                            format!("{outbox} is readable ({} set(s) waiting)", sets.len()),
                        )),
                        Err(e) => out.push(Finding::fail(
                            &subject,
                            e.to_string(),
                            Some("remote_outbox is the hub's folder for this node (outbox/<this node's id>/, or /outbox in a chrooted account)".into()),
                        )),
                    }
                }
            }
        }
    }
    out
}

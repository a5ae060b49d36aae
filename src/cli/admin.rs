//! Commands that run a node: backup, restore, check, card, peer, peer-set,
//! quarantine, demo.

use super::args::*;
use super::*;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::ExitCode;

pub fn backup(a: BackupArgs, node: &Path) -> Result<ExitCode> {
    let BackupArgs { dest } = a;
    let files = sedx::tools::backup::backup(node, &dest)?;
    println!(
        "backed up {} into {} ({files} files)",
        node.display(),
        dest.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn restore(a: RestoreArgs) -> Result<ExitCode> {
    let RestoreArgs { backup, to } = a;
    sedx::tools::backup::restore(&backup, &to)?;
    println!("restored {} into {}", backup.display(), to.display());
    Ok(ExitCode::SUCCESS)
}

pub fn check_cmd(a: CheckArgs, node: &Path) -> Result<ExitCode> {
    let CheckArgs { offline } = a;
    let findings = sedx::tools::check::run(node, !offline);
    for f in &findings {
        println!("{}", f.line());
    }
    let code = sedx::tools::check::exit_code(&findings);
    println!(
        "{}",
        match code {
            0 => "检查通过 all checks passed",
            1 => "检查有警告 warnings (see WARN above)",
            _ => "检查未通过 failures (see FAIL and the fixes above)",
        }
    );
    Ok(ExitCode::from(code))
}

pub fn card(a: CardArgs, node: &Path) -> Result<ExitCode> {
    let CardArgs {
        host,
        port,
        user,
        inbound,
        outbox,
        host_key,
        agency,
        out,
    } = a;
    let host_key = host_key.unwrap_or_else(|| {
        let system = "/etc/ssh/ssh_host_ed25519_key.pub";
        if Path::new(system).exists() {
            system.to_string()
        } else {
            String::new()
        }
    });
    let reach = sedx::tools::card::Reach {
        host,
        port,
        user,
        inbound,
        outbox,
        host_key,
        agency,
    };
    let card = sedx::tools::card::make(node, &reach)?;
    let text = sedx::tools::card::to_text(&card)?;
    match out {
        Some(path) => {
            sedx::context::files::write_atomic(&path, text.as_bytes())?;
            println!("card of {} written to {}", card.id, path.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn peer_cmd(a: PeerArgs, node: &Path) -> Result<ExitCode> {
    let PeerArgs {
        cmd:
            PeerCmd::Add {
                card,
                transport,
                agency,
                suite,
            },
    } = a;
    let transport = match transport.as_str() {
        "push" => sedx::context::config::Transport::Push,
        "pull" => sedx::context::config::Transport::Pull,
        "local" => sedx::context::config::Transport::Local,
        other => bail!("--transport {other:?}: use push, pull or local"),
    };
    let c = sedx::tools::card::read(&card)?;
    let added = sedx::tools::card::add(node, &c, transport, agency, suite)?;
    let suite = added.peer.suite.unwrap_or_default();
    println!(
        "peer {} ({}) added to sedx.toml, allowed_signers and sm2_trust; the channel uses {} (suite = \"{}\"): its operator must set the same for this node",
        c.id,
        c.role.as_str(),
        suite.describe(),
        suite.as_str()
    );
    if transport != sedx::context::config::Transport::Pull {
        println!(
            "Its SFTP login to this node's server needs an account that accepts its key. As root:"
        );
        println!(
            "  scripts/peer-account.sh --node {} --peer {} --key '{}'{}",
            node.display(),
            c.id,
            added.login_key,
            if transport == sedx::context::config::Transport::Local {
                " --pull"
            } else {
                ""
            }
        );
        println!("  (or add that key to authorized_keys of the account it logs in as)");
    }
    println!(
        "Then: `sedx --node {} check`, and reload a running service (systemctl reload sedx@NODE).",
        node.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn peer_set(a: PeerSetArgs, node: &Path) -> Result<ExitCode> {
    let PeerSetArgs {
        peer,
        inbound,
        outbox,
        user,
        remote_inbound,
    } = a;
    let mut cfg = sedx::context::config::Config::load(node)?;
    let p = cfg
        .peers
        .iter_mut()
        .find(|p| p.id == peer)
        .with_context(|| format!("no peer {peer} in sedx.toml; add its [[peer]] section first"))?;
    if inbound.is_some() {
        p.local_inbound = inbound;
    }
    if outbox.is_some() {
        p.local_outbox = outbox;
    }
    if let Some(user) = user {
        p.user = user;
    }
    if let Some(dir) = remote_inbound {
        p.remote_inbound = dir;
    }
    cfg.save(node)?;
    println!("peer {peer}: sedx.toml changed (restart the service to use it)");
    Ok(ExitCode::SUCCESS)
}

pub fn quarantine(a: QuarantineArgs, node: &Path) -> Result<ExitCode> {
    let QuarantineArgs { cmd } = a;
    let node = open(node)?;
    let who = |by: Option<String>| by.unwrap_or_else(sedx::context::quarantine::operator);
    match cmd {
        QuarantineCmd::List { all } => {
            let items = if all {
                node.store.quarantine_all()?
            } else {
                node.store.quarantined()?
            };
            println!(
                "隔离区 quarantine: {} {} item(s)",
                items.len(),
                if all { "" } else { "open" }
            );
            for q in &items {
                println!("{}", sedx::context::quarantine::line(q));
            }
        }
        QuarantineCmd::Show { id } => {
            print!("{}", sedx::context::quarantine::show(&node, id)?)
        }
        QuarantineCmd::Retry { id, by } => {
            let went = sedx::context::quarantine::retry(&node, id, &who(by))?;
            println!("item {id}: {went}; the next pass takes it");
        }
        QuarantineCmd::Dismiss { id, reason, by } => {
            sedx::context::quarantine::dismiss(&node, id, &who(by), &reason)?;
            println!("item {id} dismissed; its files stay in quarantine/");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn user(a: UserArgs, node: &Path) -> Result<ExitCode> {
    let file = node.join("sedx.toml");
    let cfg = sedx::context::config::Config::load(node)?;
    match a.cmd {
        UserCmd::List => {
            println!("控制台用户 console users: {}", cfg.users.len());
            for u in &cfg.users {
                println!("{} {}", u.name, u.role.as_str());
            }
        }
        UserCmd::Add { name, role } => {
            let ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_alphanumeric() || "-_.".contains(c));
            if !ok {
                return Err(anyhow::anyhow!(
                    "user name {name:?}: 1-64 letters, digits, - _ or ."
                ));
            }
            if cfg.users.iter().any(|u| u.name == name) {
                return Err(anyhow::anyhow!(
                    "user {name} exists already; remove its [[user]] section from sedx.toml to set a new password"
                ));
            }
            let password = read_password()?;
            if password.chars().count() < 10 {
                return Err(anyhow::anyhow!("the password needs at least 10 characters"));
            }
            let hash = sedx::tools::console::hash_password(&password)?;
            let role = match role {
                ConsoleRole::Viewer => "viewer",
                ConsoleRole::Operator => "operator",
            };
            let mut f = std::fs::OpenOptions::new().append(true).open(&file)?;
            use std::io::Write;
            write!(
                f,
                "\n[[user]]\nname = \"{name}\"\nrole = \"{role}\"\npassword = \"{hash}\"\n"
            )?;
            f.sync_all()?;
            sedx::context::config::Config::load(node)?;
            println!("user {name} ({role}) added to {}", file.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The password from the terminal (not echoed, asked twice) or from the first
/// line of stdin.
fn read_password() -> Result<String> {
    use std::io::{BufRead, IsTerminal};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let ask = |prompt: &str| -> Result<String> {
        eprint!("{prompt}");
        // SAFETY: termios of stdin, read and restored around one line.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        let had = unsafe { libc::tcgetattr(0, &mut t) } == 0;
        if had {
            let mut quiet = t;
            quiet.c_lflag &= !libc::ECHO;
            unsafe { libc::tcsetattr(0, libc::TCSANOW, &quiet) };
        }
        let mut line = String::new();
        let read = std::io::stdin().lock().read_line(&mut line);
        if had {
            unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) };
        }
        eprintln!();
        read?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    };
    let first = ask("密码 password: ")?;
    if ask("再输一次 again: ")? != first {
        return Err(anyhow::anyhow!("the two passwords differ"));
    }
    Ok(first)
}

pub fn demo(args: sedx::tools::demo::DemoArgs) -> Result<ExitCode> {
    sedx::tools::demo::run(&args)?;
    Ok(ExitCode::SUCCESS)
}

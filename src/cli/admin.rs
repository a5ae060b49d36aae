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
        cmd: PeerCmd::Add {
            card,
            transport,
            agency,
        },
    } = a;
    let transport = match transport.as_str() {
        "push" => sedx::context::config::Transport::Push,
        "pull" => sedx::context::config::Transport::Pull,
        "local" => sedx::context::config::Transport::Local,
        other => bail!("--transport {other:?}: use push, pull or local"),
    };
    let c = sedx::tools::card::read(&card)?;
    let added = sedx::tools::card::add(node, &c, transport, agency)?;
    println!(
        "peer {} ({}) added to sedx.toml and allowed_signers",
        c.id,
        c.role.as_str()
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

pub fn demo(args: sedx::tools::demo::DemoArgs) -> Result<ExitCode> {
    sedx::tools::demo::run(&args)?;
    Ok(ExitCode::SUCCESS)
}

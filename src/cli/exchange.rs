//! Commands of the exchange: init, seal, verify, validate, run, status, send, resend.

use super::args::*;
use super::*;
use anyhow::Result;
use sedx::context::node::Node;
use std::path::Path;
use std::process::ExitCode;

pub fn init(a: InitArgs, _node: &Path) -> Result<ExitCode> {
    let InitArgs {
        dir,
        id,
        role,
        suite,
    } = a;
    let info = Node::init(&dir, &id, role, suite)?;
    println!(
        "node {id} ({}) created in {}; its channels use {} (suite = \"{}\")",
        role.as_str(),
        dir.display(),
        suite.describe(),
        suite.as_str()
    );
    println!();
    println!("Give each peer this line for its allowed_signers file:");
    println!("  {}", info.allowed_signers_line);
    println!("and this one for its sm2_trust file (SM2 channels):");
    println!("  {}", info.sm2_trust_line);
    println!("Give each peer's SFTP server this login key (authorized_keys):");
    println!("  {}", info.login_public_key);
    match info.host_key_pin {
            Some(pin) => println!(
                "The system sshd's host key pin (/etc/ssh/ssh_host_ed25519_key.pub, port 22): {pin}\n\
                 Peers pin it only if they reach this node through that server; for another sshd\n\
                 (a private one, as in the demo and tests) give its key: `ssh-keygen -l -E sha256 -f ITS_KEY.pub`."
            ),
            None => println!("No system SSH host key here; peers pin the key of the server they reach: `ssh-keygen -l -E sha256 -f ITS_KEY.pub`."),
        }
    println!("Next: `sedx --node {} card --host HOST > card.toml` for your peers, `sedx --node {} peer add THEIR_CARD` for each peer, then `sedx --node {} check`.",
            dir.display(), dir.display(), dir.display());
    Ok(ExitCode::SUCCESS)
}

pub fn seal(a: SealArgs, node: &Path, wait: bool) -> Result<ExitCode> {
    let SealArgs { file } = a;
    let (_lock, mut node) = open_exclusive(node, "seal", wait)?;
    let names = sedx::send::seal_file(&mut node, &file, true)?;
    if names.is_empty() {
        println!(
            "nothing to send from {} (see the log and quarantine/)",
            file.display()
        );
    }
    for name in names {
        println!("{}", name.payload(&node.layout.outbound).display());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn verify(a: VerifyArgs, node: &Path) -> Result<ExitCode> {
    let VerifyArgs { set, from } = a;
    let node = open(node)?;
    let c = sedx::receive::check_set_file(&node, &set, &from)?;
    println!(
        "OK {}: sha256 {} signed by {from} ({}), {} document, {} records",
        c.name,
        c.sha256,
        c.signer,
        c.kind.root(),
        c.records
    );
    Ok(ExitCode::SUCCESS)
}

pub fn validate_cmd(a: ValidateArgs) -> Result<ExitCode> {
    let ValidateArgs { file } = a;
    let (kind, records) = sedx::wire::validate::validate_file(&file)?;
    println!(
        "{} is a valid {} document ({records} records)",
        file.display(),
        kind.root()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn run_cmd(a: RunArgs, node: &Path, wait: bool) -> Result<ExitCode> {
    let RunArgs { once, now, http } = a;
    let dir = node.to_path_buf();
    let (lock, mut node) = open_exclusive(node, "run", wait)?;
    let lock = std::cell::RefCell::new(lock);
    let wake = sedx::run::watch::channel();
    if let Some(opts) = sedx::tools::console::Options::of(&node.cfg, http) {
        let tx = wake.0.clone();
        let send_now = Box::new(move || {
            let _ = tx.send(sedx::run::watch::Wake::SendNow);
        });
        let bound = sedx::tools::console::start(dir.clone(), &opts, send_now)?;
        let scheme = if opts.tls.is_some() { "https" } else { "http" };
        tracing::info!(
            "console 总览 at {scheme}://{bound}/ and metrics at {scheme}://{bound}/metrics"
        );
        if node.cfg.users.is_empty() {
            tracing::warn!(
                "the console has no users yet: add one with `sedx user add NAME --role operator`"
            );
        }
    }
    if node.cfg.alerts.is_some() {
        sedx::tools::alerts::start(dir)?;
    }
    if once {
        let r = node.pass_with(now);
        report(&r);
        return Ok(pass_outcome(&r));
    }
    // SIGTERM (systemd, kill) and Ctrl-C stop between passes; every step is
    // durable anyway, so a pass never needs to be cut short.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    // SIGHUP (systemd's ExecReload): read sedx.toml and allowed_signers
    // again before the next pass; work in progress is not touched.
    let hup = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())?;
    let lost_lock = std::sync::atomic::AtomicBool::new(false);
    tracing::info!(node = node.id(), "running");
    sedx::run::watch::run(
        &mut node,
        now,
        report,
        || {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                return true;
            }
            // A database lock lost with its connection: a standby may be active
            // already, so this process stops working the node.
            let lost = !lock.borrow_mut().alive();
            if lost {
                tracing::error!("lost the node's lock (the database connection); stopping so that one process works the node: start sedx again once the database is reachable");
                lost_lock.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            lost
        },
        || hup.swap(false, std::sync::atomic::Ordering::Relaxed),
        wake,
    )?;
    tracing::info!(node = node.id(), "stopped");
    if lost_lock.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(ExitCode::from(74));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn status(a: StatusArgs, node: &Path) -> Result<ExitCode> {
    let StatusArgs { json, summary } = a;
    let node = open(node)?;
    let status = sedx::tools::status::gather(&node)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else if summary {
        println!("{}", status.summary());
    } else {
        print!("{}", status.text());
        println!("{}", status.summary());
    }
    Ok(ExitCode::from(status.health().0.exit_code()))
}

pub fn send(a: SendArgs, node: &Path, wait: bool) -> Result<ExitCode> {
    let SendArgs { now } = a;
    let (_lock, mut node) = open_exclusive(node, "send", wait)?;
    let r = node.send(now);
    report(&r);
    if !r.errors.is_empty() {
        return Ok(pass_outcome(&r));
    }
    println!(
        "sealed {}, shipped {}, queued for the window {}",
        r.sealed, r.shipped, r.waiting_for_window
    );
    Ok(ExitCode::SUCCESS)
}

pub fn resend(a: ResendArgs, node: &Path) -> Result<ExitCode> {
    let ResendArgs { batch_id } = a;
    let node = open(node)?;
    let name = node.resend(&batch_id)?;
    println!("{name} is back in outbound/ and ships on the next pass");
    Ok(ExitCode::SUCCESS)
}

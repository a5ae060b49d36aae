//! The watcher: react to file events (notify) and rescan on an interval anyway,
//! because events can be lost.

use crate::context::error::{Error, Result};
use crate::context::node::Node;
use crate::context::report::PassReport;
use notify::{RecursiveMode, Watcher};
use std::sync::mpsc;
use std::time::Duration;

/// What wakes the watcher before its next scan.
#[derive(Debug)]
pub enum Wake {
    File(notify::Event),
    /// An operator asked for a pass now, outside the exchange window too
    /// (the console's "send now").
    SendNow,
}

/// The channel of [`run`]: hand out clones of the sender before running.
pub fn channel() -> (mpsc::Sender<Wake>, mpsc::Receiver<Wake>) {
    mpsc::channel()
}

/// Run passes until `stop` returns true (checked between passes); when `reload`
/// returns true (SIGHUP), read the configuration again first.
pub fn run(
    node: &mut Node,
    force: bool,
    mut on_pass: impl FnMut(&PassReport),
    stop: impl Fn() -> bool,
    reload: impl Fn() -> bool,
    (tx, rx): (mpsc::Sender<Wake>, mpsc::Receiver<Wake>),
) -> Result<()> {
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if let Ok(ev) = ev {
            let _ = tx.send(Wake::File(ev));
        }
    })
    .map_err(|e| Error::Other(format!("watcher: {e}")))?;
    let mut watched: Vec<std::path::PathBuf> = Vec::new();
    watch_folders(node, &mut watcher, &mut watched)?;
    tracing::info!(node = node.id(), "watching outbound/ and inbound/");
    let mut now = false;
    while !stop() {
        if reload() {
            match node.reload() {
                Ok(()) => {
                    watch_folders(node, &mut watcher, &mut watched)?;
                    tracing::info!(
                        peers = node.cfg.peers.len(),
                        "configuration reloaded (sedx.toml, allowed_signers); every peer is tried again now"
                    );
                }
                Err(e) => tracing::error!(
                    "configuration not reloaded, still running with the previous one: {e}; fix sedx.toml (`sedx check` says what is wrong) and send SIGHUP again"
                ),
            }
        }
        let interval = Duration::from_secs(node.cfg.node.scan_interval_secs.max(1));
        let settle = Duration::from_millis(node.cfg.node.settle_ms.max(50));
        let report = node.pass_with(force || std::mem::take(&mut now));
        on_pass(&report);
        let wait = if report.unsettled > 0 {
            settle
        } else {
            interval
        };
        match rx.recv_timeout(wait) {
            Ok(Wake::File(ev)) => note(node, &ev),
            Ok(Wake::SendNow) => now = true,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Error::Other("watcher stopped".into()))
            }
        }
        // Let a burst of events settle into one pass.
        std::thread::sleep(Duration::from_millis(20));
        while let Ok(w) = rx.try_recv() {
            match w {
                Wake::File(ev) => note(node, &ev),
                Wake::SendNow => now = true,
            }
        }
    }
    Ok(())
}

/// Watch outbound/, inbound/ and each peer's drop folder outside it (in its
/// chroot) not watched yet.
fn watch_folders(
    node: &Node,
    watcher: &mut impl Watcher,
    watched: &mut Vec<std::path::PathBuf>,
) -> Result<()> {
    let mut dirs = vec![node.layout.outbound.clone(), node.layout.inbound.clone()];
    for p in &node.cfg.peers {
        let dir = node.layout.inbound_of(p);
        if !dir.starts_with(&node.layout.inbound) {
            dirs.push(dir);
        }
    }
    for dir in dirs {
        if watched.contains(&dir) {
            continue;
        }
        watcher
            .watch(&dir, RecursiveMode::Recursive)
            .map_err(|e| Error::Other(format!("watch {}: {e}", dir.display())))?;
        watched.push(dir);
    }
    Ok(())
}

/// A dropped file whose writer has closed it, or that was renamed into place, is
/// complete: it need not wait out the settle time. Any later write undoes that.
fn note(node: &mut Node, ev: &notify::Event) {
    use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};
    let Some(path) = ev.paths.last() else { return };
    if path.parent() != Some(node.layout.outbound.as_path()) {
        return;
    }
    match ev.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write))
        | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both)) => {
            node.complete.insert(path.clone());
        }
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => {
            node.complete.remove(path);
        }
        _ => {}
    }
}

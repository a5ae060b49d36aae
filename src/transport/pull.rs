//! Pull mode: a node that runs no SFTP server fetches the sets waiting for it in
//! its hub's outbox, and removes them there only once they are stored here.

use crate::context::clock::{age_secs, unix_now};
use crate::context::config::{PeerConfig, Transport};
use crate::context::error::Result;
use crate::context::faults::crash_point;
use crate::context::node::Node;
use crate::context::report::{Failure, PassReport, Stage};
use crate::transport::session::PeerSession;
use crate::transport::ship::transport_failed;
use crate::wire::set::{Marker, SetName};

pub fn pull_all(node: &mut Node, report: &mut PassReport, force: bool) -> Result<()> {
    let peers: Vec<_> = node
        .cfg
        .peers
        .iter()
        .filter(|p| p.transport == Transport::Pull)
        .cloned()
        .collect();
    for peer in peers {
        let state = node.store.peer_state(&peer.id)?;
        if !force && state.next_attempt > unix_now() {
            report.backing_off += 1;
            continue;
        }
        let login_key = node
            .layout
            .resolve(peer.key.as_ref().unwrap_or(&node.cfg.node.login_key));
        let remote = peer.remote_outbox.clone().unwrap_or_default();
        let local = node.layout.inbound_of(&peer);
        crate::context::files::create_dir_all(&local)?;
        let fetched = PeerSession::open(&peer, &login_key).and_then(|link| {
            for (name, suite) in link.list_sets(&remote)? {
                // Already stored here by an attempt that stopped before removing it there?
                let stored = std::fs::read(name.marker(&local, suite))
                    .ok()
                    .and_then(|m| Marker::parse(&m).ok())
                    .is_some_and(|_| name.payload(&local).exists() && name.sig(&local).exists());
                if !stored {
                    let max = node.cfg.node.max_payload_bytes;
                    match download(&link, &remote, &name, suite, &local, max) {
                        Ok(resumed) if resumed > 0 => {
                            tracing::info!(peer = %peer.id, set = %name, resumed, "download resumed");
                            node.store.bump_counter("resumed_bytes", resumed)?;
                        }
                        Ok(_) => {}
                        Err(crate::context::error::Error::Rejected(rej)) => {
                            // Too large to fetch: put aside at the hub, so it never
                            // blocks what waits behind it.
                            crate::context::quarantine::not_pulled(node, &peer.id, &name, &rej, &remote)?;
                            link.remove_set(&remote, &name)?;
                            report.quarantined += 1;
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                }
                crash_point("after-pull");
                link.remove_set(&remote, &name)?;
                report.pulled += 1;
                tracing::info!(peer = %peer.id, set = %name, "pulled");
            }
            Ok(())
        });
        match fetched {
            Ok(()) => {
                if state.failures > 0 {
                    tracing::info!(peer = %peer.id, failures = state.failures, "peer reachable again");
                }
                node.store.transport_ok(&peer.id)?
            }
            Err(e) => {
                tracing::error!(peer = %peer.id, error = %e, "pull failed; will retry");
                transport_failed(node, &peer.id, &e, &state)?;
                report.logged_error(Failure::new(Stage::Pull, "", &e));
            }
        }
    }
    Ok(())
}

/// Download a set's three files, its marker in `suite` (the payload at most
/// `max` bytes, the others at most a few KiB), marker last; the bytes resumed
/// from earlier attempts.
fn download(
    link: &PeerSession,
    remote: &str,
    name: &crate::wire::set::SetName,
    suite: crate::wire::suite::Suite,
    local: &std::path::Path,
    max: u64,
) -> Result<u64> {
    let mut resumed = 0;
    for (file, max) in [
        (name.payload_file(), max),
        (
            format!("{name}{}", crate::wire::set::SIG),
            crate::wire::set::SMALL_FILE_MAX,
        ),
        (name.marker_file(suite), crate::wire::set::SMALL_FILE_MAX),
    ] {
        resumed += link.get(remote, &file, local, max)?;
    }
    Ok(resumed)
}

/// What a pulling peer has left waiting in its outbox folder on this hub.
pub struct PullWatch {
    /// Sets seen there before and gone now: the peer took them.
    pub taken: Vec<String>,
    /// Sets still waiting, with when they were left (RFC 3339), oldest first.
    pub waiting: Vec<(String, String)>,
}

/// Look at a pulling peer's outbox folder (reads only).
pub fn pull_watch(node: &Node, peer: &PeerConfig) -> Result<PullWatch> {
    let dir = node.layout.outbox_of(peer);
    let mut watch = PullWatch {
        taken: Vec::new(),
        waiting: Vec::new(),
    };
    for (name, at) in node.store.left_for_pull(&peer.id)? {
        let there = SetName::new(&name).is_ok_and(|n| n.is_complete(&dir));
        if there {
            watch.waiting.push((name, at));
        } else {
            watch.taken.push(name);
        }
    }
    Ok(watch)
}

/// Note the pulls of every pulling peer since the last pass, and raise an
/// alert, logged once, for a peer that has left a set waiting longer than
/// `pull_alert_secs`: it has stopped pulling (a station whose poller died would
/// otherwise show only as batches not acknowledged hours later).
pub fn watch_pulls(node: &mut Node) -> Result<()> {
    let limit = node.cfg.node.pull_alert_secs as i64;
    let peers: Vec<PeerConfig> = node
        .cfg
        .peers
        .iter()
        .filter(|p| p.transport == Transport::Local)
        .cloned()
        .collect();
    for peer in peers {
        let watch = pull_watch(node, &peer)?;
        let state = node.store.peer_state(&peer.id)?;
        if !watch.taken.is_empty() {
            node.store.taken_by_pull(&peer.id, &watch.taken)?;
            if state.pull_alert_at.is_some() {
                tracing::info!(peer = %peer.id, sets = watch.taken.len(), "peer pulls again");
            }
            continue;
        }
        if let Some((name, at)) = watch.waiting.first() {
            let age = age_secs(at);
            if age >= limit && state.pull_alert_at.is_none() {
                tracing::error!(
                    peer = %peer.id,
                    set = %name,
                    waiting_secs = age,
                    "peer has not pulled for {} min: {} set(s) wait in {}; check the agency's sedx (or its poller) and its login",
                    age / 60,
                    watch.waiting.len(),
                    node.layout.outbox_of(&peer).display()
                );
                node.store.pull_alert_raised(&peer.id)?;
            }
        }
    }
    Ok(())
}

//! Pull mode: a node that runs no SFTP server fetches the sets waiting for it in
//! its hub's outbox, and removes them there only once they are stored here.

use crate::config::Transport;
use crate::error::Result;
use crate::faults::crash_point;
use crate::node::{Node, PassReport};
use crate::set::Marker;
use crate::ship::{transport_failed, unix_now, Link};

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
        crate::fsx::create_dir_all(&local)?;
        let fetched = Link::open(&peer, &login_key).and_then(|link| {
            for name in link.list_sets(&remote)? {
                // Already stored here by an attempt that stopped before removing it there?
                let stored = std::fs::read(name.marker(&local))
                    .ok()
                    .and_then(|m| Marker::parse(&m).ok())
                    .is_some_and(|_| name.payload(&local).exists() && name.sig(&local).exists());
                if !stored {
                    match download(&link, &remote, &name, &local, node.cfg.node.max_payload_bytes)
                    {
                        Ok(resumed) if resumed > 0 => {
                            tracing::info!(peer = %peer.id, set = %name, resumed, "download resumed");
                            node.store.bump_counter("resumed_bytes", resumed)?;
                        }
                        Ok(_) => {}
                        Err(crate::error::Error::Rejected(rej)) => {
                            // Too large to fetch: put aside at the hub, so it never
                            // blocks what waits behind it.
                            tracing::warn!(peer = %peer.id, set = %name, code = rej.code.as_str(), detail = %rej.detail, "not pulled");
                            node.store.log_quarantine(
                                crate::store::QuarantineKind::NotPulled,
                                Some(&peer.id),
                                name.as_str(),
                                rej.code,
                                &rej.detail,
                                &format!("{remote} (at the hub, removed)"),
                            )?;
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
                report.logged_error(e.to_string());
            }
        }
    }
    Ok(())
}

/// Download a set's three files (the payload at most `max` bytes, the others at
/// most a few KiB), marker last; the bytes resumed from earlier attempts.
fn download(
    link: &Link,
    remote: &str,
    name: &crate::set::SetName,
    local: &std::path::Path,
    max: u64,
) -> Result<u64> {
    let mut resumed = 0;
    for (file, max) in [
        (name.payload_file(), max),
        (
            format!("{name}{}", crate::set::SIG),
            crate::set::SMALL_FILE_MAX,
        ),
        (
            format!("{name}{}", crate::set::MARKER),
            crate::set::SMALL_FILE_MAX,
        ),
    ] {
        resumed += link.get(remote, &file, local, max)?;
    }
    Ok(resumed)
}

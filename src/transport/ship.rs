//! Ship: push sets to a peer over SFTP. The peer's host key is pinned; each file
//! goes up under a dot-name and is renamed into place, the marker last.

use crate::context::clock::unix_now;
use crate::context::config::Transport;
use crate::context::error::{Code, Error, Reject, Result};
use crate::context::faults::crash_point;
use crate::context::node::Node;
use crate::context::report::{Failure, PassReport, Stage};
use crate::transport::session::PeerSession;
use crate::wire::document::{self, DocKind};
use crate::wire::set::{self, SetName};
use flate2::bufread::MultiGzDecoder;
use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::Path;

/// Who a sealed set is for, read from its document's root element.
#[derive(Debug, Clone)]
pub struct Routing {
    pub to: String,
    pub kind: DocKind,
    pub batch_id: String,
    pub seq: Option<u64>,
}

pub fn routing(name: &SetName, dir: &Path) -> Result<Routing, Reject> {
    let f = crate::context::files::open_regular(&name.payload(dir)).map_err(|e| match e {
        Error::Rejected(r) => r,
        e => Reject::new(Code::SetMarker, format!("payload: {e}")),
    })?;
    let root = document::peek_root(BufReader::new(MultiGzDecoder::new(BufReader::new(f))))?;
    let to = root
        .get("to")
        .ok_or_else(|| Reject::new(Code::BatchHeader, "document names no receiver"))?
        .to_string();
    let batch_id = match root.kind {
        DocKind::Batch => root.get("id").unwrap_or(name.as_str()).to_string(),
        DocKind::Ack => format!("ack:{}", root.get("batch").unwrap_or(name.as_str())),
    };
    Ok(Routing {
        to,
        kind: root.kind,
        batch_id,
        seq: root.get("seq").and_then(|s| s.parse().ok()),
    })
}

/// Ship every complete set in outbound/ to its peer, one SFTP session per peer.
pub fn ship_all(node: &mut Node, report: &mut PassReport, force: bool) -> Result<()> {
    let window_open = force || node.cfg.window().open_now();
    let out = node.layout.outbound.clone();
    let mut by_peer: BTreeMap<String, Vec<(SetName, Routing)>> = BTreeMap::new();
    for name in set::complete_sets(&out)? {
        if !name.payload(&out).exists() {
            // Half-moved to sent/ before a crash: finish the move.
            if node
                .store
                .outbox(name.as_str())?
                .is_some_and(|e| e.ship_count > 0)
            {
                set::move_set(&name, &out, &node.layout.sent)?;
            } else {
                report.failed(
                    Stage::Ship,
                    &name,
                    &Error::Other("marker without payload in outbound".into()),
                );
            }
            continue;
        }
        // Only what this node signed leaves it, and only from regular files:
        // anything that writes into outbound/ may submit data, never make the
        // node send its keys or anything else it can read.
        let verified = match crate::wire::verify::verify_set(
            &out,
            &name,
            node.id(),
            &node.trust,
            None,
            node.cfg.node.max_payload_bytes,
            node.cfg.expand_limits(),
        ) {
            Ok(v) => v,
            Err(rej) => {
                refuse_outgoing(node, &name, &rej, report)?;
                continue;
            }
        };
        match routing(&name, &out) {
            // Sealed in another suite than its channel's now (a set copied back
            // into outbound/ after the channel changed): its peer would refuse it.
            Ok(r)
                if node.cfg.peer(&r.to).is_some() && node.cfg.suite_of(&r.to) != verified.suite =>
            {
                let channel = node.cfg.suite_of(&r.to);
                let rej = Reject::new(
                    Code::SetSuite,
                    format!(
                        "通道的密码套件已变更，此批次未发送，请重新投放记录 / sealed with {} but the channel with {} uses {} (its suite changed after this set was sealed) and the peer would refuse it; drop the records again to send them in the channel's suite",
                        verified.suite.describe(),
                        r.to,
                        channel.describe()
                    ),
                );
                refuse_outgoing(node, &name, &rej, report)?;
            }
            Ok(r) if r.kind == DocKind::Batch && !window_open => {
                // Outside the exchange window batches queue (R14); answers still go.
                report.waiting_for_window += 1;
            }
            Ok(r) if node.cfg.peer(&r.to).is_some() => {
                by_peer.entry(r.to.clone()).or_default().push((name, r))
            }
            Ok(r) => report.failed(
                Stage::Ship,
                &name,
                &Error::Config(format!(
                    "receiver {:?} is not a configured peer; left in outbound",
                    r.to
                )),
            ),
            Err(rej) => report.failed(
                Stage::Ship,
                &name,
                &Error::Other(format!("cannot route: {rej}; left in outbound")),
            ),
        }
    }
    for (peer_id, mut sets) in by_peer {
        // Batches in sequence order, acknowledgments first (they unblock the peer).
        sets.sort_by_key(|(_, r)| (r.kind == DocKind::Batch, r.seq));
        let Some(peer) = node.cfg.peer(&peer_id).cloned() else {
            continue;
        };
        if report.failed_peers.contains(&peer_id) {
            continue; // failed earlier in this pass; the next pass tries again
        }
        if peer.transport == Transport::Local {
            // The hub leaves sets for this peer in a local folder; it pulls them.
            let dir = node.layout.outbox_of(&peer);
            crate::context::files::create_dir_all(&dir)?;
            for (name, routing) in sets {
                // The peer's account reads them there (its group): 0640.
                set::copy_set(&name, &out, &dir, 0o640)?;
                crash_point("after-upload");
                shipped(node, &peer_id, &name, &routing, report)?;
            }
            continue;
        }
        let login_key = node
            .layout
            .resolve(peer.key.as_ref().unwrap_or(&node.cfg.node.login_key));
        let state = node.store.peer_state(&peer_id)?;
        if !force && state.next_attempt > unix_now() {
            report.backing_off += 1;
            tracing::debug!(peer = %peer_id, "waiting before retrying after {} failure(s)", state.failures);
            continue;
        }
        // The session stays open between sets and passes; one that has gone stale
        // (the server restarted, the network dropped it) is replaced once.
        let mut reused = node.links.contains_key(&peer_id);
        let mut failed = false;
        for (name, routing) in sets {
            let started = std::time::Instant::now();
            let uploaded = loop {
                if !node.links.contains_key(&peer_id) {
                    match PeerSession::open(&peer, &login_key) {
                        Ok(l) => {
                            node.links.insert(peer_id.clone(), l);
                        }
                        Err(e) => break Err((e, true)),
                    }
                }
                let link = &node.links[&peer_id];
                match link.upload_set(&name, &out) {
                    Ok(resumed) => break Ok(resumed),
                    Err(e) => {
                        node.links.remove(&peer_id);
                        if reused {
                            reused = false;
                            tracing::debug!(peer = %peer_id, error = %e, "kept session failed; opening a new one");
                            continue;
                        }
                        break Err((e, false));
                    }
                }
            };
            match uploaded {
                Ok(resumed) => {
                    let ship_ms = started.elapsed().as_secs_f64() * 1000.0;
                    tracing::info!(peer = %peer_id, set = %name, ship_ms, "uploaded");
                    if resumed > 0 {
                        tracing::info!(peer = %peer_id, set = %name, resumed, "upload resumed");
                        node.store.bump_counter("resumed_bytes", resumed)?;
                    }
                }
                Err((e, connecting)) => {
                    if connecting {
                        tracing::error!(peer = %peer_id, error = %e, "cannot reach peer; sets stay queued");
                    } else {
                        tracing::error!(peer = %peer_id, set = %name, error = %e, "upload failed; set stays queued");
                    }
                    transport_failed(node, &peer_id, &e, &state)?;
                    report.logged_error(Failure::new(Stage::Ship, name.as_str(), &e));
                    report.failed_peers.push(peer_id.clone());
                    failed = true;
                    break;
                }
            }
            crash_point("after-upload");
            shipped(node, &peer_id, &name, &routing, report)?;
        }
        if !failed {
            if state.failures > 0 {
                tracing::info!(peer = %peer_id, failures = state.failures, "peer reachable again");
            }
            node.store.transport_ok(&peer_id)?;
        }
    }
    Ok(())
}

/// A set in outbound/ that this node did not sign, or whose files are not
/// regular files, goes to quarantine/outbound/ with its reason; nothing of it is
/// read further.
fn refuse_outgoing(
    node: &mut Node,
    name: &SetName,
    rej: &Reject,
    report: &mut PassReport,
) -> Result<()> {
    tracing::warn!(set = %name, code = rej.code.as_str(), detail = %rej.detail,
        "a set in outbound/ is not one this node sealed; quarantined, not sent");
    let outbound = node.layout.outbound.clone();
    crate::context::quarantine::set_aside(node, None, name, &outbound, rej)?;
    report.quarantined += 1;
    Ok(())
}

/// Record a set as shipped and move it to sent/.
fn shipped(
    node: &mut Node,
    peer: &str,
    name: &SetName,
    routing: &Routing,
    report: &mut PassReport,
) -> Result<()> {
    let kind = match routing.kind {
        DocKind::Batch => "batch",
        DocKind::Ack => "ack",
    };
    node.store
        .record_shipped(name.as_str(), &routing.batch_id, kind, peer, routing.seq)?;
    set::move_set(name, &node.layout.outbound, &node.layout.sent)?;
    report.shipped += 1;
    tracing::info!(peer, set = %name, "shipped");
    Ok(())
}

/// Record a transport failure and when to try again: the wait doubles with each
/// failure up to the maximum, with up to half again of random jitter so that
/// many nodes do not retry in step.
pub(crate) fn transport_failed(
    node: &Node,
    peer: &str,
    e: &Error,
    state: &crate::store::PeerState,
) -> Result<()> {
    let base = node.cfg.node.retry_base_secs;
    let wait = base
        .saturating_mul(1u64 << state.failures.min(20))
        .min(node.cfg.node.retry_max_secs.max(base));
    let jitter = if wait > 0 {
        rand_core::RngCore::next_u64(&mut rand_core::OsRng) % (wait / 2 + 1)
    } else {
        0
    };
    let next = unix_now() + (wait + jitter) as i64;
    node.store.transport_failed(peer, &e.to_string(), next)
}

/// Batches with no acknowledgment within the configured time: an alert in the
/// log and status, and the set goes out again (the receiver answers duplicates).
pub fn resend_overdue(node: &mut Node, report: &mut PassReport) -> Result<()> {
    let limit = time::OffsetDateTime::now_utc()
        - time::Duration::seconds(node.cfg.node.ack_timeout_secs as i64);
    let before = limit
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    for e in node.store.overdue(&before)? {
        tracing::warn!(peer = %e.peer, batch = %e.batch_id, seq = e.seq.unwrap_or(0),
            shipped = e.shipped_at.as_deref().unwrap_or("-"), "no acknowledgment in time; resending");
        report.overdue += 1;
        if !SetName::new(&e.set_name)?.is_complete(&node.layout.outbound) {
            node.resend(&e.batch_id)?;
        }
        node.store.mark_resent(&e.set_name)?;
    }
    Ok(())
}

//! Ship: push sets to a peer over SFTP. The peer's host key is pinned; each file
//! goes up under a dot-name and is renamed into place, the marker last.

use crate::config::{PeerConfig, Transport};
use crate::document::{self, DocKind};
use crate::error::{Code, Error, Reject, Result};
use crate::faults::crash_point;
use crate::node::{Node, PassReport};
use crate::set::{self, SetName};
use base64::Engine;
use flate2::bufread::MultiGzDecoder;
use ssh2::{HashType, MethodType, OpenFlags, OpenType, Session, Sftp};
use std::collections::BTreeMap;
use std::io::BufReader;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

/// SFTP writes of 1 MiB: 32 KiB writes were three times slower here.
const WRITE_SIZE: usize = 1 << 20;

/// An open SFTP session to one peer, kept by the node between passes.
pub struct Link {
    peer: String,
    remote_dir: String,
    _session: Session,
    sftp: Sftp,
}

/// What an SFTP "no such file" on the remote inbound folder means, and the fix.
fn missing_folder_hint(e: &ssh2::Error, dir: &str) -> String {
    if matches!(e.code(), ssh2::ErrorCode::SFTP(2)) {
        format!(": the folder {dir} does not exist on the peer's server, or this node is not set up there; its operator adds this node (sedx peer add CARD, scripts/peer-account.sh), or remote_inbound here is wrong")
    } else if matches!(e.code(), ssh2::ErrorCode::SFTP(3)) {
        format!(": this login may not write into {dir}; the peer's operator gives this node's account write access there")
    } else {
        String::new()
    }
}

fn transport(peer: &str, detail: impl std::fmt::Display) -> Error {
    Error::Transport {
        peer: peer.to_string(),
        detail: detail.to_string(),
    }
}

/// The pin as configured: a SHA-256 fingerprint, or a whole public key.
enum Pin {
    Sha256(String),
    Key(Vec<u8>),
}

fn parse_pin(peer: &str, text: &str) -> Result<Pin> {
    let text = text.trim();
    if let Some(fp) = text.strip_prefix("SHA256:") {
        return Ok(Pin::Sha256(fp.trim_end_matches('=').to_string()));
    }
    // A known_hosts line ("host keytype base64") or a .pub line ("keytype base64 comment").
    let fields: Vec<&str> = text.split_whitespace().collect();
    let at = fields
        .iter()
        .position(|f| f.starts_with("ssh-") || f.starts_with("ecdsa-"))
        .ok_or_else(|| {
            Error::Config(format!(
                "peer {peer}: host_key is neither SHA256:... nor a key line"
            ))
        })?;
    let blob = fields
        .get(at + 1)
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .ok_or_else(|| Error::Config(format!("peer {peer}: host_key has no valid base64 key")))?;
    Ok(Pin::Key(blob))
}

/// Compare the server's host key with the pin; refuse on any difference.
fn check_host_key(session: &Session, peer: &PeerConfig) -> Result<()> {
    let refuse = |detail: String| Error::HostKey {
        peer: peer.id.clone(),
        detail,
    };
    let seen_fp = session
        .host_key_hash(HashType::Sha256)
        .map(|h| base64::engine::general_purpose::STANDARD_NO_PAD.encode(h))
        .ok_or_else(|| refuse("server sent no host key".into()))?;
    match parse_pin(&peer.id, &peer.host_key)? {
        Pin::Sha256(want) if want == seen_fp => Ok(()),
        Pin::Key(blob) if session.host_key().is_some_and(|(k, _)| k == blob.as_slice()) => Ok(()),
        _ => Err(refuse(format!(
            "server presented SHA256:{seen_fp}, which is not the pinned key (possible impersonation); only if the peer's operator confirms that key, set host_key = \"SHA256:{seen_fp}\" in [[peer]] {} and reload (systemctl reload, or SIGHUP)", peer.id
        ))),
    }
}

impl Link {
    /// Connect, check the pinned host key, and log in with the key (never a password).
    pub fn open(peer: &PeerConfig, login_key: &Path) -> Result<Link> {
        let addr = (peer.host.as_str(), peer.port)
            .to_socket_addrs()
            .map_err(|e| transport(&peer.id, format!("{}:{}: {e}", peer.host, peer.port)))?
            .next()
            .ok_or_else(|| transport(&peer.id, "no address"))?;
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(20)).map_err(|e| {
            transport(
                &peer.id,
                format!("connect {addr}: {e}: is the peer's SSH server running and reachable on {}:{} (address, port, firewall)?", peer.host, peer.port),
            )
        })?;
        let mut session = Session::new().map_err(|e| transport(&peer.id, e))?;
        session.set_timeout(60_000);
        // Offer ed25519 first, so an ed25519 pin is compared with the ed25519 key.
        let _ = session.method_pref(
            MethodType::HostKey,
            "ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256",
        );
        session.set_tcp_stream(tcp);
        session
            .handshake()
            .map_err(|e| transport(&peer.id, format!("handshake: {e}")))?;
        check_host_key(&session, peer)?;
        session
            .userauth_pubkey_file(&peer.user, None, login_key, None)
            .map_err(|e| {
                let public = crate::signature::load_private_key(login_key)
                    .ok()
                    .and_then(|k| k.public_key().to_openssh().ok())
                    .unwrap_or_else(|| format!("the public half of {}", login_key.display()));
                transport(
                    &peer.id,
                    format!(
                        "login as {} with {} refused ({e}): the peer's server does not accept this node's login key for {}; its operator adds this line to that account's authorized_keys (scripts/peer-account.sh --key does it): {public}",
                        peer.user,
                        login_key.display(),
                        peer.user
                    ),
                )
            })?;
        let sftp = session
            .sftp()
            .map_err(|e| transport(&peer.id, format!("sftp: {e}")))?;
        Ok(Link {
            peer: peer.id.clone(),
            remote_dir: peer.remote_inbound.trim_end_matches('/').to_string(),
            _session: session,
            sftp,
        })
    }

    fn remote(&self, file: &str) -> std::path::PathBuf {
        Path::new(&self.remote_dir).join(file)
    }

    /// Upload one file under a temporary dot-name, then rename it into place.
    /// An upload cut off earlier continues from what is already there (the
    /// receiver's checksum decides whether the whole is right). If a file of that
    /// name and size is already in place (an earlier attempt, or a resend not yet
    /// taken), it counts as delivered. Returns the bytes resumed.
    fn put(&self, local: &Path) -> Result<u64> {
        let err = |what: String| transport(&self.peer, what);
        let name = local
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| err(format!("{} has no usable name", local.display())))?;
        // Opened once, never through a link; what is sent is this open file.
        let mut src = crate::fsx::open_regular(local)?;
        let size = src
            .metadata()
            .map_err(|e| err(format!("{}: {e}", local.display())))?
            .len();
        let final_path = self.remote(name);
        let tmp_path = self.remote(&format!(".{name}.part"));
        let already = self
            .sftp
            .stat(&tmp_path)
            .ok()
            .and_then(|s| s.size)
            .filter(|&s| s <= size);
        let resumed = already.unwrap_or(0);
        {
            let mut dst = match already {
                Some(offset) => {
                    let mut f = self
                        .sftp
                        .open_mode(&tmp_path, OpenFlags::WRITE, 0o640, OpenType::File)
                        .map_err(|e| err(format!("reopen {}: {e}", tmp_path.display())))?;
                    f.seek(SeekFrom::Start(offset))
                        .map_err(|e| err(format!("seek: {e}")))?;
                    src.seek(SeekFrom::Start(offset))
                        .map_err(|e| err(format!("seek: {e}")))?;
                    f
                }
                None => self
                    .sftp
                    .open_mode(
                        &tmp_path,
                        OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE,
                        0o640,
                        OpenType::File,
                    )
                    .map_err(|e| {
                        err(format!(
                            "create {}: {e}{}",
                            tmp_path.display(),
                            missing_folder_hint(&e, &self.remote_dir)
                        ))
                    })?,
            };
            let mut buf = vec![0u8; WRITE_SIZE];
            loop {
                let n = src.read(&mut buf).map_err(|e| err(e.to_string()))?;
                if n == 0 {
                    break;
                }
                dst.write_all(&buf[..n])
                    .map_err(|e| err(format!("write {}: {e}", tmp_path.display())))?;
                crash_point("mid-upload");
            }
            dst.fsync().ok(); // not every server offers fsync@openssh.com
            dst.close().map_err(|e| err(format!("close: {e}")))?;
        }
        if let Err(e) = self.sftp.rename(&tmp_path, &final_path, None) {
            let existing = self.sftp.stat(&final_path).ok().and_then(|s| s.size);
            let _ = self.sftp.unlink(&tmp_path);
            if existing != Some(size) {
                return Err(err(format!("rename to {}: {e}", final_path.display())));
            }
        }
        Ok(resumed)
    }

    /// Complete sets waiting in a remote folder (pull mode).
    /// Write a probe file into the remote inbound folder and remove it
    /// (`sedx check`): the folder exists and this login may write there.
    pub fn probe(&self) -> Result<()> {
        let name = format!(".sedx-check-{}.tmp", uuid::Uuid::new_v4());
        let path = self.remote(&name);
        let err = |what: String| transport(&self.peer, what);
        let mut f = self
            .sftp
            .open_mode(
                &path,
                OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUSIVE,
                0o640,
                OpenType::File,
            )
            .map_err(|e| {
                err(format!(
                    "write a probe file into {}: {e}{}",
                    self.remote_dir,
                    missing_folder_hint(&e, &self.remote_dir)
                ))
            })?;
        f.write_all(b"sedx check\n")
            .map_err(|e| err(format!("write {}: {e}", path.display())))?;
        drop(f);
        self.sftp
            .unlink(&path)
            .map_err(|e| err(format!("remove the probe file {}: {e}", path.display())))
    }

    pub fn list_sets(&self, dir: &str) -> Result<Vec<SetName>> {
        let entries = self
            .sftp
            .readdir(Path::new(dir))
            .map_err(|e| transport(&self.peer, format!("list {dir}: {e}")))?;
        let mut sets: Vec<SetName> = entries
            .iter()
            .filter_map(|(p, _)| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
            .filter(|n| !set::is_temporary(n))
            .filter_map(|n| match SetName::of_file(&n) {
                Some((s, set::MARKER)) => Some(s),
                _ => None,
            })
            .collect();
        sets.sort();
        Ok(sets)
    }

    /// Download one remote file into `local_dir` under a dot-name, continuing a
    /// download cut off earlier, then fsync and rename it into place. Returns the
    /// bytes resumed.
    pub fn get(&self, remote_dir: &str, name: &str, local_dir: &Path, max: u64) -> Result<u64> {
        let err = |what: String| transport(&self.peer, what);
        let remote = Path::new(remote_dir).join(name);
        let size = self
            .sftp
            .stat(&remote)
            .map_err(|e| err(format!("stat {}: {e}", remote.display())))?
            .size
            .unwrap_or(0);
        let too_large = || -> Error {
            Reject::new(
                Code::SetTooLarge,
                format!("{name} is larger than the limit of {max} bytes; not downloaded"),
            )
            .into()
        };
        if size > max {
            return Err(too_large());
        }
        let tmp = local_dir.join(format!(".{name}.part"));
        let already = std::fs::metadata(&tmp)
            .ok()
            .map(|m| m.len())
            .filter(|&s| s <= size);
        let resumed = already.unwrap_or(0);
        let mut src = self
            .sftp
            .open(&remote)
            .map_err(|e| err(format!("open {}: {e}", remote.display())))?;
        let mut dst = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(already.is_none())
            .open(&tmp)
            .map_err(|e| err(format!("{}: {e}", tmp.display())))?;
        src.seek(SeekFrom::Start(resumed))
            .map_err(|e| err(format!("seek: {e}")))?;
        dst.seek(SeekFrom::Start(resumed))
            .map_err(|e| err(format!("seek: {e}")))?;
        let mut buf = vec![0u8; WRITE_SIZE];
        let mut total = resumed;
        loop {
            let n = src
                .read(&mut buf)
                .map_err(|e| err(format!("read {}: {e}", remote.display())))?;
            if n == 0 {
                break;
            }
            // The file may grow while it is read: the limit holds all the same.
            total += n as u64;
            if total > max {
                drop(dst);
                let _ = std::fs::remove_file(&tmp); // our own partial download
                return Err(too_large());
            }
            dst.write_all(&buf[..n])
                .map_err(|e| err(format!("{}: {e}", tmp.display())))?;
            crash_point("mid-download");
        }
        dst.sync_all()
            .map_err(|e| err(format!("{}: {e}", tmp.display())))?;
        crate::fsx::rename(&tmp, &local_dir.join(name))?;
        Ok(resumed)
    }

    /// Remove a set from a remote folder, marker first so it never looks complete
    /// while half removed.
    pub fn remove_set(&self, dir: &str, name: &SetName) -> Result<()> {
        let d = Path::new(dir);
        for f in [name.marker(d), name.payload(d), name.sig(d)] {
            if let Err(e) = self.sftp.unlink(&f) {
                if self.sftp.stat(&f).is_ok() {
                    return Err(transport(
                        &self.peer,
                        format!("remove {}: {e}", f.display()),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Upload a set: payload, signature, then the marker that makes it complete.
    /// Returns the bytes resumed from earlier, interrupted attempts.
    pub fn upload_set(&self, name: &SetName, dir: &Path) -> Result<u64> {
        let mut resumed = 0;
        for f in name.files(dir) {
            resumed += self.put(&f)?;
        }
        Ok(resumed)
    }
}

/// Who a sealed set is for, read from its document's root element.
#[derive(Debug, Clone)]
pub struct Routing {
    pub to: String,
    pub kind: DocKind,
    pub batch_id: String,
    pub seq: Option<u64>,
}

pub fn routing(name: &SetName, dir: &Path) -> Result<Routing, Reject> {
    let f = crate::fsx::open_regular(&name.payload(dir)).map_err(|e| match e {
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
                report
                    .errors
                    .push(format!("{name}: marker without payload in outbound"));
            }
            continue;
        }
        // Only what this node signed leaves it, and only from regular files:
        // anything that writes into outbound/ may submit data, never make the
        // node send its keys or anything else it can read.
        if let Err(rej) = crate::verify::verify_set(
            &out,
            &name,
            node.id(),
            &node.signers,
            node.cfg.node.max_payload_bytes,
        ) {
            refuse_outgoing(node, &name, &rej, report)?;
            continue;
        }
        match routing(&name, &out) {
            Ok(r) if r.kind == DocKind::Batch && !window_open => {
                // Outside the exchange window batches queue (R14); answers still go.
                report.waiting_for_window += 1;
            }
            Ok(r) if node.cfg.peer(&r.to).is_some() => {
                by_peer.entry(r.to.clone()).or_default().push((name, r))
            }
            Ok(r) => report.errors.push(format!(
                "{name}: receiver {:?} is not a configured peer; left in outbound",
                r.to
            )),
            Err(rej) => report
                .errors
                .push(format!("{name}: cannot route: {rej}; left in outbound")),
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
            crate::fsx::create_dir_all(&dir)?;
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
                    match Link::open(&peer, &login_key) {
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
                    report.logged_error(e.to_string());
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
    let qdir = node.layout.quarantine.join("outbound");
    let outbound = node.layout.outbound.clone();
    crate::node::quarantine_set(node, None, name, &outbound, &qdir, rej)?;
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

pub(crate) fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
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
        if !SetName::new(&e.set_name)?
            .marker(&node.layout.outbound)
            .exists()
        {
            node.resend(&e.batch_id)?;
        }
        node.store.mark_resent(&e.set_name)?;
    }
    Ok(())
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
        let there = SetName::new(&name).is_ok_and(|n| n.marker(&dir).exists());
        if there {
            watch.waiting.push((name, at));
        } else {
            watch.taken.push(name);
        }
    }
    Ok(watch)
}

/// Seconds since an RFC 3339 time (0 if it cannot be read).
pub fn age_secs(rfc3339: &str) -> i64 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map(|t| (time::OffsetDateTime::now_utc() - t).whole_seconds())
        .unwrap_or(0)
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

//! An SFTP session to one peer: the host key checked against its pin, a key
//! login (never a password), and the file operations of the exchange: upload
//! under a dot-name then rename, resume, download, list, remove, probe.

use crate::context::config::PeerConfig;
use crate::context::error::{Code, Error, Reject, Result};
use crate::context::faults::crash_point;
use crate::wire::set::{self, SetName};
use crate::wire::suite::Suite;
use base64::Engine;
use ssh2::{HashType, MethodType, OpenFlags, OpenType, Session, Sftp};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

/// SFTP writes of 1 MiB: 32 KiB writes were three times slower here.
const WRITE_SIZE: usize = 1 << 20;

/// An open SFTP session to one peer, kept by the node between passes.
pub struct PeerSession {
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

impl PeerSession {
    /// Connect, check the pinned host key, and log in with the key (never a password).
    pub fn open(peer: &PeerConfig, login_key: &Path) -> Result<PeerSession> {
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
                let public = crate::wire::sshsig::load_private_key(login_key)
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
        Ok(PeerSession {
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
        let mut src = crate::context::files::open_regular(local)?;
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

    /// The complete sets in a remote folder, with the suite of their marker
    /// (a name marked in both suites is listed twice; the receiver refuses it).
    pub fn list_sets(&self, dir: &str) -> Result<Vec<(SetName, Suite)>> {
        let entries = self
            .sftp
            .readdir(Path::new(dir))
            .map_err(|e| transport(&self.peer, format!("list {dir}: {e}")))?;
        let mut sets: Vec<(SetName, Suite)> = entries
            .iter()
            .filter_map(|(p, _)| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
            .filter(|n| !set::is_temporary(n))
            .filter_map(|n| match SetName::of_file(&n) {
                Some((s, set::Part::Marker(suite))) => Some((s, suite)),
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
        crate::context::files::rename(&tmp, &local_dir.join(name))?;
        Ok(resumed)
    }

    /// Remove a set from a remote folder, marker first so it never looks complete
    /// while half removed.
    pub fn remove_set(&self, dir: &str, name: &SetName) -> Result<()> {
        let d = Path::new(dir);
        let [payload, sig, sha256, sm3] = name.files(d);
        for f in [sha256, sm3, payload, sig] {
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
            if std::fs::symlink_metadata(&f).is_ok() {
                resumed += self.put(&f)?;
            }
        }
        Ok(resumed)
    }
}

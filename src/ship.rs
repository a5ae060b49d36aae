//! Ship: push sets to a peer over SFTP. The peer's host key is pinned; each file
//! goes up under a dot-name and is renamed into place, the marker last.

use crate::config::PeerConfig;
use crate::error::{Error, Result};
use crate::set::SetName;
use base64::Engine;
use ssh2::{HashType, MethodType, Session, Sftp};
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

/// SFTP writes of 1 MiB: 32 KiB writes were three times slower here.
const WRITE_SIZE: usize = 1 << 20;

/// An open SFTP session to one peer, kept for all the sets of a pass.
pub struct Link {
    peer: String,
    remote_dir: String,
    _session: Session,
    sftp: Sftp,
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
            "server presented SHA256:{seen_fp}, which is not the pinned key (possible impersonation)"
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
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(20))
            .map_err(|e| transport(&peer.id, format!("connect {addr}: {e}")))?;
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
                transport(
                    &peer.id,
                    format!("login as {} with {}: {e}", peer.user, login_key.display()),
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
    /// If a file of that name and size is already there (an earlier attempt that
    /// got that far, or a resend not yet taken), it counts as delivered.
    fn put(&self, local: &Path) -> Result<()> {
        let name = local.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            transport(
                &self.peer,
                format!("{} has no usable name", local.display()),
            )
        })?;
        let size = std::fs::metadata(local)
            .map_err(|e| transport(&self.peer, format!("{}: {e}", local.display())))?
            .len();
        let final_path = self.remote(name);
        let tmp_path = self.remote(&format!(".{name}.{}.part", std::process::id()));
        {
            let mut src = File::open(local)
                .map_err(|e| transport(&self.peer, format!("{}: {e}", local.display())))?;
            let mut dst = self.sftp.create(&tmp_path).map_err(|e| {
                transport(&self.peer, format!("create {}: {e}", tmp_path.display()))
            })?;
            let mut buf = vec![0u8; WRITE_SIZE];
            loop {
                let n = src.read(&mut buf).map_err(|e| transport(&self.peer, e))?;
                if n == 0 {
                    break;
                }
                dst.write_all(&buf[..n]).map_err(|e| {
                    transport(&self.peer, format!("write {}: {e}", tmp_path.display()))
                })?;
            }
            dst.fsync().ok(); // not every server offers fsync@openssh.com
            dst.close()
                .map_err(|e| transport(&self.peer, format!("close: {e}")))?;
        }
        if let Err(e) = self.sftp.rename(&tmp_path, &final_path, None) {
            let existing = self.sftp.stat(&final_path).ok().and_then(|s| s.size);
            let _ = self.sftp.unlink(&tmp_path);
            if existing != Some(size) {
                return Err(transport(
                    &self.peer,
                    format!("rename to {}: {e}", final_path.display()),
                ));
            }
        }
        Ok(())
    }

    /// Upload a set: payload, signature, then the marker that makes it complete.
    pub fn upload_set(&self, name: &SetName, dir: &Path) -> Result<()> {
        for f in name.files(dir) {
            self.put(&f)?;
        }
        Ok(())
    }
}

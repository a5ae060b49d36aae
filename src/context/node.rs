//! A node: its folders, configuration, keys, store, validator and open
//! sessions: the context every stage works in. The pass that drives the stages
//! is in [`crate::run::pass`]; nothing here calls a stage.

use crate::context::config::{Config, Layout, Role};
use crate::context::error::{Error, IoContext, Result};
use crate::store::Store;
use crate::wire::seal::Sealer;
use crate::wire::set::{self, SetName};
use crate::wire::sm2sig::{Sm2Key, Sm2Trust};
use crate::wire::sshsig::{self, AllowedSigners};
use crate::wire::suite::Suite;
use crate::wire::validate::Validator;
use crate::wire::verify::Trust;
use ssh_key::PrivateKey;
use std::path::Path;

/// The node's signing keys: Ed25519 always, SM2 for the national suite.
pub struct Keys {
    pub ed25519: PrivateKey,
    pub sm2: Option<Sm2Key>,
}

pub struct Node {
    pub layout: Layout,
    pub cfg: Config,
    pub store: Store,
    pub(crate) keys: Keys,
    pub(crate) trust: Trust,
    pub(crate) validator: Validator,
    /// SFTP sessions kept open between sets and passes, per peer.
    pub(crate) links: std::collections::BTreeMap<String, crate::transport::session::PeerSession>,
    /// Dropped files known complete from file events (closed after writing, or
    /// renamed into outbound/), filled by the watcher.
    pub(crate) complete: std::collections::HashSet<std::path::PathBuf>,
    /// Folders in inbound/ of no configured peer, as last reported.
    pub(crate) strangers_seen: std::collections::BTreeMap<String, usize>,
}

/// What `sedx init` made, for the operator to hand to peers.
pub struct InitInfo {
    pub allowed_signers_line: String,
    /// This node's line of an sm2_trust file.
    pub sm2_trust_line: String,
    pub login_public_key: String,
    pub host_key_pin: Option<String>,
}

impl Node {
    /// Create a node folder: layout, config, signing keys (Ed25519 and SM2,
    /// so that either suite can be agreed with a peer later), login key; its
    /// channels use `suite` unless a [[peer]] says otherwise.
    pub fn init(dir: &Path, id: &str, role: Role, suite: Suite) -> Result<InitInfo> {
        crate::context::config::check_node_id(id)?;
        if dir.join(crate::context::config::CONFIG_FILE).exists() {
            return Err(Error::Config(format!(
                "{} already holds a node",
                dir.display()
            )));
        }
        let layout = Layout::new(dir);
        // The node folder lets others pass through to outbound/ only; keys, the
        // store and sedx.toml are the service account's alone, whatever the umask.
        crate::context::files::create_dir_mode(dir, 0o711)?;
        layout.create()?;
        let mut cfg = Config::new(id, role);
        cfg.node.suite = suite;
        let keys = layout.resolve(&cfg.node.signing_key);
        crate::context::files::create_dir_mode(keys.parent().unwrap_or(dir), 0o700)?;
        let signing = sshsig::generate_key(&keys, &format!("{id} sedx signing"))?;
        let login = sshsig::generate_key(
            &layout.resolve(&cfg.node.login_key),
            &format!("{id} sedx login"),
        )?;
        let signers_line = format!(
            "{id} namespaces=\"sedx-batch,sedx-ack\" {}",
            signing
                .to_openssh()
                .map_err(|e| Error::Key(e.to_string()))?
        );
        crate::context::files::write_atomic(
            &layout.resolve(&cfg.node.allowed_signers),
            format!("# principal = node id; add each peer's line here\n{signers_line}\n")
                .as_bytes(),
        )?;
        let sm2 = Sm2Key::generate(&layout.resolve(&cfg.node.sm2_signing_key))?;
        let sm2_line = Sm2Trust::line(id, sm2.public());
        crate::context::files::write_atomic(
            &layout.resolve(&cfg.node.sm2_trust),
            format!(
                "# SM2 public keys by node id: NODE_ID BASE64 (the DER of `openssl pkey -pubout`); add each peer's line here\n{sm2_line}\n"
            )
            .as_bytes(),
        )?;
        cfg.save(dir)?;
        // The store exists from the start: a local system may write into it (R14).
        let store_path = layout.resolve(&cfg.node.store);
        Store::open(&store_path)?.set_node_identity(id)?;
        for f in [
            store_path.clone(),
            layout.resolve(&cfg.node.signing_key),
            layout.resolve(&cfg.node.sm2_signing_key),
            layout.resolve(&cfg.node.login_key),
        ] {
            crate::context::files::set_mode(&f, 0o600)?;
        }
        let host_key_pin = std::fs::read_to_string("/etc/ssh/ssh_host_ed25519_key.pub")
            .ok()
            .and_then(|t| ssh_key::PublicKey::from_openssh(t.trim()).ok())
            .map(|k| k.fingerprint(ssh_key::HashAlg::Sha256).to_string());
        Ok(InitInfo {
            allowed_signers_line: signers_line,
            sm2_trust_line: sm2_line,
            login_public_key: login.to_openssh().map_err(|e| Error::Key(e.to_string()))?,
            host_key_pin,
        })
    }

    pub fn open(dir: &Path) -> Result<Node> {
        let cfg = Config::load(dir)?;
        let layout = Layout::new(dir);
        layout.create()?;
        for p in &cfg.peers {
            crate::context::files::create_dir_all(&layout.inbound_of(p))?;
            if p.transport == crate::context::config::Transport::Local {
                // A pulling peer finds its folder from the start, even empty.
                crate::context::files::create_dir_all(&layout.outbox_of(p))?;
            }
        }
        let store = open_store(&layout, &cfg)?;
        let keys = Keys {
            ed25519: sshsig::load_private_key(&layout.resolve(&cfg.node.signing_key))?,
            sm2: load_sm2_key(&layout, &cfg)?,
        };
        let trust = load_trust(&layout, &cfg, &keys)?;
        Ok(Node {
            layout,
            cfg,
            store,
            keys,
            trust,
            validator: Validator::start()?,
            links: Default::default(),
            complete: Default::default(),
            strangers_seen: Default::default(),
        })
    }

    /// Read sedx.toml, allowed_signers, sm2_trust and the SM2 key again
    /// (SIGHUP): a fixed pin, a new peer or key takes effect without a restart.
    /// On any error the node keeps the configuration it has. Open connections
    /// are closed and every peer is tried again at once. The node's id and
    /// store cannot change this way.
    pub fn reload(&mut self) -> Result<()> {
        let cfg = Config::load(&self.layout.root)?;
        if cfg.node.id != self.cfg.node.id || cfg.node.store != self.cfg.node.store {
            return Err(Error::Config(
                "the node id and store cannot change while running; restart sedx for that".into(),
            ));
        }
        // A channel switched to SM2 needs its key now, not at the next set.
        let keys = Keys {
            ed25519: self.keys.ed25519.clone(),
            sm2: load_sm2_key(&self.layout, &cfg)?,
        };
        let trust = load_trust(&self.layout, &cfg, &keys)?;
        for p in &cfg.peers {
            crate::context::files::create_dir_all(&self.layout.inbound_of(p))?;
            if p.transport == crate::context::config::Transport::Local {
                crate::context::files::create_dir_all(&self.layout.outbox_of(p))?;
            }
            self.store.transport_retry_now(&p.id)?;
        }
        self.cfg = cfg;
        self.keys = keys;
        self.trust = trust;
        self.links.clear();
        Ok(())
    }

    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// The key that seals sets for `peer`, in its channel's suite.
    pub fn sealer(&self, peer: &str) -> Result<Sealer<'_>> {
        match self.cfg.suite_of(peer) {
            Suite::Ed25519 => Ok(Sealer::Ed25519(&self.keys.ed25519)),
            Suite::Sm2 => self
                .keys
                .sm2
                .as_ref()
                .map(Sealer::Sm2)
                .ok_or_else(|| missing_sm2_key(&self.layout, &self.cfg)),
        }
    }

    pub fn id(&self) -> &str {
        &self.cfg.node.id
    }

    /// Ship a sent batch again: its set goes back into outbound/.
    pub fn resend(&self, batch_id: &str) -> Result<SetName> {
        let entry = self
            .store
            .outbox_by_batch(batch_id)?
            .ok_or_else(|| Error::Other(format!("no batch {batch_id} was sent from this node")))?;
        let name = SetName::new(&entry.set_name)?;
        let mut dir = self.layout.sent.clone();
        let mut n = 0;
        while !name.is_complete(&dir) {
            n += 1;
            dir = self.layout.sent.join(format!("dup-{n}"));
            if !dir.exists() {
                return Err(Error::Other(format!(
                    "set {name} of batch {batch_id} is not in sent/"
                )));
            }
        }
        set::copy_set(&name, &dir, &self.layout.outbound, 0o600)?;
        // A resend by hand counts as one: the batch's timeline shows it, and
        // the automatic resend of overdue batches waits its turn again.
        self.store.mark_resent(&entry.set_name)?;
        Ok(name)
    }
}

/// The SM2 signing key: required when a channel uses SM2, loaded when present.
fn load_sm2_key(layout: &Layout, cfg: &Config) -> Result<Option<Sm2Key>> {
    let path = layout.resolve(&cfg.node.sm2_signing_key);
    if path.exists() {
        return Sm2Key::load(&path).map(Some);
    }
    if cfg.uses_sm2() {
        return Err(missing_sm2_key(layout, cfg));
    }
    Ok(None)
}

fn missing_sm2_key(layout: &Layout, cfg: &Config) -> Error {
    let path = layout.resolve(&cfg.node.sm2_signing_key);
    Error::Config(format!(
        "缺少 SM2 签名密钥 / a channel uses the SM2 suite but there is no SM2 signing key at {p}: make one with \
         `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:SM2 -out {p} && chmod 600 {p}`, \
         then add its public key to the peers' sm2_trust (`sedx card` carries it)",
        p = path.display()
    ))
}

/// allowed_signers and sm2_trust, with this node's own SM2 key trusted for
/// its own id (what it checks before shipping) even if the file lacks it.
fn load_trust(layout: &Layout, cfg: &Config, keys: &Keys) -> Result<Trust> {
    let mut sm2 = Sm2Trust::load(&layout.resolve(&cfg.node.sm2_trust))?;
    if let Some(k) = &keys.sm2 {
        sm2.add(&cfg.node.id, k.public());
    }
    Ok(Trust {
        ssh: AllowedSigners::load(&layout.resolve(&cfg.node.allowed_signers))?,
        sm2,
    })
}

/// Open the node's store, refusing one that is missing, empty, damaged or of
/// another node: a store lost under a node with history would otherwise start
/// afresh, apply archived batches again and wait forever for the next one.
fn open_store(layout: &Layout, cfg: &Config) -> Result<Store> {
    if let Some(url) = cfg.postgres_url() {
        let store = Store::open_postgres(url).map_err(|e| {
            Error::Config(format!(
                "store {}: {e}; check that the PostgreSQL server runs and that the URL's user, password and database are right",
                redact(url)
            ))
        })?;
        return own_store(store, layout, cfg, &layout.root);
    }
    let path = layout.resolve(&cfg.node.store);
    let damaged = |detail: String| damaged(&path, detail);
    match std::fs::symlink_metadata(&path) {
        Err(_) => return Err(damaged("is missing".into())),
        Ok(m) if !m.is_file() => return Err(damaged("is not a regular file".into())),
        Ok(m) if m.len() == 0 => return Err(damaged("is empty (0 bytes)".into())),
        Ok(_) => {}
    }
    let store = Store::open_with(&path, cfg.node.store_cache_mb)
        .map_err(|e| damaged(format!("cannot be opened ({e})")))?;
    own_store(store, layout, cfg, &path)
}

/// A store that cannot be this node's, with the way out.
fn damaged(path: &std::path::Path, detail: String) -> Error {
    Error::StoreDamaged {
        path: path.to_path_buf(),
        detail: format!(
            "{detail}. 请用最近的备份恢复节点 / restore the node from its latest backup: \
             `sedx restore BACKUP_DIR --to NEW_NODE_DIR` (docs/operations.md); \
             新节点请用 / a new node is made with `sedx init`"
        ),
    }
}

/// A URL as it may be logged: without its password.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let auth = &url[s + 3..at];
            match auth.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// The store belongs to this node: it says so, or it learns it now (a blank
/// store under a node with history is a lost store, not a new one).
fn own_store(store: Store, layout: &Layout, cfg: &Config, path: &std::path::Path) -> Result<Store> {
    let damaged = |detail: String| damaged(path, detail);
    match store.node_identity()? {
        Some(id) if id == cfg.node.id => {}
        Some(id) => {
            return Err(damaged(format!(
                "belongs to node {id:?}, not {:?}",
                cfg.node.id
            )))
        }
        None => {
            // A store of an earlier version learns its node; a blank one under a
            // node that has exchanged sets is a lost store.
            let folder_history = [&layout.archive, &layout.sent]
                .iter()
                .any(|d| std::fs::read_dir(d).is_ok_and(|mut rd| rd.next().is_some()));
            if folder_history && !store.has_history()? {
                return Err(damaged(
                    "holds no history while archive/ and sent/ do".into(),
                ));
            }
            store.set_node_identity(&cfg.node.id)?;
        }
    }
    Ok(store)
}

/// The exclusive lock of a node, held by every command that changes it (two
/// processes working one node would share scratch files and sequence numbers):
/// a file lock (`.lock`) beside a SQLite store, an advisory lock in the database
/// for a PostgreSQL store (its node folder may be on shared storage, where file
/// locks do not hold; a standby waits on it). Released when dropped, or when the
/// process ends.
pub enum NodeLock {
    File(std::fs::File),
    Database(Box<crate::store::lease::Lease>),
}

impl NodeLock {
    /// Whether this process still holds the node (a database lock is lost with
    /// the connection; a file lock cannot be lost).
    pub fn alive(&mut self) -> bool {
        match self {
            NodeLock::File(_) => true,
            NodeLock::Database(lease) => lease.alive(),
        }
    }
}

/// Take the node's lock; with `wait`, wait for the holder to finish (on
/// PostgreSQL: stand by to take over), else fail at once with [`Error::Busy`]
/// naming the holder.
pub fn lock(dir: &Path, what: &str, wait: bool) -> Result<NodeLock> {
    if let Some(url) = Config::load(dir)?.postgres_url() {
        return Ok(NodeLock::Database(Box::new(crate::store::lease::acquire(
            url, what, wait,
        )?)));
    }
    use std::io::{Read, Seek, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(".lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .at(&path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) if wait => file.lock().at(&path)?,
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = crate::context::text::printable(holder.trim(), 200).into_owned();
            return Err(Error::Busy {
                holder: if holder.is_empty() {
                    "starting".into()
                } else {
                    holder
                },
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(e).at(&path),
    }
    file.set_len(0).at(&path)?;
    file.rewind().at(&path)?;
    let _ = write!(
        file,
        "pid {}, `sedx {what}` since {}",
        std::process::id(),
        crate::context::clock::now()
    );
    Ok(NodeLock::File(file))
}

//! A node: its folders, configuration, keys and store, and one full pass of
//! work (receive, seal, ship).

use crate::config::{Config, Layout, Role};
use crate::error::{Error, IoContext, Result};
use crate::set::{self, SetName};
use crate::signature::{self, AllowedSigners};
use crate::store::Store;
use crate::validate::Validator;
use crate::{outbound, receive, ship};
use ssh_key::PrivateKey;
use std::path::Path;

pub struct Node {
    pub layout: Layout,
    pub cfg: Config,
    pub store: Store,
    pub(crate) key: PrivateKey,
    pub(crate) signers: AllowedSigners,
    pub(crate) validator: Validator,
    /// SFTP sessions kept open between sets and passes, per peer.
    pub(crate) links: std::collections::BTreeMap<String, crate::ship::Link>,
    /// Dropped files known complete from file events (closed after writing, or
    /// renamed into outbound/), filled by the watcher.
    pub(crate) complete: std::collections::HashSet<std::path::PathBuf>,
    /// Folders in inbound/ of no configured peer, as last reported.
    pub(crate) strangers_seen: std::collections::BTreeMap<String, usize>,
}

/// What one pass did.
#[derive(Debug, Default, Clone)]
pub struct PassReport {
    pub sealed: u64,
    pub shipped: u64,
    pub applied: u64,
    pub duplicates: u64,
    pub acks_received: u64,
    pub quarantined: u64,
    pub held: u64,
    /// Batches of deferred records whose exchange date has come (R9).
    pub released: u64,
    /// Sets fetched from a hub (pull mode).
    pub pulled: u64,
    /// Batches queued because the exchange window is closed.
    pub waiting_for_window: u64,
    /// Peers skipped while waiting to retry after transport errors.
    pub backing_off: u64,
    /// Batches not acknowledged in time (alerted and resent).
    pub overdue: u64,
    /// Plain files still growing: look again after the settle time.
    pub unsettled: u64,
    /// Transport and other failures; the sets concerned stay queued.
    pub errors: Vec<String>,
    /// Complete sets in inbound folders of no configured peer (not read).
    pub strangers: u64,
    /// Indexes into `errors` of those already logged.
    pub logged: Vec<usize>,
    /// Peers whose transport failed in this pass: not tried again until the next.
    pub failed_peers: Vec<String>,
    /// Shipping failed in this pass: it is not tried again until the next.
    pub ship_failed: bool,
}

impl PassReport {
    /// A failure already logged where it happened (with its peer and set): it
    /// counts, and is not logged a second time at the end of the pass.
    pub fn logged_error(&mut self, e: String) {
        self.logged.push(self.errors.len());
        self.errors.push(e);
    }

    /// The failures not logged yet.
    pub fn unlogged_errors(&self) -> impl Iterator<Item = &String> {
        self.errors
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.logged.contains(i))
            .map(|(_, e)| e)
    }

    pub fn did_something(&self) -> bool {
        self.sealed
            + self.shipped
            + self.applied
            + self.duplicates
            + self.acks_received
            + self.quarantined
            > 0
    }
}

/// What `sedx init` made, for the operator to hand to peers.
pub struct InitInfo {
    pub allowed_signers_line: String,
    pub login_public_key: String,
    pub host_key_pin: Option<String>,
}

impl Node {
    /// Create a node folder: layout, config, signing and login keys.
    pub fn init(dir: &Path, id: &str, role: Role) -> Result<InitInfo> {
        crate::config::check_node_id(id)?;
        if dir.join(crate::config::CONFIG_FILE).exists() {
            return Err(Error::Config(format!(
                "{} already holds a node",
                dir.display()
            )));
        }
        let layout = Layout::new(dir);
        // The node folder lets others pass through to outbound/ only; keys, the
        // store and sedx.toml are the service account's alone, whatever the umask.
        crate::fsx::create_dir_mode(dir, 0o711)?;
        layout.create()?;
        let cfg = Config::new(id, role);
        let keys = layout.resolve(&cfg.node.signing_key);
        crate::fsx::create_dir_mode(keys.parent().unwrap_or(dir), 0o700)?;
        let signing = signature::generate_key(&keys, &format!("{id} sedx signing"))?;
        let login = signature::generate_key(
            &layout.resolve(&cfg.node.login_key),
            &format!("{id} sedx login"),
        )?;
        let signers_line = format!(
            "{id} namespaces=\"sedx-batch,sedx-ack\" {}",
            signing
                .to_openssh()
                .map_err(|e| Error::Key(e.to_string()))?
        );
        crate::fsx::write_atomic(
            &layout.resolve(&cfg.node.allowed_signers),
            format!("# principal = node id; add each peer's line here\n{signers_line}\n")
                .as_bytes(),
        )?;
        cfg.save(dir)?;
        // The store exists from the start: a local system may write into it (R14).
        let store_path = layout.resolve(&cfg.node.store);
        Store::open(&store_path)?.set_node_identity(id)?;
        for f in [
            store_path.clone(),
            layout.resolve(&cfg.node.signing_key),
            layout.resolve(&cfg.node.login_key),
        ] {
            crate::fsx::set_mode(&f, 0o600)?;
        }
        let host_key_pin = std::fs::read_to_string("/etc/ssh/ssh_host_ed25519_key.pub")
            .ok()
            .and_then(|t| ssh_key::PublicKey::from_openssh(t.trim()).ok())
            .map(|k| k.fingerprint(ssh_key::HashAlg::Sha256).to_string());
        Ok(InitInfo {
            allowed_signers_line: signers_line,
            login_public_key: login.to_openssh().map_err(|e| Error::Key(e.to_string()))?,
            host_key_pin,
        })
    }

    pub fn open(dir: &Path) -> Result<Node> {
        let cfg = Config::load(dir)?;
        let layout = Layout::new(dir);
        layout.create()?;
        for p in &cfg.peers {
            crate::fsx::create_dir_all(&layout.inbound_of(p))?;
            if p.transport == crate::config::Transport::Local {
                // A pulling peer finds its folder from the start, even empty.
                crate::fsx::create_dir_all(&layout.outbox_of(p))?;
            }
        }
        let store = open_store(&layout, &cfg)?;
        let key = signature::load_private_key(&layout.resolve(&cfg.node.signing_key))?;
        let signers = AllowedSigners::load(&layout.resolve(&cfg.node.allowed_signers))?;
        Ok(Node {
            layout,
            cfg,
            store,
            key,
            signers,
            validator: Validator::start()?,
            links: Default::default(),
            complete: Default::default(),
            strangers_seen: Default::default(),
        })
    }

    /// Read sedx.toml and allowed_signers again (SIGHUP): a fixed pin, a new
    /// peer or key takes effect without a restart. On any error the node keeps
    /// the configuration it has. Open connections are closed and every peer is
    /// tried again at once. The node's id and store cannot change this way.
    pub fn reload(&mut self) -> Result<()> {
        let cfg = Config::load(&self.layout.root)?;
        if cfg.node.id != self.cfg.node.id || cfg.node.store != self.cfg.node.store {
            return Err(Error::Config(
                "the node id and store cannot change while running; restart sedx for that".into(),
            ));
        }
        let signers = AllowedSigners::load(&self.layout.resolve(&cfg.node.allowed_signers))?;
        for p in &cfg.peers {
            crate::fsx::create_dir_all(&self.layout.inbound_of(p))?;
            if p.transport == crate::config::Transport::Local {
                crate::fsx::create_dir_all(&self.layout.outbox_of(p))?;
            }
            self.store.transport_retry_now(&p.id)?;
        }
        self.cfg = cfg;
        self.signers = signers;
        self.links.clear();
        Ok(())
    }

    pub fn signers(&self) -> &AllowedSigners {
        &self.signers
    }

    pub fn id(&self) -> &str {
        &self.cfg.node.id
    }

    /// One full pass: take what arrived (and answer it), seal what was dropped,
    /// ship what is sealed (batches only within the exchange window).
    pub fn pass(&mut self) -> PassReport {
        self.pass_with(false)
    }

    /// A pass; with `force`, the exchange window and retry waits are overridden
    /// (`--now`).
    pub fn pass_with(&mut self, force: bool) -> PassReport {
        let mut report = PassReport::default();
        if let Err(e) = crate::pull::pull_all(self, &mut report, force) {
            report.errors.push(format!("pull: {e}"));
        }
        // Acknowledgments leave while a long inbound queue is applied: every
        // ACK_FLUSH_SETS sets or second, whichever comes first.
        let (mut taken, mut last) = (0u32, std::time::Instant::now());
        let flush = |node: &mut Node, report: &mut PassReport| {
            taken += 1;
            if taken >= ACK_FLUSH_SETS || last.elapsed() >= std::time::Duration::from_secs(1) {
                (taken, last) = (0, std::time::Instant::now());
                ship_answers(node, report);
            }
        };
        if let Err(e) = receive::receive_all(self, &mut report, flush) {
            report.errors.push(format!("receive: {e}"));
        }
        if let Err(e) = outbound::release_due(self, &mut report) {
            report.errors.push(format!("release: {e}"));
        }
        // Overdue batches first: what is shipped below is not overdue yet.
        if let Err(e) = ship::resend_overdue(self, &mut report) {
            report.errors.push(format!("resend: {e}"));
        }
        if let Err(e) = outbound::seal_dropped(self, &mut report, |node, report| {
            ship_now(node, report, force)
        }) {
            report.errors.push(format!("seal: {e}"));
        }
        if let Err(e) = ship::ship_all(self, &mut report, force) {
            report.errors.push(format!("ship: {e}"));
        }
        if let Err(e) = ship::watch_pulls(self) {
            report.errors.push(format!("pulls: {e}"));
        }
        report
    }

    /// Seal what was dropped and ship what is queued (`sedx send`).
    pub fn send(&mut self, force: bool) -> PassReport {
        let mut report = PassReport::default();
        for (what, r) in [
            ("release", outbound::release_due(self, &mut report)),
            (
                "seal",
                outbound::seal_dropped(self, &mut report, |node, report| {
                    ship_now(node, report, force)
                }),
            ),
            ("ship", ship::ship_all(self, &mut report, force)),
        ] {
            if let Err(e) = r {
                report.errors.push(format!("{what}: {e}"));
            }
        }
        report
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
        while !name.marker(&dir).exists() {
            n += 1;
            dir = self.layout.sent.join(format!("dup-{n}"));
            if !dir.exists() {
                return Err(Error::Other(format!(
                    "set {name} of batch {batch_id} is not in sent/"
                )));
            }
        }
        set::copy_set(&name, &dir, &self.layout.outbound, 0o600)?;
        Ok(name)
    }

    /// A readable summary of the node's state.
    pub fn status(&self) -> Result<String> {
        Ok(crate::status::gather(self)?.text())
    }
}

/// Open the node's store, refusing one that is missing, empty, damaged or of
/// another node: a store lost under a node with history would otherwise start
/// afresh, apply archived batches again and wait forever for the next one.
fn open_store(layout: &Layout, cfg: &Config) -> Result<Store> {
    let path = layout.resolve(&cfg.node.store);
    let damaged = |detail: String| Error::StoreDamaged {
        path: path.clone(),
        detail: format!(
            "{detail}. 请用最近的备份恢复节点 / restore the node from its latest backup: \
             `sedx restore BACKUP_DIR --to NEW_NODE_DIR` (docs/operations.md); \
             新节点请用 / a new node is made with `sedx init`"
        ),
    };
    match std::fs::symlink_metadata(&path) {
        Err(_) => return Err(damaged("is missing".into())),
        Ok(m) if !m.is_file() => return Err(damaged("is not a regular file".into())),
        Ok(m) if m.len() == 0 => return Err(damaged("is empty (0 bytes)".into())),
        Ok(_) => {}
    }
    let store = Store::open(&path).map_err(|e| damaged(format!("cannot be opened ({e})")))?;
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
/// processes working one node would share scratch files and sequence numbers).
/// Released when dropped, or by the kernel when the process ends.
pub struct NodeLock {
    _file: std::fs::File,
}

/// Take the node's lock; with `wait`, wait for the holder to finish, else fail at
/// once with [`Error::Busy`] naming the holder.
pub fn lock(dir: &Path, what: &str, wait: bool) -> Result<NodeLock> {
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
            let holder = crate::text::printable(holder.trim(), 200).into_owned();
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
        crate::store::now()
    );
    Ok(NodeLock { _file: file })
}

/// Ship what is sealed so far (between the files of a pass).
/// Sets taken between two shipments of acknowledgments in a long inbound queue.
pub const ACK_FLUSH_SETS: u32 = 25;

/// Ship what is queued while the inbound queue is worked: acknowledgments go
/// whatever the window (batches still wait for it).
fn ship_answers(node: &mut Node, report: &mut PassReport) {
    if report.ship_failed {
        return;
    }
    let errors = report.errors.len();
    if let Err(e) = ship::ship_all(node, report, false) {
        report.errors.push(format!("ship: {e}"));
    }
    report.ship_failed = report.errors.len() > errors;
}

fn ship_now(node: &mut Node, report: &mut PassReport, force: bool) {
    // Outside the window batches wait; the pass's last ship counts them.
    if report.ship_failed || !(force || node.cfg.window().open_now()) {
        return;
    }
    let errors = report.errors.len();
    if let Err(e) = ship::ship_all(node, report, force) {
        report.errors.push(format!("ship: {e}"));
    }
    report.ship_failed = report.errors.len() > errors;
}

/// Move a set from `from` into `qdir` (a `dup-N/` below it when a set of that
/// name is there), with NAME.reason.txt, and record it for `sedx status`.
pub(crate) fn quarantine_set(
    node: &Node,
    peer: Option<&str>,
    name: &SetName,
    from: &Path,
    qdir: &Path,
    rej: &crate::error::Reject,
) -> Result<()> {
    let to = set::destination(name, from, qdir);
    write_reason(&to, name.as_str(), rej.code.as_str(), &rej.detail)?;
    set::move_into(name, from, &to)?;
    let kind = if peer.is_some() {
        crate::store::QuarantineKind::ReceivedSet
    } else {
        crate::store::QuarantineKind::OutgoingSet
    };
    node.store.log_quarantine(
        kind,
        peer,
        name.as_str(),
        rej.code,
        &rej.detail,
        &to.display().to_string(),
    )
}

/// Write a reason file next to a quarantined item.
pub(crate) fn write_reason(dir: &Path, stem: &str, code: &str, detail: &str) -> Result<()> {
    let text = format!("{code}\n{detail}\n");
    let path = dir.join(format!("{stem}.reason.txt"));
    crate::fsx::create_dir_all(dir)?;
    crate::fsx::write_atomic(&path, text.as_bytes())
}

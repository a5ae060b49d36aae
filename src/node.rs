//! A node: its folders, configuration, keys and store, and one full pass of
//! work (receive, seal, ship).

use crate::config::{Config, Layout, Role};
use crate::error::{Error, Result};
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
    /// Shipping failed in this pass: it is not tried again until the next.
    pub ship_failed: bool,
}

impl PassReport {
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
        layout.create()?;
        let cfg = Config::new(id, role);
        let keys = layout.resolve(&cfg.node.signing_key);
        crate::fsx::create_dir_all(keys.parent().unwrap_or(dir))?;
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
        Store::open(&layout.resolve(&cfg.node.store))?;
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
            crate::fsx::create_dir_all(&layout.inbound.join(&p.id))?;
        }
        let store = Store::open(&layout.resolve(&cfg.node.store))?;
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
        })
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
        if let Err(e) = receive::receive_all(self, &mut report) {
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
        set::copy_set(&name, &dir, &self.layout.outbound)?;
        Ok(name)
    }

    /// A readable summary of the node's state.
    pub fn status(&self) -> Result<String> {
        Ok(crate::status::gather(self)?.text())
    }
}

/// Ship what is sealed so far (between the files of a pass).
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

/// Write a reason file next to a quarantined item.
pub(crate) fn write_reason(dir: &Path, stem: &str, code: &str, detail: &str) -> Result<()> {
    let text = format!("{code}\n{detail}\n");
    let path = dir.join(format!("{stem}.reason.txt"));
    crate::fsx::create_dir_all(dir)?;
    crate::fsx::write_atomic(&path, text.as_bytes())
}

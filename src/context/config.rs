//! sedx.toml and the folder layout of a node.

use crate::context::error::{Error, IoContext, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "sedx.toml";

pub use crate::domain::Role;
pub use crate::wire::suite::Suite;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    pub id: String,
    pub role: Role,
    /// SQLite store, relative to the node folder unless absolute.
    #[serde(default = "default_store")]
    pub store: PathBuf,
    /// OpenSSH Ed25519 private key that signs outgoing sets.
    #[serde(default = "default_signing_key")]
    pub signing_key: PathBuf,
    /// OpenSSH private key for SFTP logins (separate from the signing key).
    #[serde(default = "default_login_key")]
    pub login_key: PathBuf,
    /// OpenSSH allowed_signers file; principals are node ids.
    #[serde(default = "default_allowed_signers")]
    pub allowed_signers: PathBuf,
    /// The suite of this node's channels unless a [[peer]] says otherwise:
    /// "ed25519" (SSHSIG, SHA-256 marker) or "sm2" (SM2 with SM3, SM3 marker).
    #[serde(default)]
    pub suite: Suite,
    /// SM2 private key (PKCS#8 PEM, as `openssl genpkey -algorithm EC -pkeyopt
    /// ec_paramgen_curve:SM2` writes it) that signs sets of SM2 channels.
    #[serde(default = "default_sm2_signing_key")]
    pub sm2_signing_key: PathBuf,
    /// SM2 public keys trusted, by node id: `NODE_ID BASE64` lines.
    #[serde(default = "default_sm2_trust")]
    pub sm2_trust: PathBuf,
    /// A plain file is taken only when its size is unchanged over this interval.
    #[serde(default = "default_settle_ms")]
    pub settle_ms: u64,
    /// gzip level for sealed payloads (1 fastest .. 9 smallest). Level 1 makes
    /// payloads about a third larger than 6 and seals several times faster.
    #[serde(default = "default_gzip_level")]
    pub gzip_level: u32,
    /// The watcher rescans this often even without events (events can be lost).
    #[serde(default = "default_scan_secs")]
    pub scan_interval_secs: u64,
    /// Largest payload (.xml.gz) accepted or pulled, in bytes.
    #[serde(default = "default_max_payload")]
    pub max_payload_bytes: u64,
    /// Largest document (a payload expanded, or a dropped .xml), in bytes.
    #[serde(default = "default_max_expanded")]
    pub max_expanded_bytes: u64,
    /// Largest ratio of a payload's expanded size to its compressed size (a
    /// compression bomb expands a thousand times; real batches 5-20 times).
    #[serde(default = "default_max_ratio")]
    pub max_expansion_ratio: u64,
    /// SQLite's page cache for the store, in MiB: memory on top of what sedx
    /// itself uses (under 64 MiB). A store of millions of records arriving in
    /// random key order wants its key indexes in memory (docs/performance.md).
    #[serde(default = "default_store_cache_mb")]
    pub store_cache_mb: u64,
    /// When batches are shipped, Asia/Shanghai time (R14): "HH:MM-HH:MM", or
    /// "always". Outside it batches queue; receiving and answering go on.
    #[serde(default = "default_window")]
    pub window: String,
    /// First wait after a transport error; doubled each time (with jitter).
    #[serde(default = "default_retry_base")]
    pub retry_base_secs: u64,
    #[serde(default = "default_retry_max")]
    pub retry_max_secs: u64,
    /// A batch not acknowledged this long after shipping raises an alert and is resent.
    #[serde(default = "default_ack_timeout")]
    pub ack_timeout_secs: u64,
    /// On a hub: a pulling peer that leaves a set waiting in its outbox folder
    /// this long has stopped pulling; an alert is raised (log and status).
    #[serde(default = "default_pull_alert")]
    pub pull_alert_secs: u64,
    /// `"folder"`: the accepted records of every applied batch are also written
    /// into delivered/ for local systems that take files (the inbound side as a
    /// file drop too); `"none"` (the default): they are in the store only.
    #[serde(default, skip_serializing_if = "Deliver::is_none")]
    pub deliver: Deliver,
    /// Export this node's own changed records by itself at every pass (R14;
    /// what local systems write into the store goes out without a `sedx export`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_export: bool,
    /// Where `sedx run` serves its overview page and /metrics ("127.0.0.1:9187");
    /// none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
}

fn default_window() -> String {
    "02:00-08:00".into()
}
fn default_retry_base() -> u64 {
    30
}
fn default_retry_max() -> u64 {
    3600
}
/// Where applied records go besides the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Deliver {
    #[default]
    None,
    Folder,
}

impl Deliver {
    fn is_none(&self) -> bool {
        *self == Deliver::None
    }
}

fn default_pull_alert() -> u64 {
    3600
}
fn default_ack_timeout() -> u64 {
    6 * 3600
}

/// The daily exchange window, in minutes of the day (Asia/Shanghai).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: u32,
    pub end: u32,
}

impl Window {
    pub fn parse(text: &str) -> Result<Window> {
        if text.trim() == "always" {
            return Ok(Window {
                start: 0,
                end: 24 * 60,
            });
        }
        let bad = || Error::Config(format!("window {text:?} is not HH:MM-HH:MM or \"always\""));
        let minutes = |t: &str| -> Result<u32> {
            let (h, m) = t.trim().split_once(':').ok_or_else(bad)?;
            let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
            if h > 24 || m > 59 || (h == 24 && m > 0) {
                return Err(bad());
            }
            Ok(h * 60 + m)
        };
        let (a, b) = text.split_once('-').ok_or_else(bad)?;
        Ok(Window {
            start: minutes(a)?,
            end: minutes(b)?,
        })
    }

    /// Whether a minute of the day falls in the window (which may wrap midnight).
    pub fn contains(&self, minute: u32) -> bool {
        if self.start <= self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        }
    }

    /// Whether the window is open now, Asia/Shanghai time.
    pub fn open_now(&self) -> bool {
        let t = time::OffsetDateTime::now_utc() + time::Duration::hours(8);
        self.contains(t.hour() as u32 * 60 + t.minute() as u32)
    }
}

fn default_store() -> PathBuf {
    "store.sqlite".into()
}
fn default_signing_key() -> PathBuf {
    "keys/signing_ed25519".into()
}
fn default_login_key() -> PathBuf {
    "keys/login_ed25519".into()
}
fn default_allowed_signers() -> PathBuf {
    "keys/allowed_signers".into()
}
fn default_sm2_signing_key() -> PathBuf {
    "keys/signing_sm2.pem".into()
}
fn default_sm2_trust() -> PathBuf {
    "keys/sm2_trust".into()
}
fn default_settle_ms() -> u64 {
    1000
}
fn default_gzip_level() -> u32 {
    1
}
fn default_scan_secs() -> u64 {
    10
}
fn default_max_payload() -> u64 {
    64 << 20
}
/// A real batch of 10,000 records is about 5 MB; 256 MiB holds half a million.
fn default_max_expanded() -> u64 {
    256 << 20
}
fn default_store_cache_mb() -> u64 {
    128
}
fn default_max_ratio() -> u64 {
    100
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    pub id: String,
    /// How sets travel to and from this peer.
    #[serde(default)]
    pub transport: Transport,
    #[serde(default)]
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default)]
    pub user: String,
    /// Login key for this peer; the node's login_key when absent.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// Folder on the peer's server where our sets land (its inbound/<our id>/).
    #[serde(default)]
    pub remote_inbound: String,
    /// Pinned host key: "SHA256:<base64>" or a known_hosts / .pub line.
    #[serde(default)]
    pub host_key: String,
    /// Pull mode: the folder on the hub's server where sets for us wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_outbox: Option<String>,
    /// Local mode (on the hub): the folder where sets for this peer wait to be
    /// pulled; `outbox/<peer id>` in the node folder when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_outbox: Option<PathBuf>,
    /// The folder where this peer's sets arrive (its SFTP drop folder, in a
    /// chroot of its own: scripts/peer-account.sh); `inbound/<peer id>` in the
    /// node folder when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_inbound: Option<PathBuf>,
    /// The inspection agency this peer speaks for (routes records by their
    /// responsible agency on a supervision node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency: Option<String>,
    /// This channel's suite ("ed25519" or "sm2"), agreed with the peer; the
    /// node's `suite` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<Suite>,
}

/// How sets travel between this node and a peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// We upload to the peer's SFTP server; it uploads to ours.
    #[default]
    Push,
    /// We upload to the peer (a hub) and download what waits for us in its
    /// outbox (we run no SFTP server).
    Pull,
    /// On the hub: sets for this peer are left in a local folder for it to pull;
    /// no SFTP client is needed.
    Local,
}

/// Settings of the notice's rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesSection {
    /// Category code prefix → first day of exchange (R9).
    #[serde(default = "crate::domain::rules::default_rollout")]
    pub rollout: BTreeMap<String, String>,
    /// National-level agencies (R16).
    #[serde(default)]
    pub national_agencies: Vec<String>,
}

impl Default for RulesSection {
    fn default() -> Self {
        RulesSection {
            rollout: crate::domain::rules::default_rollout(),
            national_agencies: Vec::new(),
        }
    }
}

fn default_port() -> u16 {
    22
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub node: NodeSection,
    #[serde(default)]
    pub rules: RulesSection,
    /// Never written as `peer = []`: an operator appends `[[peer]]` sections.
    #[serde(default, rename = "peer", skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpSection>,
    /// The console's users (`sedx user add` appends them).
    #[serde(default, rename = "user", skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<UserConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<AlertsSection>,
}

/// `[http]`: the console and /metrics of `sedx run`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// "127.0.0.1:9187"; a wider address is the operator's choice (with TLS).
    pub listen: String,
    /// TLS certificate chain and private key (PEM); both or neither.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// A login lasts this long without use.
    #[serde(default = "default_session_minutes")]
    pub session_minutes: u64,
}

fn default_session_minutes() -> u64 {
    480
}

/// What a console user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserRole {
    /// Reads every page; acts on nothing.
    Viewer,
    /// Also retries and dismisses quarantined sets, resends, sends now.
    Operator,
}

impl UserRole {
    pub fn as_str(self) -> &'static str {
        match self {
            UserRole::Viewer => "viewer",
            UserRole::Operator => "operator",
        }
    }
}

/// `[[user]]`: a console login; the password only as an argon2 hash (PHC string).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    pub role: UserRole,
    pub password: String,
}

/// `[alerts]`: where alerts go and when a condition becomes one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSection {
    /// An http(s) URL that receives each alert as a JSON POST.
    #[serde(default)]
    pub webhook: Option<String>,
    /// A program (run without a shell) that receives each alert as JSON on stdin.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(default = "default_check_secs")]
    pub check_secs: u64,
    /// A peer's transport failing this long.
    #[serde(default = "default_transport_secs")]
    pub transport_failing_secs: u64,
    /// A sequence gap held this long.
    #[serde(default = "default_gap_secs")]
    pub gap_held_secs: u64,
    /// Free space under the node folder below this.
    #[serde(default = "default_disk_mb")]
    pub disk_min_mb: u64,
}

fn default_check_secs() -> u64 {
    30
}
fn default_transport_secs() -> u64 {
    600
}
fn default_gap_secs() -> u64 {
    1800
}
fn default_disk_mb() -> u64 {
    1024
}

/// Node ids name folders and principals: keep them to a safe alphabet.
pub fn check_node_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !id.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "node id {id:?} must be 1-64 of A-Z a-z 0-9 - _"
        )))
    }
}

impl Config {
    pub fn new(id: &str, role: Role) -> Config {
        Config {
            node: NodeSection {
                id: id.to_string(),
                role,
                store: default_store(),
                signing_key: default_signing_key(),
                login_key: default_login_key(),
                allowed_signers: default_allowed_signers(),
                suite: Suite::Ed25519,
                sm2_signing_key: default_sm2_signing_key(),
                sm2_trust: default_sm2_trust(),
                settle_ms: default_settle_ms(),
                gzip_level: default_gzip_level(),
                scan_interval_secs: default_scan_secs(),
                max_payload_bytes: default_max_payload(),
                max_expanded_bytes: default_max_expanded(),
                max_expansion_ratio: default_max_ratio(),
                store_cache_mb: default_store_cache_mb(),
                window: default_window(),
                retry_base_secs: default_retry_base(),
                retry_max_secs: default_retry_max(),
                ack_timeout_secs: default_ack_timeout(),
                pull_alert_secs: default_pull_alert(),
                http: None,
                deliver: Deliver::None,
                auto_export: false,
            },
            rules: RulesSection::default(),
            peers: Vec::new(),
            http: None,
            users: Vec::new(),
            alerts: None,
        }
    }

    /// The rules' settings with today's date.
    pub fn policy(&self) -> crate::domain::rules::Policy {
        crate::domain::rules::Policy {
            rollout: self.rules.rollout.clone(),
            national_agencies: self.rules.national_agencies.clone(),
            today: crate::domain::rules::today_shanghai(),
        }
    }

    /// The bounds on expanding and reading a document.
    pub fn expand_limits(&self) -> crate::wire::validate::ExpandLimits {
        crate::wire::validate::ExpandLimits {
            max_bytes: self.node.max_expanded_bytes,
            max_ratio: self.node.max_expansion_ratio,
            doc: crate::wire::decode::Limits::default(),
        }
    }

    pub fn window(&self) -> Window {
        Window::parse(&self.node.window).unwrap_or(Window {
            start: 0,
            end: 24 * 60,
        })
    }

    /// The suite of the channel with `peer` (the node's own for itself).
    pub fn suite_of(&self, peer: &str) -> Suite {
        self.peer(peer)
            .and_then(|p| p.suite)
            .unwrap_or(self.node.suite)
    }

    /// Whether any channel uses the SM2 suite.
    pub fn uses_sm2(&self) -> bool {
        self.node.suite == Suite::Sm2 || self.peers.iter().any(|p| p.suite == Some(Suite::Sm2))
    }

    /// The peer that speaks for an inspection agency.
    pub fn peer_for_agency(&self, agency: &str) -> Option<&PeerConfig> {
        self.peers
            .iter()
            .find(|p| p.agency.as_deref() == Some(agency))
    }

    /// The PostgreSQL URL when `store` names a server
    /// (`postgres://user:password@host:port/database`), else None: a SQLite file.
    pub fn postgres_url(&self) -> Option<&str> {
        let s = self.node.store.to_str()?;
        (s.starts_with("postgres://") || s.starts_with("postgresql://")).then_some(s)
    }

    /// When the sedx.toml of `dir` was last changed (the console and the alerts
    /// open the node afresh when it was).
    pub fn modified(dir: &Path) -> Option<std::time::SystemTime> {
        std::fs::metadata(dir.join("sedx.toml"))
            .and_then(|m| m.modified())
            .ok()
    }

    pub fn load(dir: &Path) -> Result<Config> {
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).at(&path)?;
        let cfg: Config = toml::from_str(&text).map_err(|e| {
            let msg = e.message();
            let line = e
                .span()
                .map(|s| format!(" (line {})", text[..s.start].lines().count().max(1)))
                .unwrap_or_default();
            let fix = if msg.contains("duplicate key") && text.contains("peer = []") {
                "; remove the line `peer = []` (an earlier `sedx init` wrote it) and keep the [[peer]] sections"
            } else if msg.contains("unknown field") {
                "; a misspelt or unknown setting: use one of the names listed (docs/operations.md)"
            } else {
                ""
            };
            Error::Config(format!("{}{line}: {msg}{fix}", path.display()))
        })?;
        check_node_id(&cfg.node.id)?;
        Window::parse(&cfg.node.window)?;
        for p in &cfg.peers {
            check_node_id(&p.id)?;
            if p.id == cfg.node.id {
                return Err(Error::Config(format!("peer {} is this node", p.id)));
            }
            let need = |what: &str, v: &str| {
                if !v.trim().is_empty() {
                    return Ok(());
                }
                let how = match what {
                    "host_key" => format!(
                        "the pin of the peer's SSH server, \"SHA256:...\": take it from the peer's card (`sedx card` there, then `sedx peer add CARD` here), or run `ssh-keyscan -p {} {} | ssh-keygen -lf -` and confirm it with the peer's operator",
                        p.port,
                        if p.host.is_empty() { "HOST" } else { &p.host }
                    ),
                    "remote_outbox" => "the folder on the hub where sets for this node wait (its outbox/<this node's id>/)".into(),
                    "remote_inbound" => "the folder on the peer's server where this node's sets go (its inbound/<this node's id>/, or /inbound in a chrooted account)".into(),
                    _ => "from the peer's card or its operator".into(),
                };
                Err(Error::Config(format!(
                    "[[peer]] {}: {what} is missing: {how}",
                    p.id
                )))
            };
            if p.transport != Transport::Local {
                need("host", &p.host)?;
                need("user", &p.user)?;
                need("remote_inbound", &p.remote_inbound)?;
                need("host_key", &p.host_key)?;
            }
            if p.transport == Transport::Pull {
                need("remote_outbox", p.remote_outbox.as_deref().unwrap_or(""))?;
            }
        }
        Ok(cfg)
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        let text = toml::to_string_pretty(self).map_err(|e| Error::Config(e.to_string()))?;
        crate::context::files::write_atomic(&dir.join(CONFIG_FILE), text.as_bytes())
    }

    pub fn peer(&self, id: &str) -> Option<&PeerConfig> {
        self.peers.iter().find(|p| p.id == id)
    }
}

/// The folders of a node, resolved against its directory.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
    pub outbound: PathBuf,
    pub inbound: PathBuf,
    pub sent: PathBuf,
    pub archive: PathBuf,
    pub quarantine: PathBuf,
    /// Private scratch space (decompressed documents, sets being written).
    pub work: PathBuf,
    /// Applied records as files for local systems (`deliver = "folder"`).
    pub delivered: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Layout {
        Layout {
            root: root.to_path_buf(),
            outbound: root.join("outbound"),
            inbound: root.join("inbound"),
            sent: root.join("sent"),
            archive: root.join("archive"),
            quarantine: root.join("quarantine"),
            work: root.join(".work"),
            delivered: root.join("delivered"),
        }
    }

    /// Make the folders that are missing: private (0700) whatever the umask,
    /// but outbound/ (0770), where the local systems of the node's group drop
    /// files. A folder that exists keeps the mode the operator gave it.
    pub fn create(&self) -> Result<()> {
        for (d, mode) in [
            (&self.outbound, 0o770),
            (&self.inbound, 0o700),
            (&self.sent, 0o700),
            (&self.archive, 0o700),
            (&self.quarantine, 0o700),
            (&self.work, 0o700),
        ] {
            if std::fs::symlink_metadata(d).is_err() {
                crate::context::files::create_dir_mode(d, mode)?;
            }
        }
        Ok(())
    }

    /// Where a peer's sets arrive.
    pub fn inbound_of(&self, peer: &PeerConfig) -> PathBuf {
        match &peer.local_inbound {
            Some(dir) => self.resolve(dir),
            None => self.inbound.join(&peer.id),
        }
    }

    /// Where sets wait for a peer that pulls them (transport "local").
    pub fn outbox_of(&self, peer: &PeerConfig) -> PathBuf {
        match &peer.local_outbox {
            Some(dir) => self.resolve(dir),
            None => self.root.join("outbox").join(&peer.id),
        }
    }

    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.root.join(p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Window;

    #[test]
    fn windows() {
        let w = Window::parse("02:00-08:00").unwrap();
        assert!(w.contains(120) && w.contains(479) && !w.contains(480) && !w.contains(60));
        let night = Window::parse("22:00-02:00").unwrap();
        assert!(night.contains(23 * 60) && night.contains(30) && !night.contains(12 * 60));
        assert!(Window::parse("always").unwrap().contains(0));
        assert!(Window::parse("25:00-01:00").is_err() && Window::parse("2-8").is_err());
    }
}

//! The command line's arguments: every command and its options (clap).

use clap::{Parser, Subcommand};
use sedx::context::config::Role;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "sedx",
    version,
    about = "Special-equipment data exchange (监察 ⇄ 检验) over SFTP"
)]
pub struct Cli {
    /// The node folder (holds sedx.toml).
    #[arg(long, global = true, env = "SEDX_NODE", default_value = ".")]
    pub node: PathBuf,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    pub log_json: bool,
    /// When another sedx process holds the node, wait for it instead of failing.
    #[arg(long, global = true)]
    pub wait: bool,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Create a node: folders, sedx.toml, signing and login keys.
    Init(InitArgs),
    /// Validate a plain batch and seal it into outbound/ (the file itself stays).
    Seal(SealArgs),
    /// Verify a sealed set (checksum, signature of FROM, gzip, DTD, XSD).
    Verify(VerifyArgs),
    /// Validate an XML document (plain or .gz) against the batch or ack XSD.
    Validate(ValidateArgs),
    /// Watch the folders and work until stopped.
    Run(RunArgs),
    /// The node's state per peer: queues, last exchanges, acknowledgments, gaps, quarantine.
    /// Exits 0 when the exchange works, 1 on a warning (a gap, an unknown inbound
    /// folder), 2 when critical (transport failing, acknowledgments overdue).
    Status(StatusArgs),
    /// Seal what was dropped and ship what is queued, then exit.
    Send(SendArgs),
    /// Ship a sent batch again (the receiver answers "duplicate").
    Resend(ResendArgs),
    /// Load a batch file into this node's own register; nothing is sent.
    Import(ImportArgs),
    /// Write this node's records changed since the last acknowledged export into outbound/ (R14).
    Export(ExportArgs),
    /// Write synthetic city-scale data (equipment and reports) as batch files.
    Gen(GenArgs),
    /// Back up the node (store, configuration, keys, folders) into a new folder (R7).
    Backup(BackupArgs),
    /// Restore a backup into an empty folder.
    Restore(RestoreArgs),
    /// Clean a register export (CSV in UTF-8 or GBK, or a batch): a cleaned copy and
    /// a report of every problem (terminal, CSV, HTML) (R2, R3).
    Clean(CleanArgs),
    /// Compare the supervision register (A) with an agency's (B): missing records and
    /// field differences (terminal, CSV, HTML); optionally as discrepancy notices (R6).
    Reconcile(ReconcileArgs),
    /// Construction notices awaiting installation inspection (业务受理, R11).
    Acceptance,
    /// Equipment: `show CODE` gives the latest data and its history (查看设备信息).
    Equipment(EquipmentArgs),
    /// Fields a peer sent that were not its to change, and discrepancy notices (R4, R6).
    Discrepancies,
    /// Quarantined items (隔离区): list, show, retry once the cause is fixed, or
    /// dismiss with a reason. Runs beside the service.
    Quarantine(QuarantineArgs),
    /// Responsibility proposals (R12) and change requests (R13) awaiting this
    /// supervision node's decision (待决定), oldest first.
    Decisions,
    /// Check the node: sedx.toml (unknown keys named), keys and file modes, trust,
    /// routing, and for each peer the connection, host key pin, login and a probe
    /// file in its inbound folder. Each failure says the fix. Exits 0, 1
    /// (warnings) or 2 (failures).
    Check(CheckArgs),
    /// Write this node's participant card (参与方名片): id, role, keys, how its
    /// SFTP server is reached and its host-key pin. `{peer}` in --user,
    /// --inbound and --outbox stands for the reading node's id.
    Card(CardArgs),
    /// Peers: `add CARD` joins the node of a participant card.
    Peer(PeerArgs),
    /// Change a peer's section of sedx.toml: where its sets arrive and wait here
    /// (its drop folders in its SFTP chroot: scripts/peer-account.sh sets them),
    /// and how this node logs in to it.
    PeerSet(PeerSetArgs),
    /// The console's users (控制台用户): `add NAME --role operator|viewer` reads
    /// the password (from the terminal, or one line of stdin) and appends a
    /// [[user]] with its argon2 hash to sedx.toml; `list` shows them.
    User(UserArgs),
    /// Two nodes on this machine exchanging over a private sshd (see scripts/demo.sh).
    Demo(sedx::tools::demo::DemoArgs),
}

#[derive(clap::Args)]
pub struct InitArgs {
    pub dir: PathBuf,
    #[arg(long = "id", visible_alias = "node-id")]
    pub id: String,
    #[arg(long, value_enum)]
    pub role: Role,
    /// The suite of this node's channels: ed25519 (SSHSIG, SHA-256) or sm2
    /// (SM2 signatures with SM3, SM3 markers: GB/T 39786). Both signing keys
    /// are made either way; a [[peer]] may set its own.
    #[arg(long, value_enum, default_value_t = sedx::wire::suite::Suite::Ed25519)]
    pub suite: sedx::wire::suite::Suite,
}

#[derive(clap::Args)]
pub struct SealArgs {
    pub file: PathBuf,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The set's .xml.gz (or its marker, .sha256 or .sm3).
    pub set: PathBuf,
    /// The node id the set must be signed by.
    #[arg(long)]
    pub from: String,
}

#[derive(clap::Args)]
pub struct ValidateArgs {
    pub file: PathBuf,
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// One full pass, then exit (non-zero if anything failed).
    #[arg(long)]
    pub once: bool,
    /// Ship even outside the exchange window.
    #[arg(long)]
    pub now: bool,
    /// Serve the console (控制台) and /metrics on this address (127.0.0.1:9187,
    /// or a bare port for loopback); `[http]` in sedx.toml does the same.
    #[arg(long)]
    pub http: Option<String>,
}

#[derive(clap::Args)]
pub struct StatusArgs {
    /// One JSON document, for scripts.
    #[arg(long)]
    pub json: bool,
    /// One line: OK, WARNING or CRITICAL and why (for monitoring checks).
    #[arg(long)]
    pub summary: bool,
}

#[derive(clap::Args)]
pub struct SendArgs {
    /// Ship even outside the exchange window and without waiting to retry.
    #[arg(long)]
    pub now: bool,
}

#[derive(clap::Args)]
pub struct ResendArgs {
    pub batch_id: String,
}

#[derive(clap::Args)]
pub struct ImportArgs {
    pub file: PathBuf,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Records per batch.
    #[arg(long, default_value_t = 10_000)]
    pub batch_size: u64,
}

#[derive(clap::Args)]
pub struct GenArgs {
    /// Folder for the batch files and manifest.csv.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 100_000)]
    pub records: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Share of equipment records with one injected defect (0.0-1.0).
    #[arg(long, default_value_t = 0.0)]
    pub defects: f64,
    /// Share of reports that are non-statutory.
    #[arg(long, default_value_t = 0.02)]
    pub non_statutory: f64,
    #[arg(long, default_value_t = 10_000)]
    pub batch_size: u64,
    /// The sending node (default: insp-city, or sup-city with --side supervision).
    #[arg(long)]
    pub from: Option<String>,
    #[arg(long)]
    pub to: Option<String>,
    /// One agency for every record (default: the city's mix of agencies).
    #[arg(long)]
    pub agency: Option<String>,
    /// Whose register: inspection (equipment and reports) or supervision
    /// (registration data, no reports: `import` on a hub refuses nothing).
    #[arg(long, value_enum, default_value_t = sedx::domain::Role::Inspection)]
    pub side: sedx::domain::Role,
}

#[derive(clap::Args)]
pub struct BackupArgs {
    pub dest: PathBuf,
}

#[derive(clap::Args)]
pub struct RestoreArgs {
    pub backup: PathBuf,
    /// The folder to restore the node into.
    #[arg(long)]
    pub to: PathBuf,
}

#[derive(clap::Args)]
pub struct CleanArgs {
    pub file: PathBuf,
    /// Folder for the cleaned copy and the reports (default: beside the input).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Exit 3 when more problems (rows' problems, each with its code) than
    /// this are found, as `reconcile` does.
    #[arg(long, default_value_t = 0)]
    pub max_problems: u64,
}

#[derive(clap::Args)]
pub struct ReconcileArgs {
    pub a: PathBuf,
    pub b: PathBuf,
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Drop the differences as discrepancy notices into this node's outbound/
    /// (an inspection node; `--node`).
    #[arg(long)]
    pub notices: bool,
    /// The agency the notices come from.
    #[arg(long, default_value = sedx::tools::demo::CITY_INSTITUTE)]
    pub agency: String,
    /// Compare only the fields discrepancy notices carry (R6), not every field.
    #[arg(long)]
    pub r6_only: bool,
    /// Exit 3 when more problems (records missing on either side, differing
    /// fields) than this are found, as `clean` does.
    #[arg(long, default_value_t = 0)]
    pub max_problems: u64,
}

#[derive(clap::Args)]
pub struct EquipmentArgs {
    #[command(subcommand)]
    pub cmd: EquipmentCmd,
}

#[derive(clap::Args)]
pub struct QuarantineArgs {
    #[command(subcommand)]
    pub cmd: QuarantineCmd,
}

#[derive(clap::Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub cmd: UserCmd,
}

#[derive(Subcommand)]
pub enum UserCmd {
    /// Add a user; the running service sees it at the next login.
    Add {
        name: String,
        #[arg(long, value_enum)]
        role: ConsoleRole,
    },
    /// The users and their roles.
    List,
}

/// A console user's role.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ConsoleRole {
    /// Reads every page.
    Viewer,
    /// Also acts: retry, dismiss, resend, send now.
    Operator,
}

#[derive(clap::Args)]
pub struct CheckArgs {
    /// Do not connect to the peers.
    #[arg(long)]
    pub offline: bool,
}

#[derive(clap::Args)]
pub struct CardArgs {
    /// Host name or address peers reach this node's SFTP server at.
    #[arg(long, default_value = "")]
    pub host: String,
    #[arg(long, default_value_t = 22)]
    pub port: u16,
    /// The account peers log in as (per-peer accounts: sedx-{peer}).
    #[arg(long, default_value = "sedx-{peer}")]
    pub user: String,
    /// Where a peer's sets go on this server, as the peer's login sees it.
    #[arg(long, default_value = "/inbound")]
    pub inbound: String,
    /// On a hub: where sets wait for a pulling peer.
    #[arg(long, default_value = "/outbox")]
    pub outbox: String,
    /// The SSH server's host key: a .pub file or a SHA256 pin
    /// (default: /etc/ssh/ssh_host_ed25519_key.pub, the system sshd's).
    #[arg(long)]
    pub host_key: Option<String>,
    /// The inspection agency this node speaks for.
    #[arg(long)]
    pub agency: Option<String>,
    /// Write the card here (default: print it).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct PeerArgs {
    #[command(subcommand)]
    pub cmd: PeerCmd,
}

#[derive(clap::Args)]
pub struct PeerSetArgs {
    pub peer: String,
    /// Folder where the peer's sets arrive (local_inbound).
    #[arg(long)]
    pub inbound: Option<PathBuf>,
    /// Folder where sets wait for a pulling peer (local_outbox).
    #[arg(long)]
    pub outbox: Option<PathBuf>,
    /// The account this node logs in as on the peer's server.
    #[arg(long)]
    pub user: Option<String>,
    /// The peer's folder for our sets, as its server shows it (e.g. /inbound).
    #[arg(long)]
    pub remote_inbound: Option<String>,
}

#[derive(Subcommand)]
pub enum PeerCmd {
    /// Add the node of a participant card: its [[peer]] section, its signing key
    /// in allowed_signers, its inbound folder; prints what the SFTP side needs.
    Add {
        card: PathBuf,
        /// push (both run SFTP servers), pull (this node pulls from the hub), or
        /// local (on the hub: the peer pulls from here).
        #[arg(long, default_value = "push")]
        transport: String,
        /// The agency the peer speaks for (default: the card's).
        #[arg(long)]
        agency: Option<String>,
        /// The channel's suite, ed25519 or sm2 (default: the card's); the peer
        /// must set the same.
        #[arg(long, value_enum)]
        suite: Option<sedx::wire::suite::Suite>,
    },
}

#[derive(Subcommand)]
pub enum QuarantineCmd {
    /// Open items, newest first (`--all`: retried and dismissed ones too).
    List {
        #[arg(long)]
        all: bool,
    },
    /// One item: its reason, its files, the reasons per record, what to do next.
    Show { id: i64 },
    /// Put the item back through the pipeline: a received set into its peer's
    /// inbound folder, a drop or its fixed refused records into outbound/.
    Retry {
        id: i64,
        /// Who retries it (default: the login, or SUDO_USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Close the item without retrying it; its files stay in quarantine/.
    Dismiss {
        id: i64,
        /// Why (kept with the item).
        #[arg(long)]
        reason: String,
        #[arg(long)]
        by: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum EquipmentCmd {
    /// Latest data of a piece of equipment (old registration codes are followed).
    Show { code: String },
}

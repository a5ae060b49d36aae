//! The sedx command line.

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use sedx::config::Role;
use sedx::node::{Node, NodeLock};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "sedx",
    version,
    about = "Special-equipment data exchange (监察 ⇄ 检验) over SFTP"
)]
struct Cli {
    /// The node folder (holds sedx.toml).
    #[arg(long, global = true, env = "SEDX_NODE", default_value = ".")]
    node: PathBuf,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    log_json: bool,
    /// When another sedx process holds the node, wait for it instead of failing.
    #[arg(long, global = true)]
    wait: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a node: folders, sedx.toml, signing and login keys.
    Init {
        dir: PathBuf,
        #[arg(long = "id", visible_alias = "node-id")]
        id: String,
        #[arg(long, value_enum)]
        role: Role,
    },
    /// Validate a plain batch and seal it into outbound/ (the file itself stays).
    Seal { file: PathBuf },
    /// Verify a sealed set (checksum, signature of FROM, gzip, DTD, XSD).
    Verify {
        /// The set's .xml.gz (or its .sha256 marker).
        set: PathBuf,
        /// The node id the set must be signed by.
        #[arg(long)]
        from: String,
    },
    /// Validate an XML document (plain or .gz) against the batch or ack XSD.
    Validate { file: PathBuf },
    /// Watch the folders and work until stopped.
    Run {
        /// One full pass, then exit (non-zero if anything failed).
        #[arg(long)]
        once: bool,
        /// Ship even outside the exchange window.
        #[arg(long)]
        now: bool,
    },
    /// The node's state per peer: queues, last exchanges, acknowledgments, gaps, quarantine.
    /// Exits 0 when the exchange works, 1 on a warning (a gap, an unknown inbound
    /// folder), 2 when critical (transport failing, acknowledgments overdue).
    Status {
        /// One JSON document, for scripts.
        #[arg(long)]
        json: bool,
        /// One line: OK, WARNING or CRITICAL and why (for monitoring checks).
        #[arg(long)]
        summary: bool,
    },
    /// Seal what was dropped and ship what is queued, then exit.
    Send {
        /// Ship even outside the exchange window and without waiting to retry.
        #[arg(long)]
        now: bool,
    },
    /// Ship a sent batch again (the receiver answers "duplicate").
    Resend { batch_id: String },
    /// Load a batch file into this node's own register; nothing is sent.
    Import { file: PathBuf },
    /// Write this node's records changed since the last acknowledged export into outbound/ (R14).
    Export {
        /// Records per batch.
        #[arg(long, default_value_t = 10_000)]
        batch_size: u64,
    },
    /// Write synthetic city-scale data (equipment and reports) as batch files.
    Gen {
        /// Folder for the batch files and manifest.csv.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 100_000)]
        records: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Share of equipment records with one injected defect (0.0-1.0).
        #[arg(long, default_value_t = 0.0)]
        defects: f64,
        /// Share of reports that are non-statutory.
        #[arg(long, default_value_t = 0.02)]
        non_statutory: f64,
        #[arg(long, default_value_t = 10_000)]
        batch_size: u64,
        #[arg(long, default_value = "insp-city")]
        from: String,
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value = sedx::demo::CITY_INSTITUTE)]
        agency: String,
    },
    /// Back up the node (store, configuration, keys, folders) into a new folder (R7).
    Backup { dest: PathBuf },
    /// Restore a backup into an empty folder.
    Restore {
        backup: PathBuf,
        /// The folder to restore the node into.
        #[arg(long)]
        to: PathBuf,
    },
    /// Clean a register export (CSV in UTF-8 or GBK, or a batch): a cleaned copy and
    /// a report of every problem (terminal, CSV, HTML) (R2, R3).
    Clean {
        file: PathBuf,
        /// Folder for the cleaned copy and the reports (default: beside the input).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Exit non-zero when more problems than this remain.
        #[arg(long, default_value_t = 0)]
        max_problems: u64,
    },
    /// Compare the supervision register (A) with an agency's (B): missing records and
    /// field differences (terminal, CSV, HTML); optionally as discrepancy notices (R6).
    Reconcile {
        a: PathBuf,
        b: PathBuf,
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Drop the differences as discrepancy notices into this node's outbound/
        /// (an inspection node; `--node`).
        #[arg(long)]
        notices: bool,
        /// The agency the notices come from.
        #[arg(long, default_value = sedx::demo::CITY_INSTITUTE)]
        agency: String,
        /// Exit non-zero when more problems than this remain.
        #[arg(long, default_value_t = u64::MAX)]
        max_problems: u64,
    },
    /// Construction notices awaiting installation inspection (业务受理, R11).
    Acceptance,
    /// Equipment: `show CODE` gives the latest data and its history (查看设备信息).
    Equipment {
        #[command(subcommand)]
        cmd: EquipmentCmd,
    },
    /// Fields a peer sent that were not its to change, and discrepancy notices (R4, R6).
    Discrepancies,
    /// Responsibility proposals (R12) and change requests (R13) awaiting this
    /// supervision node's decision (待决定), oldest first.
    Decisions,
    /// Change a peer's section of sedx.toml: where its sets arrive and wait here
    /// (its drop folders in its SFTP chroot: scripts/peer-account.sh sets them),
    /// and how this node logs in to it.
    PeerSet {
        peer: String,
        /// Folder where the peer's sets arrive (local_inbound).
        #[arg(long)]
        inbound: Option<PathBuf>,
        /// Folder where sets wait for a pulling peer (local_outbox).
        #[arg(long)]
        outbox: Option<PathBuf>,
        /// The account this node logs in as on the peer's server.
        #[arg(long)]
        user: Option<String>,
        /// The peer's folder for our sets, as its server shows it (e.g. /inbound).
        #[arg(long)]
        remote_inbound: Option<String>,
    },
    /// Two nodes on this machine exchanging over a private sshd (see scripts/demo.sh).
    Demo(sedx::demo::DemoArgs),
}

#[derive(Subcommand)]
enum EquipmentCmd {
    /// Latest data of a piece of equipment (old registration codes are followed).
    Show { code: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("SEDX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_json {
        builder.json().init();
    } else {
        // Colours only for a person at a terminal, never into files and journals.
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        builder.with_target(false).with_ansi(ansi).init();
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sedx: {e:#}");
            if matches!(e.downcast_ref(), Some(sedx::Error::Busy { .. })) {
                ExitCode::from(EXIT_BUSY)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn open(dir: &Path) -> anyhow::Result<Node> {
    Node::open(dir).with_context(|| format!("opening node {}", dir.display()))
}

/// Open a node for a command that changes it: one such process per node.
fn open_exclusive(dir: &Path, what: &str, wait: bool) -> anyhow::Result<(NodeLock, Node)> {
    let lock = sedx::node::lock(dir, what, wait)?;
    Ok((lock, open(dir)?))
}

/// Exit status of a command refused because another process holds the node
/// (EX_TEMPFAIL: try again later).
const EXIT_BUSY: u8 = 75;

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let wait = cli.wait;
    match cli.cmd {
        Cmd::Init { dir, id, role } => {
            let info = Node::init(&dir, &id, role)?;
            println!("node {id} ({}) created in {}", role.as_str(), dir.display());
            println!();
            println!("Give each peer this line for its allowed_signers file:");
            println!("  {}", info.allowed_signers_line);
            println!("Give each peer's SFTP server this login key (authorized_keys):");
            println!("  {}", info.login_public_key);
            match info.host_key_pin {
                Some(pin) => println!("This machine's SSH host key pin (for peers' host_key): {pin}"),
                None => println!("No SSH host key found here; peers pin your SFTP server's key with `ssh-keygen -l -E sha256 -f KEY.pub`."),
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Seal { file } => {
            let (_lock, mut node) = open_exclusive(&cli.node, "seal", wait)?;
            let names = sedx::outbound::seal_file(&mut node, &file, true)?;
            if names.is_empty() {
                println!(
                    "nothing to send from {} (see the log and quarantine/)",
                    file.display()
                );
            }
            for name in names {
                println!("{}", name.payload(&node.layout.outbound).display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Verify { set, from } => {
            let node = open(&cli.node)?;
            let file = set
                .file_name()
                .and_then(|n| n.to_str())
                .context("no file name")?;
            let (name, _) = sedx::set::SetName::of_file(file)
                .context("not a part of a sealed set (NAME.xml.gz[.sig|.sha256])")?;
            let dir = set
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let v = sedx::verify::verify_set(
                dir,
                &name,
                &from,
                node.signers(),
                node.cfg.node.max_payload_bytes,
            )?;
            let mut schemas = sedx::validate::Schemas::new()?;
            let tmp = tempfile_in(&node.layout.work)?;
            sedx::validate::expand(&name.payload(dir), tmp.path(), node.cfg.expand_limits())?;
            let scan = schemas.check(tmp.path(), v.kind)?;
            println!(
                "OK {name}: sha256 {} signed by {from} ({}), {} document, {} records",
                v.digest.sha256_hex(),
                v.signer,
                v.kind.root(),
                scan.records
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Validate { file } => {
            let mut schemas = sedx::validate::Schemas::new()?;
            // Read as a node reads what it receives: decoded once into a scratch
            // copy (encoding, limits, no DOCTYPE), then checked.
            let gz = file.extension().is_some_and(|e| e == "gz");
            let tmp = tempfile_in(&std::env::temp_dir())?;
            let limits = sedx::validate::ExpandLimits {
                max_bytes: 4 << 30,
                max_ratio: u64::MAX,
                doc: sedx::decode::Limits::default(),
            };
            if gz {
                sedx::validate::expand(&file, tmp.path(), limits)?;
            } else {
                sedx::decode::normalize_file(&file, tmp.path(), limits.doc, limits.max_bytes)?;
            }
            let path = tmp.path();
            let f = std::fs::File::open(path).with_context(|| path.display().to_string())?;
            let root = sedx::document::peek_root(std::io::BufReader::new(f))?;
            let kind = root.kind;
            let scan = schemas.check(path, kind)?;
            println!(
                "{} is a valid {} document ({} records)",
                file.display(),
                kind.root(),
                scan.records
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Run { once, now } => {
            let (_lock, mut node) = open_exclusive(&cli.node, "run", wait)?;
            if once {
                let r = node.pass_with(now);
                report(&r);
                if !r.errors.is_empty() {
                    bail!("{} error(s); first: {}", r.errors.len(), r.errors[0]);
                }
                return Ok(ExitCode::SUCCESS);
            }
            // SIGTERM (systemd, kill) and Ctrl-C stop between passes; every step is
            // durable anyway, so a pass never needs to be cut short.
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
                signal_hook::flag::register(sig, stop.clone())?;
            }
            tracing::info!(node = node.id(), "running");
            sedx::watch::run(&mut node, now, report, || {
                stop.load(std::sync::atomic::Ordering::Relaxed)
            })?;
            tracing::info!(node = node.id(), "stopped");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Status { json, summary } => {
            let node = open(&cli.node)?;
            let status = sedx::status::gather(&node)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else if summary {
                println!("{}", status.summary());
            } else {
                print!("{}", status.text());
                println!("{}", status.summary());
            }
            Ok(ExitCode::from(status.health().0.exit_code()))
        }
        Cmd::Send { now } => {
            let (_lock, mut node) = open_exclusive(&cli.node, "send", wait)?;
            let r = node.send(now);
            report(&r);
            if !r.errors.is_empty() {
                bail!("{} error(s); first: {}", r.errors.len(), r.errors[0]);
            }
            println!(
                "sealed {}, shipped {}, queued for the window {}",
                r.sealed, r.shipped, r.waiting_for_window
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Resend { batch_id } => {
            let node = open(&cli.node)?;
            let name = node.resend(&batch_id)?;
            println!("{name} is back in outbound/ and ships on the next pass");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Import { file } => {
            let (_lock, mut node) = open_exclusive(&cli.node, "import", wait)?;
            let r = sedx::outbound::import_file(&mut node, &file)?;
            println!(
                "{} record(s) in the register, {} refused (see quarantine/)",
                r.applied, r.refused
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Export { batch_size } => {
            let (_lock, mut node) = open_exclusive(&cli.node, "export", wait)?;
            let done = sedx::export::export(&mut node, batch_size.max(1))?;
            println!(
                "{} record(s) in {} batch file(s)",
                done.records,
                done.files.len()
            );
            for f in done.files {
                println!("  {}", f.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Gen {
            out,
            records,
            seed,
            defects,
            non_statutory,
            batch_size,
            from,
            to,
            agency,
        } => {
            let opts = sedx::gen::GenOptions {
                out,
                records,
                seed,
                defects: defects.clamp(0.0, 1.0),
                non_statutory: non_statutory.clamp(0.0, 1.0),
                batch_size: batch_size.max(3),
                from,
                to,
                agency,
            };
            let g = sedx::gen::generate(&opts)?;
            println!(
                "{} records ({} equipment, {} reports, {} non-statutory) in {} files; defects: {:?}",
                g.records, g.equipment, g.reports, g.non_statutory, g.files, g.defects
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Backup { dest } => {
            let files = sedx::backup::backup(&cli.node, &dest)?;
            println!(
                "backed up {} into {} ({files} files)",
                cli.node.display(),
                dest.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Restore { backup, to } => {
            sedx::backup::restore(&backup, &to)?;
            println!("restored {} into {}", backup.display(), to.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Clean {
            file,
            out,
            max_problems,
        } => {
            let report = sedx::clean::clean(&file, out.as_deref())?;
            print!("{}", sedx::clean::summary(&report));
            if report.problems() > max_problems {
                eprintln!(
                    "sedx: {} problems (more than {max_problems})",
                    report.problems()
                );
                return Ok(ExitCode::from(3));
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Reconcile {
            a,
            b,
            out,
            notices,
            agency,
            max_problems,
        } => {
            let r = sedx::reconcile::reconcile(&a, &b, &out)?;
            print!("{}", sedx::reconcile::summary(&r));
            if notices {
                let (path, n) = sedx::reconcile::notices(&r, &cli.node, &agency)?;
                println!("{n} discrepancy notice(s) in {}", path.display());
            }
            if r.problems() > max_problems {
                eprintln!("sedx: {} problems (more than {max_problems})", r.problems());
                return Ok(ExitCode::from(3));
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Acceptance => {
            let node = open(&cli.node)?;
            let queue = sedx::views::acceptance(&node.store)?;
            println!(
                "{} construction notice(s) awaiting installation inspection",
                queue.len()
            );
            for a in queue {
                println!(
                    "  {} category {} {} {} planned {} agency {}",
                    a.notice, a.category, a.user_unit, a.address, a.planned_start, a.agency
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Equipment {
            cmd: EquipmentCmd::Show { code },
        } => {
            let node = open(&cli.node)?;
            let code = sedx::domain::ids::normalize_code(&code);
            match sedx::views::equipment_show(&node.store, &code)? {
                Some(view) => print!("{view}"),
                None => bail!("no equipment {code} on record"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Decisions => {
            let node = open(&cli.node)?;
            let list = sedx::views::undecided(&node.store, None)?;
            println!("待决定 {} awaiting decision", list.len());
            for u in list {
                println!(
                    "  {} {} {} equipment {} agency {} from {}",
                    u.date, u.kind, u.id, u.registration_code, u.agency, u.from
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Discrepancies => {
            let node = open(&cli.node)?;
            let list = sedx::views::discrepancies(&node.store)?;
            println!("{} discrepanc(ies)", list.len());
            for d in list {
                println!("  {d}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::PeerSet {
            peer,
            inbound,
            outbox,
            user,
            remote_inbound,
        } => {
            let mut cfg = sedx::config::Config::load(&cli.node)?;
            let p = cfg
                .peers
                .iter_mut()
                .find(|p| p.id == peer)
                .with_context(|| {
                    format!("no peer {peer} in sedx.toml; add its [[peer]] section first")
                })?;
            if inbound.is_some() {
                p.local_inbound = inbound;
            }
            if outbox.is_some() {
                p.local_outbox = outbox;
            }
            if let Some(user) = user {
                p.user = user;
            }
            if let Some(dir) = remote_inbound {
                p.remote_inbound = dir;
            }
            cfg.save(&cli.node)?;
            println!("peer {peer}: sedx.toml changed (restart the service to use it)");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Demo(args) => {
            sedx::demo::run(&args)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn report(r: &sedx::node::PassReport) {
    if r.did_something() || !r.errors.is_empty() || r.held > 0 {
        tracing::info!(
            sealed = r.sealed,
            shipped = r.shipped,
            applied = r.applied,
            duplicates = r.duplicates,
            acks = r.acks_received,
            quarantined = r.quarantined,
            held = r.held,
            errors = r.errors.len(),
            "pass"
        );
    }
    for e in r.unlogged_errors() {
        tracing::error!("{e}");
    }
}

fn tempfile_in(dir: &Path) -> anyhow::Result<sedx::fsx::Scratch> {
    std::fs::create_dir_all(dir)?;
    Ok(sedx::fsx::Scratch::new_in(dir, ".sedx-cli"))
}

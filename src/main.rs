//! The sedx command line.

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use sedx::context::config::Role;
use sedx::context::node::{Node, NodeLock};
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
        /// The sending node (default: insp-city, or sup-city with --side supervision).
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        /// One agency for every record (default: the city's mix of agencies).
        #[arg(long)]
        agency: Option<String>,
        /// Whose register: inspection (equipment and reports) or supervision
        /// (registration data, no reports: `import` on a hub refuses nothing).
        #[arg(long, value_enum, default_value_t = sedx::domain::Role::Inspection)]
        side: sedx::domain::Role,
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
        /// Exit 3 when more problems (rows' problems, each with its code) than
        /// this are found, as `reconcile` does.
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
        #[arg(long, default_value = sedx::tools::demo::CITY_INSTITUTE)]
        agency: String,
        /// Compare only the fields discrepancy notices carry (R6), not every field.
        #[arg(long)]
        r6_only: bool,
        /// Exit 3 when more problems (records missing on either side, differing
        /// fields) than this are found, as `clean` does.
        #[arg(long, default_value_t = 0)]
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
    /// Quarantined items (隔离区): list, show, retry once the cause is fixed, or
    /// dismiss with a reason. Runs beside the service.
    Quarantine {
        #[command(subcommand)]
        cmd: QuarantineCmd,
    },
    /// Responsibility proposals (R12) and change requests (R13) awaiting this
    /// supervision node's decision (待决定), oldest first.
    Decisions,
    /// Check the node: sedx.toml (unknown keys named), keys and file modes, trust,
    /// routing, and for each peer the connection, host key pin, login and a probe
    /// file in its inbound folder. Each failure says the fix. Exits 0, 1
    /// (warnings) or 2 (failures).
    Check {
        /// Do not connect to the peers.
        #[arg(long)]
        offline: bool,
    },
    /// Write this node's participant card (参与方名片): id, role, keys, how its
    /// SFTP server is reached and its host-key pin. `{peer}` in --user,
    /// --inbound and --outbox stands for the reading node's id.
    Card {
        /// Host name or address peers reach this node's SFTP server at.
        #[arg(long, default_value = "")]
        host: String,
        #[arg(long, default_value_t = 22)]
        port: u16,
        /// The account peers log in as (per-peer accounts: sedx-{peer}).
        #[arg(long, default_value = "sedx-{peer}")]
        user: String,
        /// Where a peer's sets go on this server, as the peer's login sees it.
        #[arg(long, default_value = "/inbound")]
        inbound: String,
        /// On a hub: where sets wait for a pulling peer.
        #[arg(long, default_value = "/outbox")]
        outbox: String,
        /// The SSH server's host key: a .pub file or a SHA256 pin
        /// (default: /etc/ssh/ssh_host_ed25519_key.pub, the system sshd's).
        #[arg(long)]
        host_key: Option<String>,
        /// The inspection agency this node speaks for.
        #[arg(long)]
        agency: Option<String>,
        /// Write the card here (default: print it).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Peers: `add CARD` joins the node of a participant card.
    Peer {
        #[command(subcommand)]
        cmd: PeerCmd,
    },
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
    Demo(sedx::tools::demo::DemoArgs),
}

#[derive(Subcommand)]
enum PeerCmd {
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
    },
}

#[derive(Subcommand)]
enum QuarantineCmd {
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
enum EquipmentCmd {
    /// Latest data of a piece of equipment (old registration codes are followed).
    Show { code: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("SEDX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Times as operators read them: Shanghai time, with its offset (the
    // exchange window is in it).
    let timer = tracing_subscriber::fmt::time::OffsetTime::new(
        time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC),
        time::format_description::well_known::Rfc3339,
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_timer(timer)
        .with_writer(std::io::stderr);
    if cli.log_json {
        builder.json().init();
    } else {
        // Colours only for a person at a terminal, never into files and journals.
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        builder.with_target(false).with_ansi(ansi).init();
    }
    // Every line names the node it is about (several nodes may log to one place).
    let node_id = sedx::context::config::Config::load(&cli.node)
        .ok()
        .map(|c| c.node.id);
    let _span = node_id.map(|id| tracing::info_span!("sedx", node = %id).entered());
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
    let lock = sedx::context::node::lock(dir, what, wait)?;
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
                Some(pin) => println!(
                    "The system sshd's host key pin (/etc/ssh/ssh_host_ed25519_key.pub, port 22): {pin}\n\
                     Peers pin it only if they reach this node through that server; for another sshd\n\
                     (a private one, as in the demo and tests) give its key: `ssh-keygen -l -E sha256 -f ITS_KEY.pub`."
                ),
                None => println!("No system SSH host key here; peers pin the key of the server they reach: `ssh-keygen -l -E sha256 -f ITS_KEY.pub`."),
            }
            println!("Next: `sedx --node {} card --host HOST > card.toml` for your peers, `sedx --node {} peer add THEIR_CARD` for each peer, then `sedx --node {} check`.",
                dir.display(), dir.display(), dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Seal { file } => {
            let (_lock, mut node) = open_exclusive(&cli.node, "seal", wait)?;
            let names = sedx::send::seal_file(&mut node, &file, true)?;
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
            let c = sedx::receive::check_set_file(&node, &set, &from)?;
            println!(
                "OK {}: sha256 {} signed by {from} ({}), {} document, {} records",
                c.name,
                c.sha256,
                c.signer,
                c.kind.root(),
                c.records
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Validate { file } => {
            let (kind, records) = sedx::wire::validate::validate_file(&file)?;
            println!(
                "{} is a valid {} document ({records} records)",
                file.display(),
                kind.root()
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Run { once, now } => {
            let (_lock, mut node) = open_exclusive(&cli.node, "run", wait)?;
            if once {
                let r = node.pass_with(now);
                report(&r);
                return Ok(pass_outcome(&r));
            }
            // SIGTERM (systemd, kill) and Ctrl-C stop between passes; every step is
            // durable anyway, so a pass never needs to be cut short.
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
                signal_hook::flag::register(sig, stop.clone())?;
            }
            // SIGHUP (systemd's ExecReload): read sedx.toml and allowed_signers
            // again before the next pass; work in progress is not touched.
            let hup = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())?;
            tracing::info!(node = node.id(), "running");
            sedx::run::watch::run(
                &mut node,
                now,
                report,
                || stop.load(std::sync::atomic::Ordering::Relaxed),
                || hup.swap(false, std::sync::atomic::Ordering::Relaxed),
            )?;
            tracing::info!(node = node.id(), "stopped");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Status { json, summary } => {
            let node = open(&cli.node)?;
            let status = sedx::tools::status::gather(&node)?;
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
                return Ok(pass_outcome(&r));
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
            let r = sedx::send::import_file(&mut node, &file)?;
            if r.refused == 0 {
                println!("{} record(s) in the register, 0 refused", r.applied);
                return Ok(ExitCode::SUCCESS);
            }
            let codes: Vec<String> = r.by_code.iter().map(|(c, n)| format!("{c}×{n}")).collect();
            println!(
                "{} record(s) in the register, {} refused on import: {} (see `sedx quarantine list`)",
                r.applied,
                r.refused,
                codes.join(", ")
            );
            Ok(ExitCode::from(1))
        }
        Cmd::Export { batch_size } => {
            let (_lock, mut node) = open_exclusive(&cli.node, "export", wait)?;
            let done = sedx::tools::export::export(&mut node, batch_size.max(1))?;
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
            side,
        } => {
            let from = from.unwrap_or_else(|| match side {
                sedx::domain::Role::Inspection => "insp-city".into(),
                sedx::domain::Role::Supervision => "sup-city".into(),
            });
            let opts = sedx::tools::generate::GenOptions {
                side,
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
            let g = sedx::tools::generate::generate(&opts)?;
            println!(
                "{} records ({} equipment, {} reports, {} non-statutory) in {} files; defects: {:?}",
                g.records, g.equipment, g.reports, g.non_statutory, g.files, g.defects
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Backup { dest } => {
            let files = sedx::tools::backup::backup(&cli.node, &dest)?;
            println!(
                "backed up {} into {} ({files} files)",
                cli.node.display(),
                dest.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Restore { backup, to } => {
            sedx::tools::backup::restore(&backup, &to)?;
            println!("restored {} into {}", backup.display(), to.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Clean {
            file,
            out,
            max_problems,
        } => {
            let report = sedx::tools::clean::clean(&file, out.as_deref())?;
            print!("{}", sedx::tools::clean::summary(&report));
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
            r6_only,
            max_problems,
        } => {
            let r = sedx::tools::reconcile::reconcile(&a, &b, &out, r6_only)?;
            print!("{}", sedx::tools::reconcile::summary(&r));
            if notices {
                let (path, n) = sedx::tools::reconcile::notices(&r, &cli.node, &agency)?;
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
            let queue = sedx::store::views::acceptance(&node.store)?;
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
            match sedx::store::views::equipment_show(&node.store, &code)? {
                Some(view) => print!("{view}"),
                None => bail!("no equipment {code} on record"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Check { offline } => {
            let findings = sedx::tools::check::run(&cli.node, !offline);
            for f in &findings {
                println!("{}", f.line());
            }
            let code = sedx::tools::check::exit_code(&findings);
            println!(
                "{}",
                match code {
                    0 => "检查通过 all checks passed",
                    1 => "检查有警告 warnings (see WARN above)",
                    _ => "检查未通过 failures (see FAIL and the fixes above)",
                }
            );
            Ok(ExitCode::from(code))
        }
        Cmd::Card {
            host,
            port,
            user,
            inbound,
            outbox,
            host_key,
            agency,
            out,
        } => {
            let host_key = host_key.unwrap_or_else(|| {
                let system = "/etc/ssh/ssh_host_ed25519_key.pub";
                if Path::new(system).exists() {
                    system.to_string()
                } else {
                    String::new()
                }
            });
            let reach = sedx::tools::card::Reach {
                host,
                port,
                user,
                inbound,
                outbox,
                host_key,
                agency,
            };
            let card = sedx::tools::card::make(&cli.node, &reach)?;
            let text = sedx::tools::card::to_text(&card)?;
            match out {
                Some(path) => {
                    sedx::context::files::write_atomic(&path, text.as_bytes())?;
                    println!("card of {} written to {}", card.id, path.display());
                }
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Peer {
            cmd:
                PeerCmd::Add {
                    card,
                    transport,
                    agency,
                },
        } => {
            let transport = match transport.as_str() {
                "push" => sedx::context::config::Transport::Push,
                "pull" => sedx::context::config::Transport::Pull,
                "local" => sedx::context::config::Transport::Local,
                other => bail!("--transport {other:?}: use push, pull or local"),
            };
            let c = sedx::tools::card::read(&card)?;
            let added = sedx::tools::card::add(&cli.node, &c, transport, agency)?;
            println!(
                "peer {} ({}) added to sedx.toml and allowed_signers",
                c.id,
                c.role.as_str()
            );
            if transport != sedx::context::config::Transport::Pull {
                println!("Its SFTP login to this node's server needs an account that accepts its key. As root:");
                println!(
                    "  scripts/peer-account.sh --node {} --peer {} --key '{}'{}",
                    cli.node.display(),
                    c.id,
                    added.login_key,
                    if transport == sedx::context::config::Transport::Local {
                        " --pull"
                    } else {
                        ""
                    }
                );
                println!("  (or add that key to authorized_keys of the account it logs in as)");
            }
            println!("Then: `sedx --node {} check`, and reload a running service (systemctl reload sedx@NODE).", cli.node.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Quarantine { cmd } => {
            let node = open(&cli.node)?;
            let who = |by: Option<String>| by.unwrap_or_else(sedx::context::quarantine::operator);
            match cmd {
                QuarantineCmd::List { all } => {
                    let items = if all {
                        node.store.quarantine_all()?
                    } else {
                        node.store.quarantined()?
                    };
                    println!(
                        "隔离区 quarantine: {} {} item(s)",
                        items.len(),
                        if all { "" } else { "open" }
                    );
                    for q in &items {
                        println!("{}", sedx::context::quarantine::line(q));
                    }
                }
                QuarantineCmd::Show { id } => {
                    print!("{}", sedx::context::quarantine::show(&node, id)?)
                }
                QuarantineCmd::Retry { id, by } => {
                    let went = sedx::context::quarantine::retry(&node, id, &who(by))?;
                    println!("item {id}: {went}; the next pass takes it");
                }
                QuarantineCmd::Dismiss { id, reason, by } => {
                    sedx::context::quarantine::dismiss(&node, id, &who(by), &reason)?;
                    println!("item {id} dismissed; its files stay in quarantine/");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Decisions => {
            let node = open(&cli.node)?;
            let list = sedx::store::views::undecided(&node.store, None)?;
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
            let list = sedx::store::views::discrepancies(&node.store)?;
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
            let mut cfg = sedx::context::config::Config::load(&cli.node)?;
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
            sedx::tools::demo::run(&args)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The exit status of a pass: 0, or by its worst failure (69 a peer out of
/// reach, 74 the machine: disk or store, 1 anything else), with one line.
fn pass_outcome(r: &sedx::context::report::PassReport) -> ExitCode {
    match r.worst() {
        None => ExitCode::SUCCESS,
        Some(kind) => {
            eprintln!("sedx: {} error(s); first: {}", r.errors.len(), r.errors[0]);
            ExitCode::from(kind.exit_code())
        }
    }
}

fn report(r: &sedx::context::report::PassReport) {
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

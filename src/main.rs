//! The sedx command line.

mod cli;

use clap::Parser;
use cli::args::{Cli, Cmd};
use std::process::ExitCode;

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
                ExitCode::from(cli::EXIT_BUSY)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let wait = cli.wait;
    match cli.cmd {
        Cmd::Init(a) => cli::exchange::init(a, &cli.node),
        Cmd::Seal(a) => cli::exchange::seal(a, &cli.node, wait),
        Cmd::Verify(a) => cli::exchange::verify(a, &cli.node),
        Cmd::Validate(a) => cli::exchange::validate_cmd(a),
        Cmd::Run(a) => cli::exchange::run_cmd(a, &cli.node, wait),
        Cmd::Status(a) => cli::exchange::status(a, &cli.node),
        Cmd::Send(a) => cli::exchange::send(a, &cli.node, wait),
        Cmd::Resend(a) => cli::exchange::resend(a, &cli.node),
        Cmd::Import(a) => cli::register::import(a, &cli.node, wait),
        Cmd::Export(a) => cli::register::export(a, &cli.node, wait),
        Cmd::Gen(a) => cli::register::gen(a),
        Cmd::Clean(a) => cli::register::clean(a),
        Cmd::Reconcile(a) => cli::register::reconcile(a, &cli.node),
        Cmd::Acceptance => cli::register::acceptance(&cli.node),
        Cmd::Equipment(a) => cli::register::equipment(a, &cli.node),
        Cmd::Discrepancies => cli::register::discrepancies(&cli.node),
        Cmd::Decisions => cli::register::decisions(&cli.node),
        Cmd::Backup(a) => cli::admin::backup(a, &cli.node),
        Cmd::Restore(a) => cli::admin::restore(a),
        Cmd::Check(a) => cli::admin::check_cmd(a, &cli.node),
        Cmd::Card(a) => cli::admin::card(a, &cli.node),
        Cmd::Peer(a) => cli::admin::peer_cmd(a, &cli.node),
        Cmd::PeerSet(a) => cli::admin::peer_set(a, &cli.node),
        Cmd::Quarantine(a) => cli::admin::quarantine(a, &cli.node),
        Cmd::User(a) => cli::admin::user(a, &cli.node),
        Cmd::Demo(args) => cli::admin::demo(args),
    }
}

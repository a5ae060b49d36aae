//! The command line: arguments (`args`), and the commands by what they are for:
//! the exchange (`exchange`), the registers and what operators look at
//! (`register`), and running a node (`admin`).

pub mod admin;
pub mod args;
pub mod exchange;
pub mod register;

use anyhow::Context;
use sedx::context::node::{Node, NodeLock};
use std::path::Path;
use std::process::ExitCode;

pub fn open(dir: &Path) -> anyhow::Result<Node> {
    Node::open(dir).with_context(|| format!("opening node {}", dir.display()))
}

/// Open a node for a command that changes it: one such process per node.
pub fn open_exclusive(dir: &Path, what: &str, wait: bool) -> anyhow::Result<(NodeLock, Node)> {
    let lock = sedx::context::node::lock(dir, what, wait)?;
    Ok((lock, open(dir)?))
}

/// Exit status of a command refused because another process holds the node
/// (EX_TEMPFAIL: try again later).
pub const EXIT_BUSY: u8 = 75;

/// The exit status of a pass: 0, or by its worst failure (69 a peer out of
/// reach, 74 the machine: disk or store, 1 anything else), with one line.
pub fn pass_outcome(r: &sedx::context::report::PassReport) -> ExitCode {
    match r.worst() {
        None => ExitCode::SUCCESS,
        Some(kind) => {
            eprintln!("sedx: {} error(s); first: {}", r.errors.len(), r.errors[0]);
            ExitCode::from(kind.exit_code())
        }
    }
}

pub fn report(r: &sedx::context::report::PassReport) {
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

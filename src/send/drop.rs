//! Drops: a plain file in outbound/ is taken once complete (closed after writing,
//! renamed in, or unchanged for the settle time), counted durably per attempt,
//! and sealed; one that keeps failing is put aside.

use super::sealing::seal_file;
use crate::context::error::{Code, Error, IoContext, Reject, Result};
use crate::context::node::Node;
use crate::context::report::{PassReport, Stage};
use crate::wire::set;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Plain XML files in outbound/ that are not being written and not part of a set.
fn dropped_files(dir: &Path) -> Result<Vec<(PathBuf, u64, Option<SystemTime>)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if set::is_temporary(name) || !name.to_ascii_lowercase().ends_with(".xml") {
            continue;
        }
        // lstat: a link or a special file is listed too, to be refused (never
        // followed, never left unreported).
        let meta = entry.metadata().at(entry.path())?;
        if !meta.is_dir() {
            out.push((entry.path(), meta.len(), meta.modified().ok()));
        }
    }
    out.sort();
    Ok(out)
}

/// The longest settle time waited out inside a pass.
const MAX_SETTLE_WAIT: Duration = Duration::from_secs(2);

/// Seal every dropped file whose size has stopped changing; `after_each` runs
/// after each file is sealed (the node ships it then, while the next is sealed
/// here and the peer already applies the last).
pub fn seal_dropped(
    node: &mut Node,
    report: &mut PassReport,
    mut after_each: impl FnMut(&mut Node, &mut PassReport),
) -> Result<()> {
    let first = dropped_files(&node.layout.outbound)?;
    if first.is_empty() {
        return Ok(());
    }
    // A file still being written is never picked up. It is complete when the
    // watcher saw its writer close it or saw it renamed in, or when it has not
    // changed for the settle time; otherwise look twice, a settle time apart.
    let settle = Duration::from_millis(node.cfg.node.settle_ms);
    let mut complete = std::mem::take(&mut node.complete);
    let quiet =
        |complete: &std::collections::HashSet<PathBuf>, path: &Path, mtime: &Option<SystemTime>| {
            complete.contains(path)
                || mtime
                    .and_then(|m| m.elapsed().ok())
                    .is_some_and(|age| age >= settle)
        };
    // A long settle time is never waited out inside a pass (receiving and the
    // watcher's events would stall): such files are looked at again next pass.
    let (second, looked_twice) = if first.iter().all(|(p, _, m)| quiet(&complete, p, m)) {
        (first.clone(), false)
    } else if settle <= MAX_SETTLE_WAIT {
        std::thread::sleep(settle);
        (dropped_files(&node.layout.outbound)?, true)
    } else {
        (first.clone(), false)
    };
    for (path, size, mtime) in second {
        let settled = quiet(&complete, &path, &mtime)
            || (looked_twice
                && first
                    .iter()
                    .any(|(p, s, m)| *p == path && *s == size && *m == mtime));
        if !settled {
            report.unsettled += 1;
            continue;
        }
        complete.remove(&path);
        // Counted durably before the work: a drop that stops the process (killed
        // for memory, a crash) or fails a few times is put aside.
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let attempts = node.store.begin_attempt("out", &file)?;
        if attempts > crate::receive::MAX_ATTEMPTS {
            let rej = Reject::new(
                Code::SetPoison,
                format!(
                    "sealing this file stopped the node or failed {} times; put aside",
                    attempts - 1
                ),
            );
            crate::context::quarantine::file_aside(node, &path, &rej)?;
            node.store.end_attempt("out", &file)?;
            report.quarantined += 1;
            continue;
        }
        let started = std::time::Instant::now();
        let sealed = seal_file(node, &path, false);
        if !matches!(&sealed, Err(e) if !e.is_environmental() && !matches!(e, Error::Rejected(_))) {
            node.store.end_attempt("out", &file)?;
        }
        match sealed {
            Ok(names) => {
                report.sealed += names.len() as u64;
                let seal_ms = started.elapsed().as_secs_f64() * 1000.0;
                for name in names {
                    tracing::info!(file = %path.display(), set = %name, seal_ms, "sealed");
                }
                after_each(node, report);
            }
            Err(Error::Rejected(rej)) => {
                crate::context::quarantine::file_aside(node, &path, &rej)?;
                report.quarantined += 1;
            }
            Err(e) => report.failed(Stage::Seal, path.display(), &e),
        }
    }
    node.complete = complete;
    Ok(())
}

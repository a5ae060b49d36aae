//! `sedx import`: a side's own register loaded by the same rules; nothing is sent (R3).

use super::sealing::take_copy;
use super::sift::{sift_checked, Mode};
use crate::context::error::Result;
use crate::context::node::Node;
use crate::context::quarantine;
use crate::wire::document::DocKind;
use std::collections::BTreeMap;
use std::path::Path;

/// What `sedx import` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub applied: u64,
    pub refused: u64,
    /// Refused records per reason code.
    pub by_code: BTreeMap<String, u64>,
}

/// Load a batch file into this node's own register (R3: a side's register before
/// the exchange starts). The rules apply as for sending; nothing is sent.
/// Refused records are kept in quarantine/ with their reasons.
pub fn import_file(node: &mut Node, path: &Path) -> Result<Imported> {
    let (copy, _) = take_copy(node, path)?;
    crate::wire::validate::peek_root_file(copy.path(), DocKind::Batch)?;
    let pending = node.validator.submit(copy.path(), DocKind::Batch);
    let src_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("import.xml")
        .to_string();
    let me = node.id().to_string();
    let sifted = sift_checked(node, copy.path(), None, "import", Mode::Import, pending)?;
    quarantine::records_aside(
        node,
        &src_name,
        &me,
        &sifted.refused,
        crate::store::QuarantineKind::ImportRefused,
    )?;
    Ok(Imported {
        applied: sifted.imported,
        refused: sifted.refused.len() as u64,
        by_code: quarantine::counts_by_code(&sifted.refused),
    })
}

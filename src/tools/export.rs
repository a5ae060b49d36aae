//! Delta export (R14): the records of this node's own register changed since the
//! last acknowledged export are written as batches into outbound/, so a system
//! without an exporter of its own (it writes into the store) still takes part.

use crate::context::error::{IoContext, Result};
use crate::context::node::Node;
use crate::domain::spec::SPECS;
use crate::wire::document::record_xml;
use crate::wire::document::BATCH_NS;
use quick_xml::Writer;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// What an export wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Exported {
    pub files: Vec<PathBuf>,
    pub records: u64,
}

/// One batch file being written under a temporary name.
struct OpenFile {
    tmp: PathBuf,
    path: PathBuf,
    w: Writer<BufWriter<File>>,
    records: u64,
    max_version: i64,
}

pub fn export(node: &mut Node, batch_size: u64) -> Result<Exported> {
    let since = node.store.last_acknowledged_export()?;
    let me = node.cfg.node.role;
    let from = node.id().to_string();
    let mut done = Exported::default();
    let mut current: Option<OpenFile> = None;
    // Unique per export, even two in the same second (the service's exports):
    // the file name is the key of its export row and of its sets' reservations.
    let stamp = format!(
        "{}-{}",
        time::OffsetDateTime::now_utc().unix_timestamp(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    for spec in SPECS {
        // Only what this side generates; equipment is shared field by field.
        if spec.owner.is_some_and(|o| o != me) {
            continue;
        }
        node.store.changed_since(spec, since, |rec, version| {
            if current.is_none() {
                let name = format!("export-{from}-{stamp}-{:04}.xml", done.files.len() + 1);
                let path = node.layout.outbound.join(&name);
                let tmp = crate::context::files::temp_name(&path);
                let mut w = Writer::new(BufWriter::with_capacity(
                    1 << 20,
                    File::create(&tmp).at(&tmp)?,
                ));
                let head = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<batch xmlns=\"{BATCH_NS}\" from=\"{from}\">\n");
                w.get_mut().write_all(head.as_bytes()).at(&tmp)?;
                current = Some(OpenFile {
                    tmp,
                    path,
                    w,
                    records: 0,
                    max_version: 0,
                });
            }
            if let Some(f) = current.as_mut() {
                record_xml(&mut f.w, &rec).at(&f.tmp)?;
                f.records += 1;
                f.max_version = f.max_version.max(version);
                if f.records >= batch_size {
                    close(node, current.take(), &mut done)?;
                }
            }
            Ok(())
        })?;
    }
    close(node, current.take(), &mut done)?;
    Ok(done)
}

fn close(node: &Node, file: Option<OpenFile>, done: &mut Exported) -> Result<()> {
    let Some(mut f) = file else { return Ok(()) };
    f.w.get_mut().write_all(b"</batch>\n").at(&f.tmp)?;
    let file =
        f.w.into_inner()
            .into_inner()
            .map_err(|e| e.into_error())
            .at(&f.tmp)?;
    file.sync_all().at(&f.tmp)?;
    let name = f
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    // Recorded before the file appears, so an acknowledgment always finds it.
    node.store.record_export(&name, f.max_version, f.records)?;
    crate::context::files::rename(&f.tmp, &f.path)?;
    done.records += f.records;
    done.files.push(f.path);
    Ok(())
}

/// The service's export (`auto_export = true`): when this side's own records
/// changed after the last export and no export is still on its way (a file in
/// outbound/, or sets not answered yet), export what changed since the last
/// acknowledged one. A local system then only writes into the store (the
/// front_v1 views, docs/integration.md); the window still decides when it ships.
pub fn auto(node: &mut Node) -> Result<u64> {
    let me = node.cfg.node.role;
    let mut changed = false;
    for spec in SPECS.iter().filter(|s| s.owner.is_none_or(|o| o == me)) {
        if node.store.changed_after_last_export(spec)? {
            changed = true;
            break;
        }
    }
    if !changed {
        return Ok(0);
    }
    for (file, sealed) in node.store.exports_unanswered()? {
        // A file recorded but never renamed into place (a crash) is not on its way.
        if sealed || node.layout.outbound.join(&file).exists() {
            return Ok(0);
        }
    }
    let done = export(node, 10_000)?;
    if done.records > 0 {
        tracing::info!(
            records = done.records,
            files = done.files.len(),
            "exported this node's changed records (auto_export)"
        );
    }
    Ok(done.records)
}

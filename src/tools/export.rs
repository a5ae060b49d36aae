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
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
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

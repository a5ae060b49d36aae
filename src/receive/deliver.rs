//! Delivery as files (`deliver = "folder"`): the records each applied batch
//! wrote, as a batch document in delivered/, for local systems that take files
//! rather than read the store. The document is written under a temporary name
//! and renamed, then its marker (`NAME.xml.sha256`, as sha256sum writes it) comes
//! last: a reader takes a file only once its marker is there.
//!
//! The store notes the delivery in the batch's own transaction ("pending"); the
//! document is written after the commit, then the note says "marking", then the
//! marker is written and the note closed. A crash is finished on the next start,
//! before any later batch is applied: "pending" writes the document afresh (no
//! reader takes one without its marker); "marking" writes the marker if the
//! document is still there without one, and otherwise knows that a reader has
//! taken both: nothing is delivered twice.

use crate::context::error::{IoContext, Result};
use crate::context::faults::crash_point;
use crate::context::node::Node;
use crate::domain::spec::SPECS;
use crate::wire::document::{record_xml, BATCH_NS};
use sha2::{Digest, Sha256};
use std::io::Write;

/// Deliver every batch whose delivery is pending; returns how many.
pub fn deliver_pending(node: &Node) -> Result<u64> {
    let pending = node.store.pending_deliveries()?;
    if pending.is_empty() {
        return Ok(0);
    }
    let dir = &node.layout.delivered;
    crate::context::files::create_dir_all(dir)?;
    let mut n = 0;
    for (batch_id, peer, file, marking) in pending {
        let path = dir.join(&file);
        let marker = dir.join(format!("{file}.sha256"));
        if marking {
            // The document was complete: its marker is there, or still to be
            // written, or a reader took both.
            if path.exists() && !marker.exists() {
                let sum = crate::wire::suite::sha256_file(&path)?;
                write_marker(&marker, &sum, &file)?;
            }
        } else {
            crash_point("before-deliver");
            let tmp = crate::context::files::temp_name(&path);
            let mut hash = Sha256::new();
            {
                let f = std::fs::File::create(&tmp).at(&tmp)?;
                let mut w = quick_xml::Writer::new(HashingWriter {
                    inner: std::io::BufWriter::with_capacity(1 << 20, f),
                    hash: &mut hash,
                });
                let head = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<batch xmlns=\"{BATCH_NS}\" from=\"{}\" to=\"{}\" id=\"{}\">\n",
                    quick_xml::escape::escape(peer.as_str()),
                    quick_xml::escape::escape(node.id()),
                    quick_xml::escape::escape(batch_id.as_str())
                );
                w.get_mut().write_all(head.as_bytes()).at(&tmp)?;
                for spec in SPECS {
                    node.store.records_of_batch(spec, &batch_id, |rec| {
                        record_xml(&mut w, &rec).at(&tmp)?;
                        Ok(())
                    })?;
                }
                w.get_mut().write_all(b"</batch>\n").at(&tmp)?;
                let mut inner = w.into_inner().inner;
                inner.flush().at(&tmp)?;
                inner
                    .into_inner()
                    .map_err(|e| e.into_error())
                    .at(&tmp)?
                    .sync_all()
                    .at(&tmp)?;
            }
            std::fs::rename(&tmp, &path).at(&path)?;
            crate::context::files::sync_dir(dir)?;
            node.store.delivery_marking(&batch_id)?;
            write_marker(&marker, &hex::encode(hash.finalize()), &file)?;
            crash_point("after-deliver");
        }
        node.store.delivered(&batch_id)?;
        tracing::info!(peer = %peer, batch = %batch_id, file = %file, "delivered to delivered/");
        n += 1;
    }
    Ok(n)
}

/// Writes through and hashes what it wrote.
struct HashingWriter<'a, W: Write> {
    inner: W,
    hash: &'a mut Sha256,
}

impl<W: Write> Write for HashingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The marker, as sha256sum writes it; last, and atomically.
fn write_marker(marker: &std::path::Path, sum: &str, file: &str) -> Result<()> {
    crate::context::files::write_atomic(marker, format!("{sum}  {file}\n").as_bytes())
}

//! Seal: compress a document into NAME.xml.gz, sign it (SSHSIG) into
//! NAME.xml.gz.sig and write NAME.xml.gz.sha256 last, each durable before the next.

use crate::context::error::{IoContext, Result};
use crate::context::files;
use crate::wire::set::{Marker, SetName};
use crate::wire::sshsig::{self, Hashing, PayloadDigest};
use flate2::write::GzEncoder;
use flate2::Compression;
use ssh_key::PrivateKey;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// A writer that hashes what passes through it.
struct HashingWriter<W: Write> {
    inner: W,
    hashing: Hashing,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hashing.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Seal a document produced by `write_doc` as set `name` in `dir`, compressed at
/// gzip `level`.
pub fn seal<F>(
    dir: &Path,
    name: &SetName,
    key: &PrivateKey,
    namespace: &str,
    level: u32,
    write_doc: F,
) -> Result<PayloadDigest>
where
    F: FnOnce(&mut dyn Write) -> Result<()>,
{
    let payload = name.payload(dir);
    let tmp = files::temp_name(&payload);
    let file = File::create(&tmp).at(&tmp)?;
    let hashing = HashingWriter {
        inner: BufWriter::with_capacity(1 << 20, file),
        hashing: Hashing::default(),
    };
    let mut gz = GzEncoder::new(hashing, Compression::new(level.clamp(1, 9)));
    let written = {
        let mut doc = BufWriter::with_capacity(1 << 16, &mut gz);
        write_doc(&mut doc).and_then(|_| doc.flush().at(&tmp))
    };
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp); // our own temporary, never a user's file
        return Err(e);
    }
    let hashing = gz.finish().at(&tmp)?;
    let digest = hashing.hashing.finish();
    let file = hashing
        .inner
        .into_inner()
        .map_err(|e| e.into_error())
        .at(&tmp)?;
    file.sync_all().at(&tmp)?;
    files::rename(&tmp, &payload)?;
    finish(dir, name, key, namespace, &digest)?;
    Ok(digest)
}

/// Sign and mark an existing payload (the last two steps of sealing).
pub fn finish(
    dir: &Path,
    name: &SetName,
    key: &PrivateKey,
    namespace: &str,
    digest: &PayloadDigest,
) -> Result<()> {
    let sig = sshsig::sign(key, namespace, digest)?;
    files::write_atomic(&name.sig(dir), sig.as_bytes())?;
    let marker = Marker::line(&digest.sha256_hex(), &name.payload_file());
    files::write_atomic(&name.marker(dir), marker.as_bytes())
}

//! Seal: compress a document into NAME.xml.gz, sign it into NAME.xml.gz.sig in
//! the channel's suite (SSHSIG Ed25519, or SM2 with SM3) and write the marker
//! (NAME.xml.gz.sha256 or .sm3) last, each durable before the next.

use crate::context::error::{IoContext, Result};
use crate::context::files;
use crate::wire::document::DocKind;
use crate::wire::set::{Marker, SetName};
use crate::wire::sm2sig::Sm2Key;
use crate::wire::sshsig;
use crate::wire::suite::{Hashing, PayloadDigest, Suite};
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

/// The key a set is signed with, which names its suite.
#[derive(Clone, Copy)]
pub enum Sealer<'a> {
    Ed25519(&'a PrivateKey),
    Sm2(&'a Sm2Key),
}

impl Sealer<'_> {
    pub fn suite(&self) -> Suite {
        match self {
            Sealer::Ed25519(_) => Suite::Ed25519,
            Sealer::Sm2(_) => Suite::Sm2,
        }
    }

    fn hashing(&self) -> Hashing {
        match self {
            Sealer::Ed25519(_) => Hashing::new(Suite::Ed25519, &[]),
            Sealer::Sm2(key) => Hashing::new(Suite::Sm2, &[key.public().z()]),
        }
    }
}

/// Seal a document of `kind` produced by `write_doc` as set `name` in `dir`,
/// compressed at gzip `level`.
pub fn seal<F>(
    dir: &Path,
    name: &SetName,
    sealer: Sealer<'_>,
    kind: DocKind,
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
        hashing: sealer.hashing(),
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
    finish(dir, name, sealer, kind, &digest)?;
    Ok(digest)
}

/// Sign and mark an existing payload (the last two steps of sealing); `digest`
/// is the payload's, hashed for the sealer's suite (and key).
pub fn finish(
    dir: &Path,
    name: &SetName,
    sealer: Sealer<'_>,
    kind: DocKind,
    digest: &PayloadDigest,
) -> Result<()> {
    let sig = match sealer {
        Sealer::Ed25519(key) => sshsig::sign(key, kind.sig_namespace(), digest)?.into_bytes(),
        Sealer::Sm2(key) => {
            let e = digest.signed.first().ok_or_else(|| {
                crate::context::error::Error::Key("payload was not hashed for SM2".into())
            })?;
            key.sign(e)?
        }
    };
    files::write_atomic(&name.sig(dir), &sig)?;
    let suite = sealer.suite();
    let marker = Marker::line(&digest.marker_hex(suite), &name.payload_file());
    files::write_atomic(&name.marker(dir, suite), marker.as_bytes())
}

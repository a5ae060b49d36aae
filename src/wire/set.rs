//! A sealed set on disk: NAME.xml.gz (payload), NAME.xml.gz.sig (the signature)
//! and the marker, written last: it marks the set complete and names its suite
//! (docs/format.md): NAME.xml.gz.sha256 (a `sha256sum` line; Ed25519 suite) or
//! NAME.xml.gz.sm3 (the same line with SM3, as `openssl dgst -sm3 -r` writes it;
//! SM2 suite).

use crate::context::error::{Code, IoContext, Reject, Result};
use crate::context::files;
use crate::wire::suite::Suite;
use std::path::{Path, PathBuf};

pub const PAYLOAD: &str = ".xml.gz";
pub const SIG: &str = ".xml.gz.sig";
/// The marker of the Ed25519 suite.
pub const MARKER: &str = ".xml.gz.sha256";
/// The marker of the SM2 suite.
pub const MARKER_SM3: &str = ".xml.gz.sm3";
/// Largest marker or signature file read (both are a few hundred bytes).
pub const SMALL_FILE_MAX: u64 = 16 * 1024;

/// The marker's file extension in a suite.
pub fn marker_ext(suite: Suite) -> &'static str {
    match suite {
        Suite::Ed25519 => MARKER,
        Suite::Sm2 => MARKER_SM3,
    }
}

/// Which file of a set a file name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Payload,
    Sig,
    Marker(Suite),
}

/// Names other programs use while a file is still being written.
pub fn is_temporary(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.starts_with('.')
        || name.ends_with('~')
        || [".part", ".filepart", ".partial", ".tmp", ".crdownload"]
            .iter()
            .any(|s| lower.ends_with(s))
}

/// A set's NAME, checked so that it cannot leave its folder.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SetName(String);

impl SetName {
    pub fn new(name: &str) -> Result<SetName, Reject> {
        let ok = !name.is_empty()
            && name.len() <= 200
            && !name.starts_with('.')
            && !name.contains(['/', '\\', '\0'])
            && !name.chars().any(crate::context::text::is_unsafe);
        if ok {
            Ok(SetName(name.to_string()))
        } else {
            Err(Reject::new(
                Code::SetName,
                format!("unsafe set name {name:?}"),
            ))
        }
    }

    /// The set a file belongs to, if it is a part of one.
    pub fn of_file(file: &str) -> Option<(SetName, Part)> {
        for (ext, part) in [
            (MARKER, Part::Marker(Suite::Ed25519)),
            (MARKER_SM3, Part::Marker(Suite::Sm2)),
            (SIG, Part::Sig),
            (PAYLOAD, Part::Payload),
        ] {
            if let Some(stem) = file.strip_suffix(ext) {
                return SetName::new(stem).ok().map(|n| (n, part));
            }
        }
        None
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn payload_file(&self) -> String {
        format!("{}{PAYLOAD}", self.0)
    }
    pub fn payload(&self, dir: &Path) -> PathBuf {
        dir.join(self.payload_file())
    }
    pub fn sig(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}{SIG}", self.0))
    }
    pub fn marker(&self, dir: &Path, suite: Suite) -> PathBuf {
        dir.join(self.marker_file(suite))
    }
    pub fn marker_file(&self, suite: Suite) -> String {
        format!("{}{}", self.0, marker_ext(suite))
    }
    /// The suites whose marker is in `dir` (a set sedx made has one).
    pub fn marked(&self, dir: &Path) -> Vec<Suite> {
        Suite::ALL
            .into_iter()
            .filter(|&s| std::fs::symlink_metadata(self.marker(dir, s)).is_ok())
            .collect()
    }
    /// Whether the set is complete in `dir`: a marker of either suite is there.
    pub fn is_complete(&self, dir: &Path) -> bool {
        !self.marked(dir).is_empty()
    }
    /// Every file a set may have, in the order they are written and shipped:
    /// markers last. Callers skip those that are absent.
    pub fn files(&self, dir: &Path) -> [PathBuf; 4] {
        [
            self.payload(dir),
            self.sig(dir),
            self.marker(dir, Suite::Ed25519),
            self.marker(dir, Suite::Sm2),
        ]
    }
}

impl std::fmt::Display for SetName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The content of a marker: the payload's digest in its suite (SHA-256 or
/// SM3, both 256 bits) and the payload's file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub hex: String,
    pub file: String,
}

impl Marker {
    /// One `sha256sum` line: 64 hex digits, two spaces (or space and '*', as
    /// `openssl dgst -r` writes), the file name.
    pub fn parse(text: &[u8]) -> Result<Marker, Reject> {
        let bad = |why: &str| Reject::new(Code::SetMarker, why.to_string());
        let text = std::str::from_utf8(text).map_err(|_| bad("marker is not UTF-8"))?;
        let line = text.strip_suffix('\n').unwrap_or(text);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.contains('\n') {
            return Err(bad("marker must be exactly one line"));
        }
        let (hash, rest) = line
            .split_at_checked(64)
            .ok_or_else(|| bad("marker is shorter than a 256-bit digest"))?;
        if !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("marker does not start with 64 hex digits"));
        }
        let file = rest
            .strip_prefix("  ")
            .or_else(|| rest.strip_prefix(" *"))
            .ok_or_else(|| bad("marker is not in sha256sum format"))?;
        Ok(Marker {
            hex: hash.to_ascii_lowercase(),
            file: file.to_string(),
        })
    }

    pub fn line(hex: &str, file: &str) -> String {
        format!("{hex}  {file}\n")
    }
}

/// Read a small file, refusing anything larger than `max` (or not a regular file).
pub fn read_small(path: &Path, max: u64) -> Result<Vec<u8>, Reject> {
    use std::io::Read;
    // Messages name the file only: they travel in negative acknowledgments.
    let label = files::file_label(path);
    let file = files::open_regular(path).map_err(|e| match e {
        crate::context::error::Error::Rejected(r) => r,
        crate::context::error::Error::Io { source, .. } => {
            Reject::new(Code::SetMarker, format!("{label}: {source}"))
        }
        _ => Reject::new(Code::SetMarker, format!("{label} cannot be read")),
    })?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Reject::new(Code::SetMarker, format!("{label}: {e}")))?;
    if bytes.len() as u64 > max {
        return Err(Reject::new(
            Code::SetTooLarge,
            format!("{label} is larger than {max} bytes"),
        ));
    }
    Ok(bytes)
}

/// Sets in `dir` whose marker is present, in name order.
pub fn complete_sets(dir: &Path) -> Result<Vec<SetName>> {
    Ok(list(dir)?.sets)
}

/// What a folder holds: complete sets, and markers whose set name is unsafe
/// (not UTF-8, too long, control characters) and must be put aside.
#[derive(Debug, Default)]
pub struct Listing {
    pub sets: Vec<SetName>,
    pub unsafe_markers: Vec<std::ffi::OsString>,
}

pub fn list(dir: &Path) -> Result<Listing> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = Listing::default();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).at(dir),
    };
    for entry in rd {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let bytes = name.as_bytes();
        if bytes.first() == Some(&b'.') || marker_stem(bytes).is_none() {
            continue;
        }
        match name.to_str() {
            Some(n) if is_temporary(n) => {}
            Some(n) => match SetName::of_file(n) {
                Some((set, Part::Marker(_))) => out.sets.push(set),
                _ => out.unsafe_markers.push(name),
            },
            None => out.unsafe_markers.push(name),
        }
    }
    out.sets.sort();
    out.sets.dedup();
    out.unsafe_markers.sort();
    Ok(out)
}

/// The set name part of a marker's file name (as bytes: it may not be UTF-8).
pub fn marker_stem(file: &[u8]) -> Option<&[u8]> {
    [MARKER, MARKER_SM3]
        .iter()
        .find_map(|ext| file.strip_suffix(ext.as_bytes()))
}

/// A printable, bounded rendering of an unsafe name (for reasons and answers).
pub fn describe(name: &std::ffi::OsStr) -> String {
    let lossy = name.to_string_lossy();
    let clean: String = lossy
        .chars()
        .map(|c| {
            if c.is_control() || c == '\u{FFFD}' {
                '?'
            } else {
                c
            }
        })
        .take(120)
        .collect();
    if lossy.chars().count() > 120 {
        format!("{clean}...")
    } else {
        clean
    }
}

/// Where a set goes in `dst`: `dst` itself, or `dst/dup-N/` when a set of that name
/// is already there (nothing is ever overwritten). A set half-moved by an
/// interrupted earlier call is completed in the same place.
pub fn destination(name: &SetName, src: &Path, dst: &Path) -> PathBuf {
    let mut candidate = dst.to_path_buf();
    let mut n = 0;
    loop {
        let taken = name.is_complete(&candidate)
            || name
                .files(src)
                .iter()
                .zip(name.files(&candidate))
                .any(|(from, there)| from.exists() && there.exists());
        if !taken {
            return candidate;
        }
        n += 1;
        candidate = dst.join(format!("dup-{n}"));
    }
}

/// Move a set's files from `src` to `dst` (marker last); returns the folder used.
pub fn move_set(name: &SetName, src: &Path, dst: &Path) -> Result<PathBuf> {
    let to = destination(name, src, dst);
    move_into(name, src, &to)?;
    Ok(to)
}

/// Move a set's files into exactly `to` (chosen with [`destination`]).
pub fn move_into(name: &SetName, src: &Path, to: &Path) -> Result<()> {
    files::create_dir_all(to)?;
    for (from, into) in name.files(src).iter().zip(name.files(to)) {
        if std::fs::symlink_metadata(from).is_ok() {
            files::rename(from, &into)?;
            crate::context::faults::crash_point("mid-move");
        }
    }
    Ok(())
}

/// Copy a set into `dst` (marker last, so it is taken complete), the copies
/// with file mode `mode`.
pub fn copy_set(name: &SetName, src: &Path, dst: &Path, mode: u32) -> Result<()> {
    for (from, into) in name.files(src).iter().zip(name.files(dst)) {
        if std::fs::symlink_metadata(from).is_ok() {
            files::copy_with_mode(from, &into, mode)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(SetName::new("../x").is_err());
        assert!(SetName::new(".hidden").is_err());
        assert!(SetName::new("a\nb").is_err());
        assert!(SetName::new("批次-2026").is_ok());
        assert_eq!(
            SetName::of_file("a.xml.gz.sha256").unwrap().1,
            Part::Marker(Suite::Ed25519)
        );
        assert_eq!(
            SetName::of_file("a.xml.gz.sm3").unwrap().1,
            Part::Marker(Suite::Sm2)
        );
        assert!(is_temporary("x.xml.part") && is_temporary(".x") && !is_temporary("x.xml"));
    }

    #[test]
    fn markers() {
        let h = "a".repeat(64);
        assert_eq!(
            Marker::parse(format!("{h}  n.xml.gz\n").as_bytes())
                .unwrap()
                .file,
            "n.xml.gz"
        );
        assert_eq!(
            Marker::parse(format!("{h} *n.xml.gz").as_bytes())
                .unwrap()
                .file,
            "n.xml.gz"
        );
        assert!(Marker::parse(b"zz  n").is_err());
        assert!(Marker::parse(format!("{h} n.xml.gz").as_bytes()).is_err());
    }

    #[test]
    fn move_never_overwrites() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        let n = SetName::new("s").unwrap();
        for round in 0..2 {
            for f in n.files(&a) {
                std::fs::write(&f, format!("{round}")).unwrap();
            }
            let to = move_set(&n, &a, &b).unwrap();
            assert_eq!(
                to,
                if round == 0 {
                    b.clone()
                } else {
                    b.join("dup-1")
                }
            );
        }
        assert_eq!(std::fs::read_to_string(n.payload(&b)).unwrap(), "0");
    }
}

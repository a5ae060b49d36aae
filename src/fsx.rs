//! Durable file operations: every state change reaches the disk before the next step.

use crate::error::{IoContext, Result};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Flush a directory entry change (create, rename) to disk.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|f| f.sync_all()).at(dir)
}

fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

/// Write a small file under a temporary dot-name, fsync it, and rename it into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_name(path);
    {
        let mut f = File::create(&tmp).at(&tmp)?;
        f.write_all(bytes).at(&tmp)?;
        f.sync_all().at(&tmp)?;
    }
    fs::rename(&tmp, path).at(path)?;
    sync_dir(parent(path))
}

/// A dot-name next to `path`: watchers and scanners ignore dot-files.
pub fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent(path).join(format!(".{name}.{}.part", std::process::id()))
}

/// Durable rename (both directories synced). Across filesystems (an inbound
/// folder may be a mount of its own) it copies, syncs, then removes the source.
pub fn rename(from: &Path, to: &Path) -> Result<()> {
    match fs::rename(from, to) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
            if fs::symlink_metadata(from)
                .at(from)?
                .file_type()
                .is_symlink()
            {
                // Move the link itself, never what it points at.
                let target = fs::read_link(from).at(from)?;
                std::os::unix::fs::symlink(target, to).at(to)?;
            } else {
                copy(from, to)?;
            }
            fs::remove_file(from).at(from)?;
        }
        Err(e) => return Err(e).at(to),
    }
    sync_dir(parent(to))?;
    if parent(from) != parent(to) {
        sync_dir(parent(from))?;
    }
    Ok(())
}

/// Durable copy: to a temporary name, fsync, then rename.
pub fn copy(from: &Path, to: &Path) -> Result<()> {
    let tmp = temp_name(to);
    fs::copy(from, &tmp).at(from)?;
    File::open(&tmp).and_then(|f| f.sync_all()).at(&tmp)?;
    fs::rename(&tmp, to).at(to)?;
    sync_dir(parent(to))
}

pub fn create_dir_all(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).at(dir)
}

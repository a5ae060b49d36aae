//! Durable file operations: every state change reaches the disk before the next step.

use crate::context::error::{Code, IoContext, Reject, Result};
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
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
        let mut f = create_private(&tmp)?;
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

/// Durable copy of a regular file (never through a link): to a temporary name,
/// fsync, then rename; the copy is 0600 whatever the umask.
pub fn copy(from: &Path, to: &Path) -> Result<()> {
    copy_with_mode(from, to, 0o600)
}

/// [`copy`] with the mode the copy gets (0640 where a peer's account reads it).
pub fn copy_with_mode(from: &Path, to: &Path, mode: u32) -> Result<()> {
    let tmp = temp_name(to);
    let mut src = open_regular(from)?;
    {
        let mut dst = create_private(&tmp)?;
        std::io::copy(&mut src, &mut dst).at(&tmp)?;
        dst.set_permissions(fs::Permissions::from_mode(mode))
            .at(&tmp)?;
        dst.sync_all().at(&tmp)?;
    }
    fs::rename(&tmp, to).at(to)?;
    sync_dir(parent(to))
}

pub fn create_dir_all(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).at(dir)
}

/// The last component of a path, for messages that may leave the node (a
/// negative acknowledgment never reveals local paths).
pub fn file_label(path: &Path) -> String {
    path.file_name()
        .map(|n| crate::context::text::field(&n.to_string_lossy()).into_owned())
        .unwrap_or_default()
}

/// Open a file for reading only if it is a regular file: never through a
/// symbolic link (O_NOFOLLOW), and the type checked on the open file itself, so
/// it cannot be swapped between a check and the read. A FIFO does not block the
/// open (O_NONBLOCK); it is refused like any other non-regular file.
pub fn open_regular(path: &Path) -> Result<File> {
    let not_regular = |what: &str| -> crate::context::error::Error {
        Reject::new(
            Code::SetName,
            format!("{} is {what}, not a regular file", file_label(path)),
        )
        .into()
    };
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(not_regular("a symbolic link"))
        }
        Err(e) => return Err(e).at(path),
    };
    let meta = file.metadata().at(path)?;
    if !meta.is_file() {
        return Err(not_regular("a special file or folder"));
    }
    Ok(file)
}

/// Create (or truncate) a file only the node's account can read: scratch copies
/// and node files are 0600 whatever the umask. Never follows a link.
pub fn create_private(path: &Path) -> Result<File> {
    let f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .at(path)?;
    f.set_permissions(fs::Permissions::from_mode(0o600))
        .at(path)?;
    Ok(f)
}

/// Make a folder (and its parents) and set its mode, whatever the umask.
pub fn create_dir_mode(dir: &Path, mode: u32) -> Result<()> {
    fs::create_dir_all(dir).at(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode)).at(dir)
}

/// A scratch file of this process, removed when dropped (never a user's file).
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A new name in `dir` (the node's private .work/): per process and unique.
    pub fn new_in(dir: &Path, what: &str) -> Scratch {
        Scratch(dir.join(format!(
            "{what}-{}-{}.xml",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        )))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Hashes (SHA-256) what is read through it.
pub struct HashingReader<R> {
    pub inner: R,
    pub sha256: sha2::Sha256,
}

impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        sha2::Digest::update(&mut self.sha256, &buf[..n]);
        Ok(n)
    }
}

/// Set a file's mode (node files are 0600 whatever the umask).
pub fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).at(path)
}

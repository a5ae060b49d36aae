//! Backup and restore of a node (R7: each side keeps its data safe and backed up):
//! a consistent copy of the store (SQLite `VACUUM INTO`, safe while the node
//! runs), the configuration, the keys and every folder of sets.

use crate::context::config::{Config, Layout, CONFIG_FILE};
use crate::context::error::{Error, IoContext, Result};
use std::path::{Path, PathBuf};

/// The folders copied besides the store (the scratch folder is not).
const FOLDERS: [&str; 7] = [
    "keys",
    "outbound",
    "inbound",
    "sent",
    "archive",
    "quarantine",
    "outbox",
];
const STORE_COPY: &str = "store.sqlite";

fn copy_tree(from: &Path, to: &Path) -> Result<u64> {
    let mut n = 0;
    for entry in walkdir::WalkDir::new(from).follow_links(false) {
        let entry = entry.map_err(|e| Error::Other(format!("{}: {e}", from.display())))?;
        let rel = entry.path().strip_prefix(from).unwrap_or(entry.path());
        let dst = to.join(rel);
        if entry.file_type().is_dir() {
            crate::context::files::create_dir_mode(&dst, 0o700)?;
        } else if entry.file_type().is_file() {
            let name = entry.file_name().to_string_lossy();
            if name.starts_with('.') && name.ends_with(".part") {
                continue; // an unfinished transfer, made again from its source
            }
            crate::context::files::copy(entry.path(), &dst)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Write a backup of the node in `node_dir` into the new folder `dest`.
pub fn backup(node_dir: &Path, dest: &Path) -> Result<u64> {
    let cfg = Config::load(node_dir)?;
    if cfg.postgres_url().is_some() {
        // The database is the server's to back up, consistently with its replicas.
        return Err(Error::Config(
            "this node's store is on PostgreSQL: back the database up with pg_dump (or the cluster's own backups) and the node folder with your file backup; docs/operations.md says how".into(),
        ));
    }
    if dest.exists() {
        return Err(Error::Other(format!(
            "{} already exists; backups never overwrite",
            dest.display()
        )));
    }
    // A backup holds the node's keys: the service account's alone.
    crate::context::files::create_dir_mode(dest, 0o700)?;
    let layout = Layout::new(node_dir);
    let store = layout.resolve(&cfg.node.store);
    let conn = rusqlite::Connection::open(&store)?;
    let target = dest.join(STORE_COPY);
    conn.execute(
        "VACUUM INTO ?1",
        [target
            .to_str()
            .ok_or_else(|| Error::Other("backup path is not UTF-8".into()))?],
    )?;
    crate::context::files::set_mode(&target, 0o600)?;
    crate::context::files::copy(&node_dir.join(CONFIG_FILE), &dest.join(CONFIG_FILE))?;
    let mut files = 2;
    for folder in FOLDERS {
        let from = node_dir.join(folder);
        if from.is_dir() {
            files += copy_tree(&from, &dest.join(folder))?;
        }
    }
    Ok(files)
}

/// Restore a backup into `node_dir`, which must not hold a node.
pub fn restore(backup_dir: &Path, node_dir: &Path) -> Result<PathBuf> {
    let cfg = Config::load(backup_dir)?;
    if node_dir.join(CONFIG_FILE).exists() {
        return Err(Error::Other(format!(
            "{} already holds a node; restore into an empty folder",
            node_dir.display()
        )));
    }
    crate::context::files::create_dir_mode(node_dir, 0o711)?;
    for folder in FOLDERS {
        let from = backup_dir.join(folder);
        if from.is_dir() {
            copy_tree(&from, &node_dir.join(folder))?;
        }
    }
    let layout = Layout::new(node_dir);
    let store = layout.resolve(&cfg.node.store);
    if let Some(parent) = store.parent() {
        crate::context::files::create_dir_all(parent)?;
    }
    crate::context::files::copy(&backup_dir.join(STORE_COPY), &store)?;
    // The configuration last: until it is there, the folder is not a node.
    crate::context::files::copy(&backup_dir.join(CONFIG_FILE), &node_dir.join(CONFIG_FILE))?;
    std::fs::metadata(node_dir.join(CONFIG_FILE)).at(node_dir)?;
    Ok(store)
}

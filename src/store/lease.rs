//! The node's lock when its store is on PostgreSQL: a session advisory lock on
//! a connection of its own, held as long as the process lives and reaches the
//! database. Two `sedx run` processes for one node on two machines (the node
//! folder on shared storage, which does not honour file locks) use it: one is
//! active, the other (`--wait`) stands by and takes over when the lock frees,
//! which the server does the moment the active process dies or loses its
//! connection. The active process checks its lock every pass and stops if it
//! has lost it, so the two are never active at once.

use crate::context::error::{Error, Result};
use std::time::Duration;

/// The advisory lock key (one node per database).
const KEY: i64 = 0x5ED0_0001;

/// A held lock.
pub struct Lease {
    client: postgres::Client,
}

/// Who holds a node, as `sedx status` tells it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Holder {
    pub host: String,
    pub pid: i64,
    pub what: String,
    pub since: String,
}

fn connect(url: &str) -> Result<postgres::Client> {
    let mut client = postgres::Client::connect(url, postgres::NoTls)?;
    client.batch_execute(
        "SET client_min_messages TO warning;
         CREATE TABLE IF NOT EXISTS sedx_active(
           id INTEGER PRIMARY KEY, host TEXT NOT NULL, pid BIGINT NOT NULL, what TEXT NOT NULL,
           since TEXT NOT NULL)",
    )?;
    Ok(client)
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Take the node's lock; with `wait`, stand by until it is free, else fail at
/// once with [`Error::Busy`] naming the holder.
pub fn acquire(url: &str, what: &str, wait: bool) -> Result<Lease> {
    let mut client = connect(url)?;
    let mut said = false;
    loop {
        let got: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&KEY])?
            .get(0);
        if got {
            break;
        }
        let holder = holder_of(&mut client)?;
        let who = holder.map_or_else(
            || "starting".to_string(),
            |h| {
                format!(
                    "pid {} on {}, `sedx {}` since {}",
                    h.pid, h.host, h.what, h.since
                )
            },
        );
        if !wait {
            return Err(Error::Busy { holder: who });
        }
        if !said {
            tracing::info!(
                "standby: the node is active elsewhere ({who}); taking over when it stops"
            );
            said = true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let pid = i64::from(std::process::id());
    client.execute(
        "INSERT INTO sedx_active(id, host, pid, what, since) VALUES(1, $1, $2, $3, $4)
         ON CONFLICT(id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
           what = excluded.what, since = excluded.since",
        &[&host(), &pid, &what, &crate::context::clock::now()],
    )?;
    if said {
        tracing::warn!("standby: took over the node, now active");
    }
    Ok(Lease { client })
}

fn holder_of(client: &mut postgres::Client) -> Result<Option<Holder>> {
    let held: bool = client
        .query_one(
            "SELECT EXISTS(SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND ((classid::bigint << 32) | objid::bigint) = $1)",
            &[&KEY],
        )?
        .get(0);
    if !held {
        return Ok(None);
    }
    Ok(client
        .query_opt(
            "SELECT host, pid, what, since FROM sedx_active WHERE id = 1",
            &[],
        )?
        .map(|r| Holder {
            host: r.get(0),
            pid: r.get(1),
            what: r.get(2),
            since: r.get(3),
        }))
}

/// The process holding the node's lock now, if any.
pub fn holder(url: &str) -> Result<Option<Holder>> {
    holder_of(&mut connect(url)?)
}

impl Lease {
    /// Whether the lock is still ours (the connection alive); a process that
    /// has lost it must stop: a standby may be active already.
    pub fn alive(&mut self) -> bool {
        self.client.simple_query("SELECT 1").is_ok()
    }
}

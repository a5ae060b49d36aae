//! What this node sends: reservations and sequence numbers, the outbox of
//! sealed and shipped sets, acknowledgments matched to them, transport state per
//! peer (backoff), pulls seen on a hub, and records held back (R9).

use super::*;

/// How shipping to a peer has been going.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PeerState {
    pub failures: u64,
    /// Unix time before which no new attempt is made (backoff).
    pub next_attempt: i64,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub last_ok_at: Option<String>,
    /// A pulling peer: when sets were last seen taken from its outbox folder.
    pub last_pull_at: Option<String>,
    /// A pulling peer: when the alert that it stopped pulling was raised (cleared
    /// by its next pull).
    pub pull_alert_at: Option<String>,
}

/// What an acknowledgment says about which batch it answers.
#[derive(Debug, Clone)]
pub struct AckFacts<'a> {
    /// The peer the acknowledgment arrived from (and is signed by).
    pub peer: &'a str,
    pub batch_id: Option<&'a str>,
    pub set_name: &'a str,
    /// SHA-256 of the payload the peer received, when it could read one.
    pub sha256: Option<&'a str>,
    pub status: AckStatus,
    pub detail: &'a str,
}

/// How an acknowledgment matched the batches this node sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckMatch {
    Recorded,
    /// A definite outcome was recorded before and stands.
    Kept(AckStatus),
    /// No batch of that id or set name was sent.
    Unknown,
    /// The batch was sent to another peer (named).
    WrongPeer(String),
    /// The batch was sent to this peer with another payload (its hash).
    WrongHash(String),
}

/// A set this node sends, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub set_name: String,
    pub batch_id: String,
    pub kind: DocKind,
    pub peer: String,
    pub seq: Option<u64>,
    pub state: OutboxState,
    pub ship_count: u64,
    pub shipped_at: Option<String>,
    pub ack_status: Option<String>,
    pub ack_detail: Option<String>,
}

pub(super) fn ack_status_of(s: String) -> Result<AckStatus> {
    AckStatus::parse(&s)
        .ok_or_else(|| Error::Other(format!("store: unknown acknowledgment status {s:?}")))
}

fn outbox_row(r: &db::Row<'_>) -> Result<OutboxEntry> {
    let bad = |i: usize, s: String| Error::Other(format!("store: outbox column {i}: {s:?}"));
    let kind: String = r.get(2)?;
    let state: String = r.get(5)?;
    Ok(OutboxEntry {
        set_name: r.get(0)?,
        batch_id: r.get(1)?,
        kind: match kind.as_str() {
            "batch" => DocKind::Batch,
            "ack" => DocKind::Ack,
            _ => return Err(bad(2, kind)),
        },
        peer: r.get(3)?,
        seq: r.get(4)?,
        state: OutboxState::parse(&state).ok_or_else(|| bad(5, state))?,
        ship_count: r.get(6)?,
        shipped_at: r.get(7)?,
        ack_status: r.get(8)?,
        ack_detail: r.get(9)?,
    })
}

/// Where a set this node sent is in its life (the outbox row's state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxState {
    /// Its number is reserved; it is being sealed.
    Sealing,
    Sealed,
    Shipped,
    Acknowledged,
}

impl OutboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Sealing => "sealing",
            OutboxState::Sealed => "sealed",
            OutboxState::Shipped => "shipped",
            OutboxState::Acknowledged => "acknowledged",
        }
    }
    fn parse(s: &str) -> Option<OutboxState> {
        [
            OutboxState::Sealing,
            OutboxState::Sealed,
            OutboxState::Shipped,
            OutboxState::Acknowledged,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

impl Store {
    /// The batch id and sequence already reserved for a dropped file (for one
    /// peer) or for a batch id, if any.
    pub fn reservation(
        &self,
        src_name: &str,
        peer: &str,
        batch_id: Option<&str>,
    ) -> Result<Option<OutboxEntry>> {
        let by_src = self.db.opt(
            "SELECT set_name FROM outbox WHERE src_name = ?1 AND peer = ?2 AND state = 'sealing'",
            params![src_name, peer],
            |r| r.get::<String>(0),
        )?;
        if let Some(name) = by_src {
            return self.outbox(&name);
        }
        match batch_id {
            Some(id) => Ok(self
                .outbox_where("batch_id = ?1 AND kind = 'batch'", id)?
                .filter(|e| e.peer == peer)),
            None => Ok(None),
        }
    }

    /// Whether a dropped file with this content fingerprint was already sifted.
    pub fn drop_seen(&self, tag: &str) -> Result<bool> {
        let n: i64 = self.db.one(
            "SELECT count(*) FROM meta WHERE name = ?1",
            params![format!("drop:{tag}")],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// Give deferred records whose category has started (by the rollout dates in
    /// force now) a file to go out in; returns every pending (file, peer).
    pub fn pending_releases(
        &mut self,
        started: impl Fn(&str) -> bool,
    ) -> Result<Vec<(String, String)>> {
        let tx = self.db.begin()?;
        let mut due: Vec<(i64, String)> = Vec::new();
        tx.each(
            "SELECT id, peer, category FROM deferred WHERE released_in IS NULL ORDER BY id",
            params![],
            |r| {
                if started(&r.get::<String>(2)?) {
                    due.push((r.get(0)?, r.get(1)?));
                }
                Ok(())
            },
        )?;
        let mut files: BTreeMap<String, String> = BTreeMap::new();
        for (id, peer) in due {
            let file = files.entry(peer.clone()).or_insert_with(|| {
                format!("deferred-{peer}-{}.xml", uuid::Uuid::new_v4().simple())
            });
            tx.exec(
                "UPDATE deferred SET released_in = ?1 WHERE id = ?2",
                params![file.as_str(), id],
            )?;
        }
        tx.commit()?;
        self.db.all(
            "SELECT DISTINCT released_in, peer FROM deferred WHERE released_in IS NOT NULL",
            params![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    pub fn deferred_xml(&self, file: &str) -> Result<Vec<String>> {
        self.db.all(
            "SELECT xml FROM deferred WHERE released_in = ?1 ORDER BY id",
            params![file],
            |r| r.get(0),
        )
    }

    pub fn forget_released(&self, file: &str) -> Result<()> {
        self.db
            .exec("DELETE FROM deferred WHERE released_in = ?1", params![file])?;
        Ok(())
    }

    /// Reserve the channel's next sequence number for a batch before sealing it.
    pub fn reserve(
        &mut self,
        src_name: &str,
        batch_id: &str,
        peer: &str,
        dropped_at: Option<&str>,
        set_name: impl Fn(u64) -> String,
    ) -> Result<OutboxEntry> {
        let tx = self.db.begin()?;
        let last: u64 = tx
            .opt(
                "SELECT last_seq FROM channel_out WHERE peer = ?1",
                params![peer],
                |r| r.get(0),
            )?
            .unwrap_or(0);
        let seq = last + 1;
        tx.exec(
            "INSERT INTO channel_out(peer, last_seq) VALUES(?1, ?2)
             ON CONFLICT(peer) DO UPDATE SET last_seq = excluded.last_seq",
            params![peer, seq],
        )?;
        let name = set_name(seq);
        tx.exec(
            "INSERT INTO outbox(set_name, batch_id, kind, peer, seq, src_name, state, created_at, dropped_at)
             VALUES(?1, ?2, 'batch', ?3, ?4, ?5, 'sealing', ?6, ?7)",
            params![name, batch_id, peer, seq, src_name, now(), dropped_at])?;
        tx.commit()?;
        self.outbox(&name)?
            .ok_or_else(|| Error::Other("reservation vanished".into()))
    }

    pub fn mark_sealed(&self, set_name: &str, sha256: &str) -> Result<()> {
        self.db.exec(
            "UPDATE outbox SET state = 'sealed', sha256 = ?2 WHERE set_name = ?1 AND state = 'sealing'",
            params![set_name, sha256])?;
        Ok(())
    }

    /// Record that a set reached the peer (creating the row for sets sealed elsewhere).
    pub fn record_shipped(
        &self,
        set_name: &str,
        batch_id: &str,
        kind: &str,
        peer: &str,
        seq: Option<u64>,
    ) -> Result<()> {
        self.db.exec(
            "INSERT INTO outbox(set_name, batch_id, kind, peer, seq, state, created_at, shipped_at, ship_count)
             VALUES(?1, ?2, ?3, ?4, ?5, 'shipped', ?6, ?6, 1)
             ON CONFLICT(set_name) DO UPDATE SET shipped_at = excluded.shipped_at,
               ship_count = outbox.ship_count + 1, taken_at = NULL,
               state = CASE WHEN outbox.state = 'acknowledged' AND outbox.ack_status <> 'rejected'
                            THEN outbox.state ELSE 'shipped' END",
            params![set_name, batch_id, kind, peer, seq, now()])?;
        Ok(())
    }

    /// Record an acknowledgment for a batch we sent to `peer`. It must match a
    /// batch by id (or, for an answer to a set whose header could not be read, by
    /// set name), sent to that very peer, with the payload hash the answer names.
    /// A definite outcome is never overwritten: accepted stays accepted; a
    /// rejection gives way only to an acceptance (a damaged set sent again); a
    /// "duplicate" never replaces anything definite.
    pub fn record_ack(&self, ack: &AckFacts<'_>) -> Result<AckMatch> {
        let rows: Vec<(String, String, Option<String>, Option<String>)> = self.db.all(
            "SELECT set_name, peer, sha256, ack_status FROM outbox
             WHERE kind = 'batch' AND (CASE WHEN CAST(?1 AS TEXT) IS NOT NULL THEN batch_id = ?1 ELSE set_name = ?2 END)",
            params![ack.batch_id, ack.set_name],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        if rows.is_empty() {
            return Ok(AckMatch::Unknown);
        }
        let to_peer: Vec<_> = rows.iter().filter(|r| r.1 == ack.peer).collect();
        if to_peer.is_empty() {
            return Ok(AckMatch::WrongPeer(rows[0].1.clone()));
        }
        let same = |stored: &Option<String>| match (stored, ack.sha256) {
            (Some(s), Some(a)) => s.eq_ignore_ascii_case(a),
            _ => true,
        };
        let Some(row) = to_peer.iter().find(|r| same(&r.2)) else {
            return Ok(AckMatch::WrongHash(
                to_peer[0].2.clone().unwrap_or_default(),
            ));
        };
        let current = row.3.as_deref().and_then(AckStatus::parse);
        let replaces = matches!(
            (current, ack.status),
            (None, _)
                | (Some(AckStatus::Duplicate), _)
                | (
                    Some(AckStatus::Rejected),
                    AckStatus::Accepted | AckStatus::PartiallyAccepted
                )
        );
        if !replaces {
            return Ok(AckMatch::Kept(current.unwrap_or(ack.status)));
        }
        self.db.exec(
            "UPDATE outbox SET state = 'acknowledged', ack_status = ?2, ack_detail = ?3, ack_at = ?4
             WHERE set_name = ?1",
            params![row.0, ack.status.as_str(), ack.detail, now()])?;
        Ok(AckMatch::Recorded)
    }

    fn outbox_where(&self, cond: &str, arg: &str) -> Result<Option<OutboxEntry>> {
        let sql = format!(
            "SELECT set_name, batch_id, kind, peer, seq, state, ship_count, shipped_at, ack_status, ack_detail
             FROM outbox WHERE {cond} ORDER BY created_at DESC LIMIT 1"
        );
        self.db.opt(&sql, params![arg], outbox_row)
    }

    pub fn outbox(&self, set_name: &str) -> Result<Option<OutboxEntry>> {
        self.outbox_where("set_name = ?1", set_name)
    }

    pub fn outbox_by_batch(&self, batch_id: &str) -> Result<Option<OutboxEntry>> {
        self.outbox_where("batch_id = ?1 AND kind = 'batch'", batch_id)
    }

    pub fn outbox_all(&self) -> Result<Vec<OutboxEntry>> {
        self.db.all("SELECT set_name, batch_id, kind, peer, seq, state, ship_count, shipped_at, ack_status, ack_detail
             FROM outbox ORDER BY peer, kind, seq, created_at", params![], outbox_row)
    }

    pub fn peer_state(&self, peer: &str) -> Result<PeerState> {
        Ok(self.db
            .opt(
                "SELECT failures, next_attempt, last_error, last_error_at, last_ok_at, last_pull_at, pull_alert_at
                 FROM peer_state WHERE peer = ?1",
                params![peer],
                |r| {
                    Ok(PeerState {
                        failures: r.get(0)?,
                        next_attempt: r.get(1)?,
                        last_error: r.get(2)?,
                        last_error_at: r.get(3)?,
                        last_ok_at: r.get(4)?,
                        last_pull_at: r.get(5)?,
                        pull_alert_at: r.get(6)?,
                    })
                })?
            .unwrap_or_default())
    }

    pub fn transport_failed(&self, peer: &str, error: &str, next_attempt: i64) -> Result<()> {
        self.db.exec(
            "INSERT INTO peer_state(peer, failures, next_attempt, last_error, last_error_at) VALUES(?1, 1, ?2, ?3, ?4)
             ON CONFLICT(peer) DO UPDATE SET failures = peer_state.failures + 1, next_attempt = ?2, last_error = ?3, last_error_at = ?4",
            params![peer, next_attempt, error, now()])?;
        Ok(())
    }

    /// Sets left in a pulling peer's outbox folder and not seen taken yet, with
    /// when they were left there.
    pub fn left_for_pull(&self, peer: &str) -> Result<Vec<(String, String)>> {
        self.db.all(
            "SELECT set_name, shipped_at FROM outbox
             WHERE peer = ?1 AND taken_at IS NULL AND shipped_at IS NOT NULL ORDER BY shipped_at",
            params![peer],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// Sets seen taken from a pulling peer's outbox folder: the peer pulled.
    pub fn taken_by_pull(&self, peer: &str, set_names: &[String]) -> Result<()> {
        let tx = self.db.begin()?;
        let at = now();
        for name in set_names {
            tx.exec(
                "UPDATE outbox SET taken_at = ?2 WHERE set_name = ?1",
                params![name, at],
            )?;
        }
        tx.exec(
            "INSERT INTO peer_state(peer, last_pull_at) VALUES(?1, ?2)
             ON CONFLICT(peer) DO UPDATE SET last_pull_at = ?2, pull_alert_at = NULL",
            params![peer, at],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The alert that a pulling peer stopped pulling was raised (logged once).
    pub fn pull_alert_raised(&self, peer: &str) -> Result<()> {
        self.db.exec(
            "INSERT INTO peer_state(peer, pull_alert_at) VALUES(?1, ?2)
             ON CONFLICT(peer) DO UPDATE SET pull_alert_at = ?2",
            params![peer, now()],
        )?;
        Ok(())
    }

    /// Try a peer at the next pass whatever its backoff (its settings changed).
    pub fn transport_retry_now(&self, peer: &str) -> Result<()> {
        self.db.exec(
            "UPDATE peer_state SET next_attempt = 0 WHERE peer = ?1",
            params![peer],
        )?;
        Ok(())
    }

    pub fn transport_ok(&self, peer: &str) -> Result<()> {
        self.db.exec(
            "INSERT INTO peer_state(peer, failures, next_attempt, last_ok_at) VALUES(?1, 0, 0, ?2)
             ON CONFLICT(peer) DO UPDATE SET failures = 0, next_attempt = 0, last_ok_at = ?2",
            params![peer, now()],
        )?;
        Ok(())
    }

    /// Batches shipped before `before` (RFC 3339) and neither acknowledged nor
    /// resent since then.
    pub fn overdue(&self, before: &str) -> Result<Vec<OutboxEntry>> {
        self.db.all("SELECT set_name, batch_id, kind, peer, seq, state, ship_count, shipped_at, ack_status, ack_detail
             FROM outbox WHERE kind = 'batch' AND state = 'shipped' AND shipped_at <= ?1
               AND (resent_at IS NULL OR resent_at < ?1) ORDER BY peer, seq", params![before], outbox_row)
    }

    pub fn mark_resent(&self, set_name: &str) -> Result<()> {
        self.db.exec(
            "UPDATE outbox SET resent_at = ?2 WHERE set_name = ?1",
            params![set_name, now()],
        )?;
        Ok(())
    }
}

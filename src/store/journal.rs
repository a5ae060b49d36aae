//! What this node received: the journal of applied batches per channel, the
//! next sequence number expected, sets held for their turn, and the per-record
//! refusals each acknowledgment repeats.

use super::outbox::ack_status_of;
use super::*;

impl Store {
    /// The last time a batch or acknowledgment came in from a peer.
    pub fn last_received(&self, peer: &str) -> Result<Option<String>> {
        self.db.one(
            "SELECT max(received_at) FROM journal WHERE peer = ?1",
            params![peer],
            |r| r.get(0),
        )
    }

    /// The next sequence number expected from a peer.
    pub fn expected_seq(&self, peer: &str) -> Result<u64> {
        let last: Option<u64> = self.db.opt(
            "SELECT last_seq FROM channel_in WHERE peer = ?1",
            params![peer],
            |r| r.get(0),
        )?;
        Ok(last.unwrap_or(0) + 1)
    }

    pub fn journal(&self, batch_id: &str) -> Result<Option<JournalEntry>> {
        self.db.opt(
            "SELECT batch_id, peer, seq, set_name, sha256, status, accepted, rejected, reason_code,
                        reason_detail, acks_sent, arrived_at FROM journal WHERE batch_id = ?1",
            params![batch_id],
            |r| {
                Ok(JournalEntry {
                    batch_id: r.get(0)?,
                    peer: r.get(1)?,
                    seq: r.get(2)?,
                    set_name: r.get(3)?,
                    sha256: r.get(4)?,
                    status: ack_status_of(r.get(5)?)?,
                    accepted: r.get(6)?,
                    rejected: r.get(7)?,
                    reason_code: r.get(8)?,
                    reason_detail: r.get(9)?,
                    acks_sent: r.get(10)?,
                    arrived_at: r.get(11)?,
                })
            },
        )
    }

    /// The refused records of a batch by reason code: (code, count, first key,
    /// first message), most frequent first.
    pub fn rejection_summary(&self, batch_id: &str) -> Result<Vec<(String, u64, String, String)>> {
        self.db.all(
            "SELECT code, count(*), min(key), min(message) FROM record_result WHERE batch_id = ?1
             GROUP BY code ORDER BY count(*) DESC, code",
            params![batch_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
    }

    pub fn rejections(
        &self,
        batch_id: &str,
        mut each: impl FnMut(RecordRejection) -> Result<()>,
    ) -> Result<()> {
        self.db.each(
            "SELECT idx, key, code, message FROM record_result WHERE batch_id = ?1 ORDER BY idx",
            params![batch_id],
            |r| {
                each(RecordRejection {
                    index: r.get(0)?,
                    key: r.get(1)?,
                    code: r.get(2)?,
                    message: r.get(3)?,
                })
            },
        )
    }

    pub fn count_acks_sent(&self, batch_id: &str) -> Result<()> {
        self.db.exec(
            "UPDATE journal SET acks_sent = acks_sent + 1 WHERE batch_id = ?1",
            params![batch_id],
        )?;
        Ok(())
    }

    pub fn set_held(&self, peer: &str, set_name: &str, seq: u64, batch_id: &str) -> Result<()> {
        self.db.exec(
            "INSERT INTO held(peer, set_name, seq, batch_id, since) VALUES(?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(peer, set_name) DO NOTHING",
            params![peer, set_name, seq, batch_id, now()],
        )?;
        Ok(())
    }

    pub fn clear_held(&self, peer: &str, set_name: &str) -> Result<()> {
        self.db.exec(
            "DELETE FROM held WHERE peer = ?1 AND set_name = ?2",
            params![peer, set_name],
        )?;
        Ok(())
    }

    /// Held sets per peer: (peer, seq, set_name, since).
    pub fn held(&self) -> Result<Vec<(String, u64, String, String)>> {
        self.db.all(
            "SELECT peer, seq, set_name, since FROM held ORDER BY peer, seq",
            params![],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
    }

    /// Deliveries not done yet: (batch id, peer, file name, marking), oldest
    /// first; `marking`: the document was complete and its marker was being written.
    pub fn pending_deliveries(&self) -> Result<Vec<(String, String, String, bool)>> {
        self.db.all(
            "SELECT batch_id, peer, file, state FROM delivery WHERE state IN ('pending', 'marking')
             ORDER BY at, seq",
            params![],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get::<String>(3)? == "marking",
                ))
            },
        )
    }

    /// The batch's document is complete in delivered/; its marker comes next.
    pub fn delivery_marking(&self, batch_id: &str) -> Result<()> {
        self.db.exec(
            "UPDATE delivery SET state = 'marking' WHERE batch_id = ?1",
            params![batch_id],
        )?;
        Ok(())
    }

    /// The batch's file and marker are in delivered/.
    pub fn delivered(&self, batch_id: &str) -> Result<()> {
        let tx = self.db.begin()?;
        tx.exec(
            "UPDATE delivery SET state = 'delivered', delivered_at = ?2 WHERE batch_id = ?1",
            params![batch_id, now()],
        )?;
        tx.exec(
            "DELETE FROM delivery_record WHERE batch_id = ?1",
            params![batch_id],
        )?;
        tx.commit()
    }

    /// The accepted records of batch `batch_id` noted for delivery, as they
    /// are stored now, in batch order (kind by kind).
    pub fn records_of_batch(
        &self,
        spec: &Spec,
        batch_id: &str,
        mut each: impl FnMut(Record) -> Result<()>,
    ) -> Result<()> {
        let cols: Vec<String> = spec
            .fields
            .iter()
            .map(|f| format!("t.{}", column(f.name)))
            .collect();
        let sql = format!(
            "SELECT {} FROM delivery_record d JOIN {} t ON t.{} = d.key
             WHERE d.batch_id = ?1 AND d.kind = ?2 ORDER BY d.idx",
            cols.join(", "),
            spec.table,
            column(spec.key)
        );
        self.db.each(&sql, params![batch_id, spec.element], |row| {
            each(record_of(spec, row)?)
        })
    }
}

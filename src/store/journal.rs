//! What this node received: the journal of applied batches per channel, the
//! next sequence number expected, sets held for their turn, and the per-record
//! refusals each acknowledgment repeats.

use super::outbox::ack_status_of;
use super::*;

impl Store {
    /// The last time a batch or acknowledgment came in from a peer.
    pub fn last_received(&self, peer: &str) -> Result<Option<String>> {
        Ok(self.conn.query_row(
            "SELECT max(received_at) FROM journal WHERE peer = ?1",
            [peer],
            |r| r.get(0),
        )?)
    }

    /// The next sequence number expected from a peer.
    pub fn expected_seq(&self, peer: &str) -> Result<u64> {
        let last: Option<u64> = self
            .conn
            .query_row(
                "SELECT last_seq FROM channel_in WHERE peer = ?1",
                [peer],
                |r| r.get(0),
            )
            .optional()?;
        Ok(last.unwrap_or(0) + 1)
    }

    pub fn journal(&self, batch_id: &str) -> Result<Option<JournalEntry>> {
        Ok(self
            .conn
            .query_row(
                "SELECT batch_id, peer, seq, set_name, sha256, status, accepted, rejected, reason_code,
                        reason_detail, acks_sent, arrived_at FROM journal WHERE batch_id = ?1",
                [batch_id],
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
            .optional()?)
    }

    /// The refused records of a batch by reason code: (code, count, first key,
    /// first message), most frequent first.
    pub fn rejection_summary(&self, batch_id: &str) -> Result<Vec<(String, u64, String, String)>> {
        let mut st = self.conn.prepare(
            "SELECT code, count(*), min(key), min(message) FROM record_result WHERE batch_id = ?1
             GROUP BY code ORDER BY count(*) DESC, code",
        )?;
        let rows = st.query_map([batch_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn rejections(
        &self,
        batch_id: &str,
        mut each: impl FnMut(RecordRejection) -> Result<()>,
    ) -> Result<()> {
        let mut st = self.conn.prepare(
            "SELECT idx, key, code, message FROM record_result WHERE batch_id = ?1 ORDER BY idx",
        )?;
        let mut rows = st.query([batch_id])?;
        while let Some(r) = rows.next()? {
            each(RecordRejection {
                index: r.get(0)?,
                key: r.get(1)?,
                code: r.get(2)?,
                message: r.get(3)?,
            })?;
        }
        Ok(())
    }

    pub fn count_acks_sent(&self, batch_id: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE journal SET acks_sent = acks_sent + 1 WHERE batch_id = ?1",
            [batch_id],
        )?;
        Ok(())
    }

    pub fn set_held(&self, peer: &str, set_name: &str, seq: u64, batch_id: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO held(peer, set_name, seq, batch_id, since) VALUES(?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(peer, set_name) DO NOTHING",
            params![peer, set_name, seq, batch_id, now()],
        )?;
        Ok(())
    }

    pub fn clear_held(&self, peer: &str, set_name: &str) -> Result<()> {
        self.conn.execute(
            "DELETE FROM held WHERE peer = ?1 AND set_name = ?2",
            params![peer, set_name],
        )?;
        Ok(())
    }

    /// Held sets per peer: (peer, seq, set_name, since).
    pub fn held(&self) -> Result<Vec<(String, u64, String, String)>> {
        let mut st = self
            .conn
            .prepare("SELECT peer, seq, set_name, since FROM held ORDER BY peer, seq")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

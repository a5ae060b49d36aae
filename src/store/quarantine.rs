//! The quarantine's rows: what was put aside, why, and its life (open,
//! retried, dismissed).

use super::*;

/// An item refused into quarantine/.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub id: i64,
    pub at: String,
    /// None for a dropped file refused on the way out.
    pub peer: Option<String>,
    pub name: String,
    pub code: String,
    pub detail: String,
    pub kind: QuarantineKind,
    /// The folder that holds it (or, for a set not pulled, where it was).
    pub place: String,
    pub state: QuarantineState,
    pub closed_at: Option<String>,
    pub closed_by: Option<String>,
    pub note: Option<String>,
}

/// What was put aside, which decides what a retry does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum QuarantineKind {
    /// A set a peer sent (quarantine/<peer>/).
    ReceivedSet,
    /// A set in outbound/ that this node did not seal (quarantine/outbound/).
    OutgoingSet,
    /// A file dropped into outbound/ that was refused whole.
    Drop,
    /// Records of a drop refused on the way out (NAME.rejected.xml).
    RefusedRecords,
    /// Records of `sedx import` refused (NAME.rejected.xml).
    ImportRefused,
    /// A set whose name is unsafe (kept under a tag; the peer must send again).
    UnsafeName,
    /// A set too large to pull (left at the hub).
    NotPulled,
}

impl QuarantineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineKind::ReceivedSet => "received-set",
            QuarantineKind::OutgoingSet => "outgoing-set",
            QuarantineKind::Drop => "drop",
            QuarantineKind::RefusedRecords => "refused-records",
            QuarantineKind::ImportRefused => "import-refused",
            QuarantineKind::UnsafeName => "unsafe-name",
            QuarantineKind::NotPulled => "not-pulled",
        }
    }
    fn parse(s: &str) -> Option<QuarantineKind> {
        [
            QuarantineKind::ReceivedSet,
            QuarantineKind::OutgoingSet,
            QuarantineKind::Drop,
            QuarantineKind::RefusedRecords,
            QuarantineKind::ImportRefused,
            QuarantineKind::UnsafeName,
            QuarantineKind::NotPulled,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Where a quarantined item is in its life: open until retried or dismissed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QuarantineState {
    Open,
    Retried,
    Dismissed,
}

impl QuarantineState {
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineState::Open => "open",
            QuarantineState::Retried => "retried",
            QuarantineState::Dismissed => "dismissed",
        }
    }
}

impl Store {
    pub fn log_quarantine(
        &self,
        kind: QuarantineKind,
        peer: Option<&str>,
        set_name: &str,
        code: Code,
        detail: &str,
        place: &str,
    ) -> Result<()> {
        self.db.exec(
            "INSERT INTO quarantine(at, peer, set_name, code, detail, place, kind, state)
             VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, 'open')",
            params![
                now(),
                peer,
                set_name,
                code.as_str(),
                detail,
                place,
                kind.as_str()
            ],
        )?;
        Ok(())
    }

    fn quarantine_where(&self, cond: &str, arg: i64) -> Result<Vec<Quarantined>> {
        self.db.all(&format!(
            "SELECT id, at, peer, set_name, code, detail, kind, place, state, closed_at, closed_by, note
             FROM quarantine WHERE {cond} ORDER BY id DESC"
        ), params![arg], |r| {
            let peer: Option<String> = r.get(2)?;
            // Items of stores before kinds were kept: a peer's set, or a drop.
            let kind = r
                .get::<Option<String>>(6)?
                .and_then(|k| QuarantineKind::parse(&k))
                .unwrap_or(if peer.is_some() {
                    QuarantineKind::ReceivedSet
                } else {
                    QuarantineKind::Drop
                });
            let state = match r.get::<String>(8)?.as_str() {
                "retried" => QuarantineState::Retried,
                "dismissed" => QuarantineState::Dismissed,
                _ => QuarantineState::Open,
            };
            Ok(Quarantined {
                id: r.get(0)?,
                at: r.get(1)?,
                peer,
                name: r.get(3)?,
                code: r.get(4)?,
                detail: r.get(5)?,
                kind,
                place: r.get(7)?,
                state,
                closed_at: r.get(9)?,
                closed_by: r.get(10)?,
                note: r.get(11)?,
            })
        })
    }

    /// Open quarantined items, newest first.
    pub fn quarantined(&self) -> Result<Vec<Quarantined>> {
        self.quarantine_where("state = 'open' AND ?1 = ?1", 0)
    }

    /// Every quarantined item, closed ones too, newest first.
    pub fn quarantine_all(&self) -> Result<Vec<Quarantined>> {
        self.quarantine_where("?1 = ?1", 0)
    }

    pub fn quarantine_item(&self, id: i64) -> Result<Option<Quarantined>> {
        Ok(self.quarantine_where("id = ?1", id)?.into_iter().next())
    }

    /// Close an open item: retried or dismissed, by whom, and why.
    pub fn close_quarantine(
        &self,
        id: i64,
        state: QuarantineState,
        by: &str,
        note: &str,
    ) -> Result<bool> {
        let n = self.db.exec(
            "UPDATE quarantine SET state = ?2, closed_at = ?3, closed_by = ?4, note = ?5
             WHERE id = ?1 AND state = 'open'",
            params![id, state.as_str(), now(), by, note],
        )?;
        Ok(n == 1)
    }
}

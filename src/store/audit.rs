//! What the console and the alerts keep: the audit trail of operators' actions
//! (append-only) and the state of each alert, so that an alert is raised once
//! and resolved once, across restarts too.

use super::*;

/// One line of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    pub at: String,
    pub user: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
}

/// An alert condition as the store remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRow {
    pub key: String,
    pub kind: String,
    pub subject: String,
    pub detail: String,
    /// When the condition was first seen (an alert is raised once it has lasted).
    pub since: String,
    pub raised_at: Option<String>,
    pub delivered: bool,
    pub resolved_at: Option<String>,
    pub resolved_delivered: bool,
}

impl Store {
    /// Write one action to the audit trail (durable before the answer goes out).
    pub fn audit(&self, user: &str, action: &str, target: &str, outcome: &str) -> Result<()> {
        self.db.exec(
            "INSERT INTO audit(at, by_user, action, target, outcome) VALUES(?1, ?2, ?3, ?4, ?5)",
            params![now(), user, action, target, outcome],
        )?;
        Ok(())
    }

    /// The latest `limit` lines of the audit trail, newest first.
    pub fn audit_trail(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        self.db.all(
            "SELECT at, by_user, action, target, outcome FROM audit ORDER BY id DESC LIMIT ?1",
            params![limit],
            |r| {
                Ok(AuditEntry {
                    at: r.get(0)?,
                    user: r.get(1)?,
                    action: r.get(2)?,
                    target: r.get(3)?,
                    outcome: r.get(4)?,
                })
            },
        )
    }

    /// Every alert row not yet resolved and delivered, oldest first.
    pub fn alerts(&self) -> Result<Vec<AlertRow>> {
        self.db.all("SELECT key, kind, subject, detail, since, raised_at, delivered, resolved_at, resolved_delivered
             FROM alert ORDER BY since, key", params![], |r| {
            Ok(AlertRow {
                key: r.get(0)?,
                kind: r.get(1)?,
                subject: r.get(2)?,
                detail: r.get(3)?,
                since: r.get(4)?,
                raised_at: r.get(5)?,
                delivered: r.get(6)?,
                resolved_at: r.get(7)?,
                resolved_delivered: r.get(8)?,
            })
        })
    }

    /// A condition seen now: a new row (not raised yet), or its detail refreshed.
    pub fn alert_seen(&self, key: &str, kind: &str, subject: &str, detail: &str) -> Result<()> {
        self.db.exec(
            "INSERT INTO alert(key, kind, subject, detail, since) VALUES(?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(key) DO UPDATE SET detail = excluded.detail",
            params![key, kind, subject, detail, now()],
        )?;
        Ok(())
    }

    /// The condition has lasted long enough: raise it (once).
    pub fn alert_raise(&self, key: &str) -> Result<()> {
        self.db.exec(
            "UPDATE alert SET raised_at = ?2 WHERE key = ?1 AND raised_at IS NULL",
            params![key, now()],
        )?;
        Ok(())
    }

    /// The alert (or its resolution) reached every configured receiver.
    pub fn alert_delivered(&self, key: &str, resolution: bool) -> Result<()> {
        let sql = if resolution {
            "DELETE FROM alert WHERE key = ?1"
        } else {
            "UPDATE alert SET delivered = 1 WHERE key = ?1"
        };
        self.db.exec(sql, params![key])?;
        Ok(())
    }

    /// The condition is gone: a raised alert awaits its resolution message; one
    /// never raised is simply forgotten.
    pub fn alert_cleared(&self, key: &str) -> Result<()> {
        self.db.exec(
            "DELETE FROM alert WHERE key = ?1 AND raised_at IS NULL",
            params![key],
        )?;
        self.db.exec(
            "UPDATE alert SET resolved_at = ?2 WHERE key = ?1 AND resolved_at IS NULL",
            params![key, now()],
        )?;
        Ok(())
    }
}

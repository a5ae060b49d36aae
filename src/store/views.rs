//! What an operator looks at: the equipment view (查看设备信息) following code
//! changes, the acceptance queue (业务受理), and discrepancies (R6).

use crate::context::error::Result;
use crate::domain::spec::{column, RecordKind};
use crate::store::Store;
use rusqlite::OptionalExtension;
use std::fmt::Write;

/// A stored value as an operator sees it: control characters escaped (a value
/// from a peer cannot start a line of its own), long values cut.
fn shown(value: String) -> String {
    match crate::context::text::field(&value) {
        std::borrow::Cow::Borrowed(_) => value,
        std::borrow::Cow::Owned(clean) => clean,
    }
}

/// All registration codes a piece of equipment has had, oldest first, ending
/// with the current one (code changes followed both ways).
pub fn code_chain(store: &Store, code: &str) -> Result<Vec<String>> {
    let conn = store.conn();
    let step = |sql: &str, from: &str| -> Result<Option<String>> {
        Ok(conn.query_row(sql, [from], |r| r.get(0)).optional()?)
    };
    let mut chain = vec![code.to_string()];
    while let Some(older) = step(
        "SELECT old_value FROM code_history WHERE field = 'registration-code' AND new_value = ?1",
        &chain[0],
    )? {
        if chain.contains(&older) {
            break;
        }
        chain.insert(0, older);
    }
    while let Some(newer) = step(
        "SELECT new_value FROM code_history WHERE field = 'registration-code' AND old_value = ?1",
        chain.last().map(String::as_str).unwrap_or_default(),
    )? {
        if chain.contains(&newer) {
            break;
        }
        chain.push(newer);
    }
    Ok(chain)
}

/// `sedx equipment show CODE`: the latest data and the history.
pub fn equipment_show(store: &Store, code: &str) -> Result<Option<String>> {
    let conn = store.conn();
    let chain = code_chain(store, code)?;
    let current = chain.last().cloned().unwrap_or_default();
    let spec = RecordKind::Equipment.spec();
    let cols: Vec<String> = spec.fields.iter().map(|f| column(f.name)).collect();
    let sql = format!(
        "SELECT {}, temporary_agency, origin, updated_at FROM equipment WHERE registration_code = ?1",
        cols.join(", ")
    );
    let row: Option<Vec<Option<String>>> = conn
        .query_row(&sql, [&current], |r| {
            (0..cols.len() + 3).map(|i| r.get(i)).collect()
        })
        .optional()?;
    let Some(row) = row else { return Ok(None) };
    let mut out = String::new();
    let _ = writeln!(out, "equipment {}", crate::context::text::field(&current));
    if chain.len() > 1 {
        let shown: Vec<String> = chain.iter().map(|c| shown(c.clone())).collect();
        let _ = writeln!(out, "  registration codes: {}", shown.join(" → "));
    }
    for (f, v) in spec.fields.iter().zip(&row) {
        if let Some(v) = v {
            let _ = writeln!(out, "  {:<22} {}", f.name, crate::context::text::field(v));
        }
    }
    if let Some(t) = &row[cols.len()] {
        let _ = writeln!(
            out,
            "  {:<22} {} (temporary change, R13)",
            "temporaryAgency",
            crate::context::text::field(t)
        );
    }
    let _ = writeln!(
        out,
        "  last change            {} from {}",
        row[cols.len() + 2]
            .as_deref()
            .map_or("-".into(), crate::context::clock::shanghai_text),
        row[cols.len() + 1].as_deref().unwrap_or("-")
    );
    let marks = vec!["?"; chain.len()].join(",");
    let params = rusqlite::params_from_iter(chain.iter());
    let mut st = conn.prepare(&format!(
        "SELECT change_id, field, old_value, new_value, date FROM code_history
         WHERE old_value IN ({marks}) OR new_value IN ({marks}) ORDER BY date"
    ))?;
    let both: Vec<&String> = chain.iter().chain(chain.iter()).collect();
    let rows = st.query_map(rusqlite::params_from_iter(both), |r| {
        Ok(format!(
            "  code change {} {}: {} → {} on {}",
            shown(r.get::<_, String>(0)?),
            shown(r.get::<_, String>(1)?),
            shown(r.get::<_, String>(2)?),
            shown(r.get::<_, String>(3)?),
            shown(r.get::<_, String>(4)?)
        ))
    })?;
    for r in rows {
        let _ = writeln!(out, "{}", r?);
    }
    let mut st = conn.prepare(&format!(
        "SELECT report_number, kind, date, conclusion, agency, national FROM inspection_report
         WHERE registration_code IN ({marks}) ORDER BY date"
    ))?;
    let rows = st.query_map(params, |r| {
        Ok(format!(
            "  report {} {} {} {} by {}{}",
            shown(r.get::<_, String>(0)?),
            shown(r.get::<_, String>(1)?),
            shown(r.get::<_, String>(2)?),
            shown(r.get::<_, String>(3)?),
            shown(r.get::<_, String>(4)?),
            if r.get::<_, i64>(5)? == 1 {
                " [national-level agency]"
            } else {
                ""
            }
        ))
    })?;
    for r in rows {
        let _ = writeln!(out, "{}", r?);
    }
    responsibility_history(store, &chain, &mut out)?;
    Ok(Some(out))
}

/// The equipment's responsibility decisions (R12, R13), oldest first, and what
/// still awaits a decision.
fn responsibility_history(store: &Store, chain: &[String], out: &mut String) -> Result<()> {
    let marks = vec!["?"; chain.len()].join(",");
    let mut st = store.conn().prepare(&format!(
        "SELECT date, 'assignment ' || assignment_id || ': responsible agency ' || agency
                || coalesce(' (proposal ' || proposal_id || ')', '')
         FROM responsibility_assignment WHERE registration_code IN ({marks})
         UNION ALL
         SELECT date, 'temporary change ' || change_id || ': ' || action || ' ' || agency
                || coalesce(' (request ' || request_id || ')', '')
         FROM responsibility_change WHERE registration_code IN ({marks})
         UNION ALL
         SELECT date, 'proposal ' || proposal_id || ' from ' || origin || ': ' || proposed_agency
         FROM responsibility_proposal WHERE registration_code IN ({marks})
         UNION ALL
         SELECT date, 'change request ' || request_id || ' from ' || origin || ': ' || agency
         FROM responsibility_change_request WHERE registration_code IN ({marks})
         ORDER BY 1, 2"
    ))?;
    let all: Vec<&String> = (0..4).flat_map(|_| chain.iter()).collect();
    let rows = st.query_map(rusqlite::params_from_iter(all), |r| {
        Ok(format!(
            "  {} {}",
            shown(r.get::<_, String>(0)?),
            shown(r.get::<_, String>(1)?)
        ))
    })?;
    for r in rows {
        let _ = writeln!(out, "{}", r?);
    }
    for code in chain {
        for u in undecided(store, Some(code))? {
            let _ = writeln!(
                out,
                "  awaiting decision 待决定: {} {} from {} ({}, {})",
                u.kind, u.id, u.from, u.agency, u.date
            );
        }
    }
    Ok(())
}

/// A proposal (R12) or change request (R13) awaiting supervision's decision.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Undecided {
    /// "proposal" or "change request".
    pub kind: &'static str,
    pub id: String,
    pub registration_code: String,
    /// The agency proposed, or the agency that asks.
    pub agency: String,
    pub date: String,
    /// The peer it came from.
    pub from: String,
}

/// Proposals with no assignment that answers them (by proposalId, or a later
/// assignment of the same equipment) and approved change requests with no
/// change that answers them (by requestId, or a later grant to that agency).
const UNDECIDED: &str = "
SELECT 'proposal', p.proposal_id, p.registration_code, p.proposed_agency, p.date, p.origin
FROM responsibility_proposal p
WHERE NOT EXISTS (SELECT 1 FROM responsibility_assignment a
                  WHERE a.proposal_id = p.proposal_id
                     OR (a.registration_code = p.registration_code AND a.date >= p.date))
UNION ALL
SELECT 'change request', q.request_id, q.registration_code, q.agency, q.date, q.origin
FROM responsibility_change_request q
WHERE NOT EXISTS (SELECT 1 FROM responsibility_change c
                  WHERE c.request_id = q.request_id
                     OR (c.registration_code = q.registration_code AND c.agency = q.agency
                         AND c.date >= q.date))";

/// `sedx decisions`: what awaits supervision's decision, oldest first;
/// `code` limits it to one piece of equipment.
pub fn undecided(store: &Store, code: Option<&str>) -> Result<Vec<Undecided>> {
    let sql = format!(
        "SELECT * FROM ({UNDECIDED}) WHERE ?1 IS NULL OR registration_code = ?1 ORDER BY 5, 2"
    );
    let mut st = store.conn().prepare(&sql)?;
    let rows = st.query_map([code], |r| {
        let get = |i: usize| -> rusqlite::Result<String> {
            Ok(shown(r.get::<_, Option<String>>(i)?.unwrap_or_default()))
        };
        Ok(Undecided {
            kind: if get(0)? == "proposal" {
                "proposal"
            } else {
                "change request"
            },
            id: get(1)?,
            registration_code: get(2)?,
            agency: get(3)?,
            date: get(4)?,
            from: get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// One construction notice awaiting its installation inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Awaiting {
    pub notice: String,
    pub category: String,
    pub user_unit: String,
    pub address: String,
    pub planned_start: String,
    pub agency: String,
}

/// The acceptance queue (业务受理, R11): construction notices for which no
/// installation-supervision report exists yet.
pub fn acceptance(store: &Store) -> Result<Vec<Awaiting>> {
    let mut st = store.conn().prepare(
        "SELECT n.notice_number, n.category, n.user_unit, n.address, n.planned_start, n.inspection_agency
         FROM construction_notice n
         WHERE NOT EXISTS (
           SELECT 1 FROM inspection_report r
           LEFT JOIN equipment e ON e.registration_code = r.registration_code
           WHERE r.kind = 'installation-supervision'
             AND (r.registration_code = n.registration_code
                  OR (e.factory_serial = n.factory_serial AND e.category = n.category)))
         ORDER BY n.planned_start, n.notice_number",
    )?;
    let rows = st.query_map([], |r| {
        let get = |i: usize| -> rusqlite::Result<String> {
            Ok(shown(r.get::<_, Option<String>>(i)?.unwrap_or_default()))
        };
        Ok(Awaiting {
            notice: get(0)?,
            category: get(1)?,
            user_unit: get(2)?,
            address: get(3)?,
            planned_start: get(4)?,
            agency: get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// `sedx discrepancies`: fields a peer sent that were not its to change (R4),
/// and the discrepancy notices agencies sent (R6).
pub fn discrepancies(store: &Store) -> Result<Vec<String>> {
    let conn = store.conn();
    let mut out = Vec::new();
    let mut st = conn.prepare(
        "SELECT at, peer, kind, key, field, coalesce(stored, ''), coalesce(received, '') FROM discrepancy ORDER BY id",
    )?;
    let rows = st.query_map([], |r| {
        Ok(format!(
            "{} from {}: {} {} {}: on record {:?}, received {:?} (not applied)",
            shown(r.get::<_, String>(0)?),
            shown(r.get::<_, String>(1)?),
            shown(r.get::<_, String>(2)?),
            shown(r.get::<_, String>(3)?),
            shown(r.get::<_, String>(4)?),
            shown(r.get::<_, String>(5)?),
            shown(r.get::<_, String>(6)?)
        ))
    })?;
    for r in rows {
        out.push(r?);
    }
    let mut st = conn.prepare(
        "SELECT date, agency, registration_code, field, coalesce(value_on_record, ''), coalesce(value_found, ''), notice_id
         FROM discrepancy_notice ORDER BY date, notice_id",
    )?;
    let rows = st.query_map([], |r| {
        Ok(format!(
            "{} notice {} from {}: equipment {} {}: on record {:?}, found {:?}",
            shown(r.get::<_, String>(0)?),
            shown(r.get::<_, String>(6)?),
            shown(r.get::<_, String>(1)?),
            shown(r.get::<_, String>(2)?),
            shown(r.get::<_, String>(3)?),
            shown(r.get::<_, String>(4)?),
            shown(r.get::<_, String>(5)?)
        ))
    })?;
    for r in rows {
        out.push(r?);
    }
    Ok(out)
}

/// Totals for `/metrics`, read from the journal and the outbox.
#[derive(Debug, Default, Clone)]
pub struct ExchangeTotals {
    /// (peer, "batch" or "ack") → sets shipped.
    pub sets_sent: Vec<(String, String, u64)>,
    /// (peer, status) → batches received and journaled.
    pub batches_received: Vec<(String, String, u64)>,
    /// peer → (records applied, records refused).
    pub records: Vec<(String, u64, u64)>,
    /// acknowledgment status → batches of ours answered so.
    pub acks_received: Vec<(String, u64)>,
    /// Seconds from shipping to acknowledgment, per batch answered.
    pub ack_latency_secs: Vec<f64>,
}

/// [`ExchangeTotals`] of this node.
pub fn exchange_totals(store: &Store) -> Result<ExchangeTotals> {
    let conn = store.conn();
    let mut t = ExchangeTotals::default();
    let mut st = conn.prepare(
        "SELECT peer, kind, count(*) FROM outbox WHERE shipped_at IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2",
    )?;
    for r in st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))? {
        t.sets_sent.push(r?);
    }
    let mut st =
        conn.prepare("SELECT peer, status, count(*) FROM journal GROUP BY 1, 2 ORDER BY 1, 2")?;
    for r in st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))? {
        t.batches_received.push(r?);
    }
    let mut st = conn.prepare(
        "SELECT peer, coalesce(sum(accepted), 0), coalesce(sum(rejected), 0) FROM journal GROUP BY 1 ORDER BY 1",
    )?;
    for r in st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))? {
        t.records.push(r?);
    }
    let mut st = conn.prepare(
        "SELECT ack_status, count(*) FROM outbox WHERE kind = 'batch' AND ack_status IS NOT NULL GROUP BY 1 ORDER BY 1",
    )?;
    for r in st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))? {
        t.acks_received.push(r?);
    }
    let mut st = conn.prepare(
        "SELECT (julianday(ack_at) - julianday(shipped_at)) * 86400.0 FROM outbox
         WHERE kind = 'batch' AND ack_at IS NOT NULL AND shipped_at IS NOT NULL",
    )?;
    for r in st.query_map([], |r| r.get::<_, f64>(0))? {
        t.ack_latency_secs.push(r?.max(0.0));
    }
    Ok(t)
}

//! What an operator looks at: the equipment view (查看设备信息) following code
//! changes, the acceptance queue (业务受理), and discrepancies (R6).

use crate::context::error::Result;
use crate::domain::spec::{column, RecordKind};
use crate::store::db::params;
use crate::store::Store;
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
    let conn = store.db();
    let step = |sql: &str, from: &str| -> Result<Option<String>> {
        conn.opt(sql, params![from], |r| r.get(0))
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
    let conn = store.db();
    let chain = code_chain(store, code)?;
    let current = chain.last().cloned().unwrap_or_default();
    let spec = RecordKind::Equipment.spec();
    let cols: Vec<String> = spec.fields.iter().map(|f| column(f.name)).collect();
    let sql = format!(
        "SELECT {}, temporary_agency, origin, updated_at FROM equipment WHERE registration_code = ?1",
        cols.join(", ")
    );
    let row: Option<Vec<Option<String>>> = conn.opt(&sql, params![&current], |r| {
        (0..cols.len() + 3).map(|i| r.get(i)).collect()
    })?;
    let Some(row) = row else { return Ok(None) };
    let mut out = String::new();
    let _ = writeln!(out, "equipment {}", crate::context::text::field(&current));
    if chain.len() > 1 {
        let shown: Vec<String> = chain.iter().map(|c| shown(c.clone())).collect();
        let _ = writeln!(out, "  registration codes: {}", shown.join(" → "));
    }
    // Chinese first: each field's label, padded with ideographic spaces so the
    // names and values line up in a terminal.
    let label = |name: &str| {
        let zh = crate::domain::spec::label_zh(name);
        format!(
            "{zh}{}",
            "\u{3000}".repeat(6usize.saturating_sub(zh.chars().count()))
        )
    };
    for (f, v) in spec.fields.iter().zip(&row) {
        if let Some(v) = v {
            let _ = writeln!(
                out,
                "  {} {:<22} {}",
                label(f.name),
                f.name,
                crate::context::text::field(v)
            );
        }
    }
    if let Some(t) = &row[cols.len()] {
        let _ = writeln!(
            out,
            "  {} {:<22} {} (temporary change, R13)",
            label("temporaryAgency"),
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
    let marks = |from: usize| {
        (from..from + chain.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let one: Vec<&dyn crate::store::db::ToParam> = chain
        .iter()
        .map(|c| c as &dyn crate::store::db::ToParam)
        .collect();
    let both: Vec<&dyn crate::store::db::ToParam> = one.iter().chain(one.iter()).copied().collect();
    let lines = conn.all(
        &format!(
            "SELECT change_id, field, old_value, new_value, date FROM code_history
         WHERE old_value IN ({}) OR new_value IN ({}) ORDER BY date",
            marks(1),
            marks(1 + chain.len())
        ),
        &both,
        |r| {
            Ok(format!(
                "  code change {} {}: {} → {} on {}",
                shown(r.get::<String>(0)?),
                shown(r.get::<String>(1)?),
                shown(r.get::<String>(2)?),
                shown(r.get::<String>(3)?),
                shown(r.get::<String>(4)?)
            ))
        },
    )?;
    for l in lines {
        let _ = writeln!(out, "{l}");
    }
    let lines = conn.all(
        &format!(
            "SELECT report_number, kind, date, conclusion, agency, national FROM inspection_report
         WHERE registration_code IN ({}) ORDER BY date",
            marks(1)
        ),
        &one,
        |r| {
            Ok(format!(
                "  report {} {} {} {} by {}{}",
                shown(r.get::<String>(0)?),
                shown(r.get::<String>(1)?),
                shown(r.get::<String>(2)?),
                shown(r.get::<String>(3)?),
                shown(r.get::<String>(4)?),
                if r.get::<i64>(5)? == 1 {
                    " [national-level agency]"
                } else {
                    ""
                }
            ))
        },
    )?;
    for l in lines {
        let _ = writeln!(out, "{l}");
    }
    responsibility_history(store, &chain, &mut out)?;
    Ok(Some(out))
}

/// The equipment's responsibility decisions (R12, R13), oldest first, and what
/// still awaits a decision.
fn responsibility_history(store: &Store, chain: &[String], out: &mut String) -> Result<()> {
    let n = chain.len();
    let marks = |k: usize| {
        (k * n + 1..=k * n + n)
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let sql = format!(
        "SELECT date, 'assignment ' || assignment_id || ': responsible agency ' || agency
                || coalesce(' (proposal ' || proposal_id || ')', '')
         FROM responsibility_assignment WHERE registration_code IN ({})
         UNION ALL
         SELECT date, 'temporary change ' || change_id || ': ' || action || ' ' || agency
                || coalesce(' (request ' || request_id || ')', '')
         FROM responsibility_change WHERE registration_code IN ({})
         UNION ALL
         SELECT date, 'proposal ' || proposal_id || ' from ' || origin || ': ' || proposed_agency
         FROM responsibility_proposal WHERE registration_code IN ({})
         UNION ALL
         SELECT date, 'change request ' || request_id || ' from ' || origin || ': ' || agency
         FROM responsibility_change_request WHERE registration_code IN ({})
         ORDER BY 1, 2",
        marks(0),
        marks(1),
        marks(2),
        marks(3)
    );
    let all: Vec<&dyn crate::store::db::ToParam> = (0..4)
        .flat_map(|_| chain.iter())
        .map(|c| c as &dyn crate::store::db::ToParam)
        .collect();
    let lines = store.db().all(&sql, &all, |r| {
        Ok(format!(
            "  {} {}",
            shown(r.get::<String>(0)?),
            shown(r.get::<String>(1)?)
        ))
    })?;
    for l in lines {
        let _ = writeln!(out, "{l}");
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
        "SELECT * FROM ({UNDECIDED}) AS u WHERE CAST(?1 AS TEXT) IS NULL OR registration_code = ?1 ORDER BY 5, 2"
    );
    store.db().all(&sql, params![code], |r| {
        let get = |i: usize| -> Result<String> {
            Ok(shown(r.get::<Option<String>>(i)?.unwrap_or_default()))
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
    })
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
    store.db().all("SELECT n.notice_number, n.category, n.user_unit, n.address, n.planned_start, n.inspection_agency
         FROM construction_notice n
         WHERE NOT EXISTS (
           SELECT 1 FROM inspection_report r
           LEFT JOIN equipment e ON e.registration_code = r.registration_code
           WHERE r.kind = 'installation-supervision'
             AND (r.registration_code = n.registration_code
                  OR (e.factory_serial = n.factory_serial AND e.category = n.category)))
         ORDER BY n.planned_start, n.notice_number", params![], |r| {
        let get = |i: usize| -> Result<String> {
            Ok(shown(r.get::<Option<String>>(i)?.unwrap_or_default()))
        };
        Ok(Awaiting {
            notice: get(0)?,
            category: get(1)?,
            user_unit: get(2)?,
            address: get(3)?,
            planned_start: get(4)?,
            agency: get(5)?,
        })
    })
}

/// `sedx discrepancies`: fields a peer sent that were not its to change (R4),
/// and the discrepancy notices agencies sent (R6).
pub fn discrepancies(store: &Store) -> Result<Vec<String>> {
    let conn = store.db();
    let mut out = conn.all(
        "SELECT at, peer, kind, key, field, coalesce(stored, ''), coalesce(received, '') FROM discrepancy ORDER BY id",
        params![],
        |r| {
        Ok(format!(
            "{} from {}: {} {} {}: on record {:?}, received {:?} (not applied)",
            shown(r.get::<String>(0)?),
            shown(r.get::<String>(1)?),
            shown(r.get::<String>(2)?),
            shown(r.get::<String>(3)?),
            shown(r.get::<String>(4)?),
            shown(r.get::<String>(5)?),
            shown(r.get::<String>(6)?)
        ))
    })?;
    out.extend(conn.all(
        "SELECT date, agency, registration_code, field, coalesce(value_on_record, ''), coalesce(value_found, ''), notice_id
         FROM discrepancy_notice ORDER BY date, notice_id",
        params![],
        |r| {
        Ok(format!(
            "{} notice {} from {}: equipment {} {}: on record {:?}, found {:?}",
            shown(r.get::<String>(0)?),
            shown(r.get::<String>(6)?),
            shown(r.get::<String>(1)?),
            shown(r.get::<String>(2)?),
            shown(r.get::<String>(3)?),
            shown(r.get::<String>(4)?),
            shown(r.get::<String>(5)?)
        ))
    })?);
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
    /// peer → batches sealed for it.
    pub sets_sealed: Vec<(String, u64)>,
    /// reason code → items ever quarantined.
    pub quarantined: Vec<(String, u64)>,
}

/// [`ExchangeTotals`] of this node.
pub fn exchange_totals(store: &Store) -> Result<ExchangeTotals> {
    let conn = store.db();
    let secs = |t: &str| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .map(|t| t.unix_timestamp() as f64)
            .ok()
    };
    let mut ack_latency_secs = Vec::new();
    conn.each(
        "SELECT shipped_at, ack_at FROM outbox
         WHERE kind = 'batch' AND ack_at IS NOT NULL AND shipped_at IS NOT NULL",
        params![],
        |r| {
            if let (Some(a), Some(b)) = (secs(&r.get::<String>(0)?), secs(&r.get::<String>(1)?)) {
                ack_latency_secs.push((b - a).max(0.0));
            }
            Ok(())
        },
    )?;
    Ok(ExchangeTotals {
        sets_sent: conn.all(
            "SELECT peer, kind, count(*) FROM outbox WHERE shipped_at IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2",
            params![],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?,
        batches_received: conn.all(
            "SELECT peer, status, count(*) FROM journal GROUP BY 1, 2 ORDER BY 1, 2",
            params![],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?,
        records: conn.all(
            "SELECT peer, CAST(coalesce(sum(accepted), 0) AS BIGINT), CAST(coalesce(sum(rejected), 0) AS BIGINT)
             FROM journal GROUP BY 1 ORDER BY 1",
            params![],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?,
        acks_received: conn.all(
            "SELECT ack_status, count(*) FROM outbox WHERE kind = 'batch' AND ack_status IS NOT NULL GROUP BY 1 ORDER BY 1",
            params![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?,
        ack_latency_secs,
        sets_sealed: conn.all(
            "SELECT peer, count(*) FROM outbox WHERE kind = 'batch' AND state != 'sealing' GROUP BY 1 ORDER BY 1",
            params![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?,
        quarantined: conn.all(
            "SELECT code, count(*) FROM quarantine GROUP BY 1 ORDER BY 1",
            params![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?,
    })
}

/// One batch in the console's list, either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRow {
    /// "out": sealed here for a peer; "in": received from a peer.
    pub direction: &'static str,
    pub batch_id: String,
    pub peer: String,
    pub seq: Option<u64>,
    pub set_name: String,
    /// Sealed (out) or received (in), RFC 3339.
    pub at: String,
    /// out: the peer's acknowledgment ("accepted", ...) or the outbox state;
    /// in: the journal's status.
    pub status: String,
    pub accepted: Option<u64>,
    pub rejected: Option<u64>,
}

/// Batches both ways, newest first; `search` (if not empty) matches the batch
/// id, the set name or the peer.
pub fn batches(store: &Store, search: &str, limit: u32) -> Result<Vec<BatchRow>> {
    let like = format!("%{}%", search.replace(['%', '_'], ""));
    store.db().all("SELECT 'out', batch_id, peer, seq, set_name, created_at, coalesce(ack_status, state), NULL, NULL
         FROM outbox WHERE kind = 'batch' AND (batch_id LIKE ?1 OR set_name LIKE ?1 OR peer LIKE ?1)
         UNION ALL
         SELECT 'in', batch_id, peer, seq, set_name, received_at, status, accepted, rejected
         FROM journal WHERE batch_id LIKE ?1 OR set_name LIKE ?1 OR peer LIKE ?1
         ORDER BY 6 DESC, 5 DESC LIMIT ?2", params![like, limit], |r| {
        Ok(BatchRow {
            direction: if r.get::<String>(0)? == "out" {
                "out"
            } else {
                "in"
            },
            batch_id: r.get(1)?,
            peer: r.get(2)?,
            seq: r.get(3)?,
            set_name: r.get(4)?,
            at: r.get(5)?,
            status: r.get(6)?,
            accepted: r.get(7)?,
            rejected: r.get(8)?,
        })
    })
}

/// A batch's life, as far as this node saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchDetail {
    pub batch_id: String,
    /// (step, RFC 3339 time, what happened), in order.
    pub timeline: Vec<(&'static str, String, String)>,
    /// (kind, key) of the records this batch last wrote (latest versions).
    pub records: Vec<(String, String)>,
    /// (index, key, reason code, message) of each record refused.
    pub rejections: Vec<(u64, String, String, String)>,
    /// The acknowledgment's status and text, either way.
    pub ack: Option<(String, String)>,
}

/// The detail of batch `id` (sent or received), None if unknown.
pub fn batch_detail(store: &Store, id: &str) -> Result<Option<BatchDetail>> {
    let conn = store.db();
    let mut d = BatchDetail {
        batch_id: id.to_string(),
        ..Default::default()
    };
    let sent = conn.opt(
        "SELECT peer, set_name, src_name, created_at, shipped_at, ship_count, ack_status, ack_at,
                    coalesce(ack_detail, ''), resent_at, state, dropped_at
             FROM outbox WHERE batch_id = ?1 AND kind = 'batch' ORDER BY created_at LIMIT 1",
        params![id],
        |r| {
            Ok((
                r.get::<String>(0)?,
                r.get::<String>(1)?,
                r.get::<Option<String>>(2)?,
                r.get::<String>(3)?,
                r.get::<Option<String>>(4)?,
                r.get::<u64>(5)?,
                r.get::<Option<String>>(6)?,
                r.get::<Option<String>>(7)?,
                r.get::<String>(8)?,
                r.get::<Option<String>>(9)?,
                r.get::<String>(10)?,
                r.get::<Option<String>>(11)?,
            ))
        },
    )?;
    if let Some((
        peer,
        set,
        src,
        created,
        shipped,
        ships,
        ack,
        ack_at,
        ack_detail,
        resent,
        state,
        dropped,
    )) = sent
    {
        if let Some(t) = dropped {
            d.timeline.push((
                "dropped",
                t,
                format!("{} in outbound/", shown(src.clone().unwrap_or_default())),
            ));
        }
        d.timeline.push((
            "sealed",
            created,
            format!(
                "{} → {set} for {peer}",
                shown(src.unwrap_or_else(|| "-".into()))
            ),
        ));
        if let Some(t) = shipped {
            d.timeline
                .push(("shipped", t, format!("{ships} time(s), state {state}")));
        }
        if let Some(t) = resent {
            d.timeline
                .push(("resent", t, "put back in outbound/ by an operator".into()));
        }
        if let (Some(status), Some(t)) = (ack, ack_at) {
            d.timeline.push((
                "acknowledged",
                t,
                format!("{status}: {}", shown(ack_detail.clone())),
            ));
            d.ack = Some((status, shown(ack_detail)));
        }
    }
    if let Some(j) = store.journal(id)? {
        let received: String = conn.one(
            "SELECT received_at FROM journal WHERE batch_id = ?1",
            params![id],
            |r| r.get(0),
        )?;
        let what = match &j.reason_code {
            Some(code) => format!(
                "{} ({code}: {})",
                j.status.as_str(),
                shown(j.reason_detail.clone().unwrap_or_default())
            ),
            None => format!(
                "{}: {} applied, {} refused",
                j.status.as_str(),
                j.accepted,
                j.rejected
            ),
        };
        d.timeline.push((
            "received",
            j.arrived_at.clone().unwrap_or_else(|| received.clone()),
            format!(
                "{} seq {} from {}",
                shown(j.set_name.clone()),
                j.seq,
                j.peer
            ),
        ));
        d.timeline.push((
            "verified, validated, applied",
            received.clone(),
            what.clone(),
        ));
        let answered: Option<String> = conn
            .opt(
                "SELECT shipped_at FROM outbox WHERE batch_id = 'ack:' || ?1 AND kind = 'ack' AND shipped_at IS NOT NULL
                 ORDER BY shipped_at LIMIT 1",
                params![id],
                |r| r.get(0))?;
        if let Some(t) = answered {
            d.timeline.push((
                "acknowledged",
                t,
                format!("answer shipped ({} time(s))", j.acks_sent.max(1)),
            ));
        }
        d.ack = Some((
            j.status.as_str().to_string(),
            match &j.reason_code {
                Some(code) => format!(
                    "{code}: {}",
                    shown(j.reason_detail.clone().unwrap_or_default())
                ),
                None => format!("{} applied, {} refused", j.accepted, j.rejected),
            },
        ));
        store.rejections(id, |r| {
            if d.rejections.len() < 1000 {
                d.rejections
                    .push((r.index, shown(r.key), r.code, shown(r.message)));
            }
            Ok(())
        })?;
    }
    if d.timeline.is_empty() {
        return Ok(None);
    }
    for spec in crate::domain::spec::SPECS {
        let sql = format!(
            "SELECT {} FROM {} WHERE source_batch = ?1 LIMIT 500",
            column(spec.key),
            spec.table
        );
        conn.each(&sql, params![id], |r| {
            let key = r.get::<Option<String>>(0)?.unwrap_or_default();
            d.records.push((spec.element.to_string(), shown(key)));
            Ok(())
        })?;
    }
    Ok(Some(d))
}

/// Records applied per Shanghai day in the last `days` days:
/// (day, direction "in" or "out", kind, records), oldest first.
pub fn daily_records(store: &Store, days: u32) -> Result<Vec<(String, String, String, u64)>> {
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC))
        .date();
    let first = today
        .checked_sub(time::Duration::days(i64::from(days.saturating_sub(1))))
        .unwrap_or(today);
    let first = format!(
        "{:04}-{:02}-{:02}",
        first.year(),
        u8::from(first.month()),
        first.day()
    );
    store.db().all(
        "SELECT day, direction, kind, records FROM daily_records
         WHERE day >= ?1 ORDER BY day, direction, kind",
        params![first],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
}

/// Records applied by kind, all time (for `/metrics`).
pub fn records_by_kind(store: &Store) -> Result<Vec<(String, String, u64)>> {
    store.db().all("SELECT direction, kind, CAST(sum(records) AS BIGINT) FROM daily_records GROUP BY 1, 2 ORDER BY 1, 2", params![], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
}

/// Registration codes of the equipment whose use certificate number, factory
/// serial or user unit name contains `text` (at most `limit`).
pub fn equipment_search(store: &Store, text: &str, limit: u32) -> Result<Vec<(String, String)>> {
    let like = format!("%{}%", text.replace(['%', '_'], ""));
    store.db().all(
        "SELECT registration_code, coalesce(user_unit, '') FROM equipment
         WHERE use_certificate LIKE ?1 OR factory_serial LIKE ?1 OR user_unit LIKE ?1
         ORDER BY registration_code LIMIT ?2",
        params![like, limit],
        |r| {
            Ok((
                shown(r.get::<Option<String>>(0)?.unwrap_or_default()),
                shown(r.get(1)?),
            ))
        },
    )
}

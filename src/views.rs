//! What an operator looks at: the equipment view (查看设备信息) following code
//! changes, the acceptance queue (业务受理), and discrepancies (R6).

use crate::domain::spec::{column, RecordKind};
use crate::error::Result;
use crate::store::Store;
use rusqlite::OptionalExtension;
use std::fmt::Write;

/// A stored value as an operator sees it: control characters escaped (a value
/// from a peer cannot start a line of its own), long values cut.
fn shown(value: String) -> String {
    match crate::text::field(&value) {
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
    let _ = writeln!(out, "equipment {}", crate::text::field(&current));
    if chain.len() > 1 {
        let shown: Vec<String> = chain.iter().map(|c| shown(c.clone())).collect();
        let _ = writeln!(out, "  registration codes: {}", shown.join(" → "));
    }
    for (f, v) in spec.fields.iter().zip(&row) {
        if let Some(v) = v {
            let _ = writeln!(out, "  {:<22} {}", f.name, crate::text::field(v));
        }
    }
    if let Some(t) = &row[cols.len()] {
        let _ = writeln!(
            out,
            "  {:<22} {} (temporary change, R13)",
            "temporaryAgency",
            crate::text::field(t)
        );
    }
    let _ = writeln!(
        out,
        "  last change            {} from {}",
        row[cols.len() + 2].as_deref().unwrap_or("-"),
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
    Ok(Some(out))
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

//! `sedx reconcile A B`: the supervision register against an inspection agency's
//! (R2, R3, R6). Records are matched by registration code, then by factory serial
//! and category; what is missing on either side and every differing field is
//! listed, and the differences can become discrepancy notices.

use crate::context::error::{Error, IoContext, Result};
use crate::domain::ids;
use crate::tools::clean::for_each_row;
use quick_xml::escape::escape;
use rusqlite::OptionalExtension;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// The fields an agency reports discrepancies in (R6), with the notice field
/// each reports as; `--r6-only` compares only these (registration code and
/// category included for matching).
const COMPARED: &[(&str, Option<&str>)] = &[
    ("registrationCode", Some("registration-code")),
    ("category", None),
    ("userUnit", None),
    ("orgCode", Some("org-code")),
    ("useCertificate", Some("use-certificate")),
    ("district", None),
    ("registrationAuthority", Some("registration-authority")),
    ("registrationDate", Some("registration-date")),
    ("useStatus", Some("use-status")),
    ("inspectionAgency", Some("inspection-agency")),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub registration_code: String,
    pub field: &'static str,
    pub a: String,
    pub b: String,
}

/// Differences kept in memory for the HTML page and the notices; the CSV has all.
const KEPT: usize = 100_000;

/// A record on one side only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub registration_code: String,
    pub category: String,
    pub district: String,
}

#[derive(Debug, Default)]
pub struct Reconciled {
    pub rows_a: u64,
    pub rows_b: u64,
    /// CSV columns of no known name in A and in B: named, not read.
    pub unknown_a: Vec<String>,
    pub unknown_b: Vec<String>,
    /// The first records missing in A and in B (the CSV has all).
    pub first_missing_in_a: Vec<Missing>,
    pub first_missing_in_b: Vec<Missing>,
    pub matched: u64,
    pub missing_in_a: u64,
    pub missing_in_b: u64,
    /// Differences per field (all of them).
    pub by_field: BTreeMap<&'static str, u64>,
    /// The first differences (at most 100,000).
    pub differences: Vec<Difference>,
    pub report_csv: PathBuf,
    pub report_html: PathBuf,
}

impl Reconciled {
    pub fn difference_count(&self) -> u64 {
        self.by_field.values().sum()
    }

    pub fn problems(&self) -> u64 {
        self.missing_in_a + self.missing_in_b + self.difference_count()
    }
}

/// Side A's index, in a scratch SQLite file so memory stays flat at any size.
struct IndexA {
    conn: rusqlite::Connection,
    path: PathBuf,
}

impl Drop for IndexA {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path); // our scratch index only
    }
}

fn encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}\u{1f}{v}"))
        .collect::<Vec<_>>()
        .join("\u{1e}")
}

fn decode(s: &str) -> Vec<(String, String)> {
    s.split('\u{1e}')
        .filter_map(|p| p.split_once('\u{1f}'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A growable set of row ids.
#[derive(Default)]
struct Bits(Vec<u64>);

impl Bits {
    fn set(&mut self, i: i64) {
        let i = i.max(0) as usize;
        if self.0.len() <= i / 64 {
            self.0.resize(i / 64 + 1, 0);
        }
        self.0[i / 64] |= 1 << (i % 64);
    }

    fn get(&self, i: i64) -> bool {
        let i = i.max(0) as usize;
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

/// Records listed in the HTML page per list; the CSV has every one.
const SHOWN: usize = 1000;

/// The fields compared: every field of an equipment record, or only the R6 ones.
fn compared(r6_only: bool) -> Vec<&'static str> {
    if r6_only {
        COMPARED.iter().map(|(f, _)| *f).collect()
    } else {
        crate::domain::RecordKind::Equipment
            .spec()
            .fields
            .iter()
            .map(|f| f.name)
            .collect()
    }
}

pub fn reconcile(a: &Path, b: &Path, out: &Path, r6_only: bool) -> Result<Reconciled> {
    let fields_compared = compared(r6_only);
    crate::context::files::create_dir_all(out)?;
    let mut r = Reconciled {
        report_csv: out.join("reconcile.csv"),
        report_html: out.join("reconcile.html"),
        ..Default::default()
    };
    let path = out.join(format!(
        ".sedx-reconcile-{}.sqlite",
        uuid::Uuid::new_v4().simple()
    ));
    let idx = IndexA {
        conn: rusqlite::Connection::open(&path)?,
        path,
    };
    idx.conn.execute_batch(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -32768;
         CREATE TABLE a(code TEXT PRIMARY KEY, serial TEXT, fields TEXT NOT NULL);
         CREATE INDEX a_serial ON a(serial);
         BEGIN;",
    )?;
    r.unknown_a = for_each_row(a, |_, fields| {
        r.rows_a += 1;
        let get = |k: &str| fields.iter().find(|(f, _)| *f == k).map(|(_, v)| *v);
        if let Some(code) = get("registrationCode") {
            let serial = match (get("factorySerial"), get("category")) {
                (Some(s), Some(c)) => Some(format!("{s}\u{1f}{c}")),
                _ => None,
            };
            idx.conn
                .prepare_cached(
                    "INSERT OR REPLACE INTO a(code, serial, fields) VALUES(?1, ?2, ?3)",
                )?
                .execute(rusqlite::params![code, serial, encode(fields)])?;
        }
        Ok(())
    })?;
    let mut csv_out = csv::Writer::from_writer(BufWriter::new(
        File::create(&r.report_csv).at(&r.report_csv)?,
    ));
    let csv_err = |e: csv::Error| Error::Other(e.to_string());
    csv_out
        .write_record(["kind", "registration_code", "field", "a", "b"])
        .map_err(csv_err)?;
    // Which rows of A were matched: one bit a row (125 KB for a million), which
    // spares an UPDATE of the index for every row of B.
    let mut matched = Bits::default();
    r.unknown_b = for_each_row(b, |_, fields| {
        r.rows_b += 1;
        let get = |k: &str| fields.iter().find(|(f, _)| *f == k).map(|(_, v)| *v);
        let code = get("registrationCode").unwrap_or_default();
        let by_code: Option<(i64, String, String)> = idx
            .conn
            .prepare_cached("SELECT rowid, code, fields FROM a WHERE code = ?1")?
            .query_row([&code], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .optional()?;
        let found = match by_code {
            Some(hit) => Some(hit),
            None => match (get("factorySerial"), get("category")) {
                (Some(s), Some(c)) => idx
                    .conn
                    .prepare_cached("SELECT rowid, code, fields FROM a WHERE serial = ?1 LIMIT 1")?
                    .query_row([format!("{s}\u{1f}{c}")], |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                    })
                    .optional()?,
                _ => None,
            },
        };
        let Some((rowid, key, a_fields)) = found else {
            r.missing_in_a += 1;
            if r.first_missing_in_a.len() < SHOWN {
                r.first_missing_in_a.push(Missing {
                    registration_code: code.to_string(),
                    category: get("category").unwrap_or_default().to_string(),
                    district: get("district").unwrap_or_default().to_string(),
                });
            }
            csv_out
                .write_record(["missing-in-a", code, "", "", ""])
                .map_err(csv_err)?;
            return Ok(());
        };
        matched.set(rowid);
        r.matched += 1;
        let a_fields = decode(&a_fields);
        for field in &fields_compared {
            let va = a_fields
                .iter()
                .find(|(f, _)| f == field)
                .map(|(_, v)| v.as_str());
            let vb = fields.iter().find(|(f, _)| f == field).map(|(_, v)| *v);
            if let (Some(va), Some(vb)) = (va, vb) {
                if va != vb {
                    csv_out
                        .write_record(["difference", &key, field, va, vb])
                        .map_err(csv_err)?;
                    *r.by_field.entry(*field).or_default() += 1;
                    if r.differences.len() < KEPT {
                        r.differences.push(Difference {
                            registration_code: key.clone(),
                            field,
                            a: va.to_string(),
                            b: vb.to_string(),
                        });
                    }
                }
            }
        }
        Ok(())
    })?;
    {
        let mut st = idx
            .conn
            .prepare("SELECT rowid, code, fields FROM a ORDER BY code")?;
        let mut rows = st.query([])?;
        while let Some(row) = rows.next()? {
            if matched.get(row.get(0)?) {
                continue;
            }
            let code: String = row.get(1)?;
            r.missing_in_b += 1;
            if r.first_missing_in_b.len() < SHOWN {
                let f = decode(&row.get::<_, String>(2)?);
                let get = |k: &str| {
                    f.iter()
                        .find(|(x, _)| x == k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                r.first_missing_in_b.push(Missing {
                    registration_code: code.clone(),
                    category: get("category"),
                    district: get("district"),
                });
            }
            csv_out
                .write_record(["missing-in-b", &code, "", "", ""])
                .map_err(csv_err)?;
        }
    }
    csv_out.flush().at(&r.report_csv)?;
    crate::context::files::write_atomic(&r.report_html, html(a, b, &r).as_bytes())?;
    Ok(r)
}

pub fn summary(r: &Reconciled) -> String {
    let mut s = format!(
        "A: {} rows, B: {} rows, matched {}\nmissing in A: {}\nmissing in B: {}\ndifferences: {}\n",
        r.rows_a,
        r.rows_b,
        r.matched,
        r.missing_in_a,
        r.missing_in_b,
        r.difference_count()
    );
    for (f, n) in &r.by_field {
        s.push_str(&format!("  {f:<22} {n}\n"));
    }
    for (side, unknown) in [("A", &r.unknown_a), ("B", &r.unknown_b)] {
        if !unknown.is_empty() {
            s.push_str(&format!(
                "unknown columns in {side}, not read 未识别的列: {} (docs/records.md lists the column names)\n",
                unknown.join(", ")
            ));
        }
    }
    s.push_str(&format!(
        "report: {} and {}\n",
        r.report_csv.display(),
        r.report_html.display()
    ));
    s
}

fn html(a: &Path, b: &Path, r: &Reconciled) -> String {
    let by_field = &r.by_field;
    let max = by_field.values().copied().max().unwrap_or(1).max(1);
    let mut svg = format!(
        "<svg id=\"by-field\" xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" height=\"{}\">",
        by_field.len() * 22 + 10
    );
    for (i, (f, n)) in by_field.iter().enumerate() {
        let y = i * 22 + 5;
        svg.push_str(&format!(
            "<text x=\"0\" y=\"{}\" font-size=\"12\">{f}</text><rect class=\"bar\" x=\"170\" y=\"{y}\" width=\"{}\" height=\"16\" fill=\"#2c7fb8\"/><text x=\"{}\" y=\"{}\" font-size=\"12\">{n}</text>",
            y + 12,
            n * 480 / max,
            175 + n * 480 / max,
            y + 12
        ));
    }
    svg.push_str("</svg>");
    // A code shown with its name: districts and categories.
    let named = |field: &str, v: &str| -> String {
        let name = match field {
            "district" => ids::division_name(v),
            "category" => ids::category_name(v),
            _ => "",
        };
        if name.is_empty() {
            escape(v).into_owned()
        } else {
            format!("{} {name}", escape(v))
        }
    };
    let mut rows = String::new();
    for d in r.differences.iter().take(SHOWN) {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&d.registration_code),
            d.field,
            named(d.field, &d.a),
            named(d.field, &d.b)
        ));
    }
    let first_of = |shown: usize, all: u64| {
        if all > shown as u64 {
            format!(
                "<p>前 {shown} 条 / the first {shown} of {all}; all of them: {}</p>",
                escape(r.report_csv.display().to_string())
            )
        } else {
            String::new()
        }
    };
    let missing = |id: &str, title: &str, list: &[Missing], all: u64| {
        let mut t = format!(
            "<h2>{title}</h2>{}<table id=\"{id}\"><tr><th>registration code</th><th>category</th><th>district</th></tr>",
            first_of(list.len(), all)
        );
        for m in list {
            t.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&m.registration_code),
                named("category", &m.category),
                named("district", &m.district)
            ));
        }
        t.push_str("</table>\n");
        t
    };
    let mut unknown = String::new();
    for (side, cols) in [("A", &r.unknown_a), ("B", &r.unknown_b)] {
        if !cols.is_empty() {
            unknown.push_str(&format!(
                "<p class=\"unknown-columns\">{side}: 未识别的列（未读取） / unknown columns, not read: {}</p>",
                escape(cols.join(", "))
            ));
        }
    }
    let lists = format!(
        "{}{}<h2>差异 / differences</h2>{}",
        missing(
            "missing-in-a",
            "A 中缺少 / missing in A",
            &r.first_missing_in_a,
            r.missing_in_a
        ),
        missing(
            "missing-in-b",
            "B 中缺少 / missing in B",
            &r.first_missing_in_b,
            r.missing_in_b
        ),
        first_of(r.differences.len().min(SHOWN), r.difference_count())
    );
    format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>sedx reconcile</title><style>body{{font-family:sans-serif;margin:2em}}td,th{{border:1px solid #999;padding:2px 6px}}table{{border-collapse:collapse}}</style></head><body>\n<h1>登记数据比对 / register reconciliation</h1><p>A: {} ({} rows), B: {} ({} rows), matched {}; missing in A {}, missing in B {}, <span id=\"differences\">{}</span> differences</p>\n{unknown}<h2>Differences by field</h2>{svg}\n{lists}<table id=\"differences-list\"><tr><th>registration code</th><th>field</th><th>A</th><th>B</th></tr>{rows}</table></body></html>\n",
        escape(a.display().to_string()),
        r.rows_a,
        escape(b.display().to_string()),
        r.rows_b,
        r.matched,
        r.missing_in_a,
        r.missing_in_b,
        r.difference_count()
    )
}

/// The differences in the fields an agency reports (R6), as a batch of
/// discrepancy notices dropped into an inspection node's outbound/.
pub fn notices(r: &Reconciled, node_dir: &Path, agency: &str) -> Result<(PathBuf, u64)> {
    let cfg = crate::context::config::Config::load(node_dir)?;
    let date = crate::domain::rules::today_shanghai();
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<batch xmlns=\"{}\" from=\"{}\">\n",
        crate::wire::document::BATCH_NS,
        cfg.node.id
    );
    let mut n = 0;
    for d in &r.differences {
        let Some((_, Some(token))) = COMPARED.iter().find(|(f, _)| *f == d.field) else {
            continue;
        };
        n += 1;
        xml.push_str(&format!(
            "  <discrepancyNotice><noticeId>RC-{stamp}-{n:06}</noticeId><registrationCode>{}</registrationCode><field>{token}</field><valueOnRecord>{}</valueOnRecord><valueFound>{}</valueFound><agency>{}</agency><date>{date}</date></discrepancyNotice>\n",
            escape(&d.registration_code),
            escape(&d.a),
            escape(&d.b),
            escape(agency)
        ));
    }
    xml.push_str("</batch>\n");
    let path = node_dir
        .join("outbound")
        .join(format!("reconcile-{stamp}.xml"));
    crate::context::files::write_atomic(&path, xml.as_bytes())?;
    Ok((path, n))
}

//! `sedx reconcile A B`: the supervision register against an inspection agency's
//! (R2, R3, R6). Records are matched by registration code, then by factory serial
//! and category; what is missing on either side and every differing field is
//! listed, and the differences can become discrepancy notices.

use crate::clean::for_each_row;
use crate::error::{Error, IoContext, Result};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// Fields compared, with the discrepancy-notice field they report as (R6).
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

#[derive(Debug, Default)]
pub struct Reconciled {
    pub rows_a: u64,
    pub rows_b: u64,
    pub matched: u64,
    pub missing_in_a: Vec<String>,
    pub missing_in_b: Vec<String>,
    pub differences: Vec<Difference>,
    pub report_csv: PathBuf,
    pub report_html: PathBuf,
}

impl Reconciled {
    pub fn problems(&self) -> u64 {
        (self.missing_in_a.len() + self.missing_in_b.len() + self.differences.len()) as u64
    }

    pub fn by_field(&self) -> BTreeMap<&'static str, u64> {
        let mut m = BTreeMap::new();
        for d in &self.differences {
            *m.entry(d.field).or_default() += 1;
        }
        m
    }
}

pub fn reconcile(a: &Path, b: &Path, out: &Path) -> Result<Reconciled> {
    crate::fsx::create_dir_all(out)?;
    let mut r = Reconciled {
        report_csv: out.join("reconcile.csv"),
        report_html: out.join("reconcile.html"),
        ..Default::default()
    };
    // Side A is indexed (by code, and by serial and category); side B streams past it.
    let mut by_code: HashMap<String, (Vec<(String, String)>, bool)> = HashMap::new();
    let mut by_serial: HashMap<(String, String), String> = HashMap::new();
    for_each_row(a, |_, fields| {
        r.rows_a += 1;
        let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
        if let Some(code) = get("registrationCode") {
            if let (Some(s), Some(c)) = (get("factorySerial"), get("category")) {
                by_serial.entry((s, c)).or_insert_with(|| code.clone());
            }
            by_code.insert(code, (fields, false));
        }
        Ok(())
    })?;
    for_each_row(b, |_, fields| {
        r.rows_b += 1;
        let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
        let code = get("registrationCode").unwrap_or_default();
        let key = if by_code.contains_key(&code) {
            Some(code.clone())
        } else {
            match (get("factorySerial"), get("category")) {
                (Some(s), Some(c)) => by_serial.get(&(s, c)).cloned(),
                _ => None,
            }
        };
        let Some((a_fields, seen)) = key.as_ref().and_then(|k| by_code.get_mut(k)) else {
            r.missing_in_a.push(code);
            return Ok(());
        };
        *seen = true;
        r.matched += 1;
        for (field, _) in COMPARED {
            let va = a_fields
                .iter()
                .find(|(f, _)| f == field)
                .map(|(_, v)| v.as_str());
            let vb = fields
                .iter()
                .find(|(f, _)| f == field)
                .map(|(_, v)| v.as_str());
            if let (Some(va), Some(vb)) = (va, vb) {
                if va != vb {
                    r.differences.push(Difference {
                        registration_code: key.clone().unwrap_or_default(),
                        field,
                        a: va.to_string(),
                        b: vb.to_string(),
                    });
                }
            }
        }
        Ok(())
    })?;
    let mut missing: Vec<String> = by_code
        .into_iter()
        .filter(|(_, (_, seen))| !seen)
        .map(|(k, _)| k)
        .collect();
    missing.sort();
    r.missing_in_b = missing;
    r.missing_in_a.sort();
    write_csv(&r)?;
    crate::fsx::write_atomic(&r.report_html, html(a, b, &r).as_bytes())?;
    Ok(r)
}

fn write_csv(r: &Reconciled) -> Result<()> {
    let mut w = csv::Writer::from_writer(BufWriter::new(
        File::create(&r.report_csv).at(&r.report_csv)?,
    ));
    let err = |e: csv::Error| Error::Other(e.to_string());
    w.write_record(["kind", "registration_code", "field", "a", "b"])
        .map_err(err)?;
    for c in &r.missing_in_a {
        w.write_record(["missing-in-a", c, "", "", ""])
            .map_err(err)?;
    }
    for c in &r.missing_in_b {
        w.write_record(["missing-in-b", c, "", "", ""])
            .map_err(err)?;
    }
    for d in &r.differences {
        w.write_record(["difference", &d.registration_code, d.field, &d.a, &d.b])
            .map_err(err)?;
    }
    w.flush().at(&r.report_csv)
}

pub fn summary(r: &Reconciled) -> String {
    let mut s = format!(
        "A: {} rows, B: {} rows, matched {}\nmissing in A: {}\nmissing in B: {}\ndifferences: {}\n",
        r.rows_a,
        r.rows_b,
        r.matched,
        r.missing_in_a.len(),
        r.missing_in_b.len(),
        r.differences.len()
    );
    for (f, n) in r.by_field() {
        s.push_str(&format!("  {f:<22} {n}\n"));
    }
    s.push_str(&format!(
        "report: {} and {}\n",
        r.report_csv.display(),
        r.report_html.display()
    ));
    s
}

fn html(a: &Path, b: &Path, r: &Reconciled) -> String {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;");
    let by_field = r.by_field();
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
    let mut rows = String::new();
    for d in r.differences.iter().take(5000) {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&d.registration_code),
            d.field,
            esc(&d.a),
            esc(&d.b)
        ));
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>sedx reconcile</title><style>body{{font-family:sans-serif;margin:2em}}td,th{{border:1px solid #999;padding:2px 6px}}table{{border-collapse:collapse}}</style></head><body>\n<h1>登记数据比对 / register reconciliation</h1><p>A: {} ({} rows), B: {} ({} rows), matched {}; missing in A {}, missing in B {}, <span id=\"differences\">{}</span> differences</p>\n<h2>Differences by field</h2>{svg}\n<table><tr><th>registration code</th><th>field</th><th>A</th><th>B</th></tr>{rows}</table></body></html>\n",
        esc(&a.display().to_string()),
        r.rows_a,
        esc(&b.display().to_string()),
        r.rows_b,
        r.matched,
        r.missing_in_a.len(),
        r.missing_in_b.len(),
        r.differences.len()
    )
}

/// The differences in the fields an agency reports (R6), as a batch of
/// discrepancy notices dropped into an inspection node's outbound/.
pub fn notices(r: &Reconciled, node_dir: &Path, agency: &str) -> Result<(PathBuf, u64)> {
    let cfg = crate::config::Config::load(node_dir)?;
    let date = crate::domain::rules::today_shanghai();
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;");
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<batch xmlns=\"{}\" from=\"{}\">\n",
        crate::document::BATCH_NS,
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
            esc(&d.registration_code),
            esc(&d.a),
            esc(&d.b),
            esc(agency)
        ));
    }
    xml.push_str("</batch>\n");
    let path = node_dir
        .join("outbound")
        .join(format!("reconcile-{stamp}.xml"));
    crate::fsx::write_atomic(&path, xml.as_bytes())?;
    Ok((path, n))
}

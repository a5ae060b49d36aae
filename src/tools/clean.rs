//! `sedx clean`: the data-cleanup tool of R3. Reads a register export (CSV in
//! UTF-8 or GBK with a header row, or a sedx batch), writes a cleaned copy and a
//! report of every problem by reason code, with counts per category and district.

use crate::context::error::{Error, IoContext, Result};
use crate::domain::ids;
use crate::domain::{RawRecord, RecordKind};
use crate::wire::document::{RecordReader, BATCH_NS};
use quick_xml::escape::escape;
use std::collections::BTreeMap;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Column names as either system exports them, mapped to the batch's fields
/// (docs/records.md lists them; a test holds the two together).
pub const COLUMNS: &[(&str, &[&str])] = &[
    (
        "registrationCode",
        &["设备注册代码", "注册代码", "registration_code"],
    ),
    ("equipmentCode", &["设备代码", "equipment_code"]),
    (
        "category",
        &["设备类别", "设备品种", "类别代码", "category"],
    ),
    (
        "factorySerial",
        &["出厂编号", "设备出厂编号", "factory_serial"],
    ),
    (
        "internalNumber",
        &["单位内部编号", "设备单位内部编号", "internal_number"],
    ),
    (
        "useCertificate",
        &["使用证编号", "使用登记证编号", "use_certificate"],
    ),
    ("userUnit", &["使用单位名称", "使用单位", "user_unit"]),
    (
        "orgCode",
        &["组织机构代码", "使用单位组织机构代码", "org_code"],
    ),
    ("creditCode", &["统一社会信用代码", "credit_code"]),
    ("address", &["设备地址", "使用地址", "地址", "address"]),
    ("district", &["区县", "区县代码", "district"]),
    (
        "registrationAuthority",
        &["登记机关", "registration_authority"],
    ),
    ("registrationDate", &["登记日期", "registration_date"]),
    ("useStatus", &["使用状态", "设备状态", "use_status"]),
    ("inspectionAgency", &["检验机构", "inspection_agency"]),
];

/// Problem codes of the cleanup report (docs/reason-codes.md).
pub const PROBLEMS: &[&str] = &[
    "REC-REGCODE",
    "REC-ORGCODE",
    "REC-CREDITCODE",
    "REC-FIELD",
    "DUP-REGCODE",
    "DUP-SERIAL",
    "DUP-UNIT-ORG",
];

/// One problem found in one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub row: u64,
    pub key: String,
    pub code: &'static str,
    pub detail: String,
    pub category: String,
    pub district: String,
}

/// The report of a cleanup run.
#[derive(Debug, Default)]
pub struct Report {
    pub rows: u64,
    /// Columns of the CSV that are none of [`COLUMNS`]: named, not read.
    pub unknown_columns: Vec<String>,
    /// The first problems, for the HTML page (the CSV has them all).
    pub first: Vec<Problem>,
    pub by_code: BTreeMap<&'static str, u64>,
    pub by_category: BTreeMap<String, BTreeMap<&'static str, u64>>,
    pub by_district: BTreeMap<String, BTreeMap<&'static str, u64>>,
    pub cleaned: PathBuf,
    pub report_csv: PathBuf,
    pub report_html: PathBuf,
}

impl Report {
    pub fn problems(&self) -> u64 {
        self.by_code.values().sum()
    }
}

fn hash(parts: &[&str]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

/// Duplicate detection over fixed-size hashes, kept in a scratch SQLite file so
/// memory stays flat however long the register (SQLite's page cache is bounded).
struct Seen {
    conn: rusqlite::Connection,
    path: PathBuf,
}

#[derive(Clone, Copy)]
enum Index {
    /// registration code → first row
    Codes,
    /// factory serial + category → registration code
    Serials,
    /// unit name → organization code
    Units,
}

impl Seen {
    fn open(dir: &Path) -> Result<Seen> {
        let path = dir.join(format!(
            ".sedx-clean-{}-{}.sqlite",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let conn = rusqlite::Connection::open(&path)?;
        conn.execute_batch(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -32768; PRAGMA temp_store = MEMORY;
             CREATE TABLE codes(k INTEGER PRIMARY KEY, v INTEGER NOT NULL);
             CREATE TABLE serials(k INTEGER PRIMARY KEY, v INTEGER NOT NULL);
             CREATE TABLE units(k INTEGER PRIMARY KEY, v INTEGER NOT NULL);
             BEGIN;",
        )?;
        Ok(Seen { conn, path })
    }

    /// The value already held for `key`, or None after recording `value` for it.
    fn first(&mut self, index: Index, key: u64, value: u64) -> Result<Option<u64>> {
        let (insert, select) = match index {
            Index::Codes => (
                "INSERT OR IGNORE INTO codes(k, v) VALUES(?1, ?2)",
                "SELECT v FROM codes WHERE k = ?1",
            ),
            Index::Serials => (
                "INSERT OR IGNORE INTO serials(k, v) VALUES(?1, ?2)",
                "SELECT v FROM serials WHERE k = ?1",
            ),
            Index::Units => (
                "INSERT OR IGNORE INTO units(k, v) VALUES(?1, ?2)",
                "SELECT v FROM units WHERE k = ?1",
            ),
        };
        let inserted = self
            .conn
            .prepare_cached(insert)?
            .execute(rusqlite::params![key as i64, value as i64])?;
        if inserted == 1 {
            return Ok(None);
        }
        let v: i64 = self
            .conn
            .prepare_cached(select)?
            .query_row([key as i64], |r| r.get(0))?;
        Ok(Some(v as u64))
    }
}

impl Drop for Seen {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path); // our scratch index only
    }
}

fn normalise(field: &str, v: &str) -> String {
    match field {
        "userUnit"
        | "address"
        | "registrationAuthority"
        | "inspectionAgency"
        | "useStatus"
        | "useCertificate"
        | "factorySerial"
        | "internalNumber" => ids::normalize_text(v),
        "registrationDate" => v.trim().to_string(),
        _ => ids::normalize_code(v),
    }
}

/// Clean one row in place and list its problems.
fn check(row: u64, fields: &mut Vec<(String, String)>, seen: &mut Seen) -> Result<Vec<Problem>> {
    for (k, v) in fields.iter_mut() {
        *v = normalise(k, v);
    }
    let get = |fields: &Vec<(String, String)>, k: &str| {
        fields
            .iter()
            .find(|(f, v)| f == k && !v.is_empty())
            .map(|(_, v)| v.clone())
    };
    let code = get(fields, "registrationCode").unwrap_or_default();
    let category = get(fields, "category").unwrap_or_default();
    let district = get(fields, "district").unwrap_or_default();
    let mut out = Vec::new();
    let mut problem = |code_: &'static str, detail: String| {
        out.push(Problem {
            row,
            key: code.clone(),
            code: code_,
            detail,
            category: category.clone(),
            district: district.clone(),
        })
    };
    for m in ["registrationCode", "category", "userUnit"] {
        if get(fields, m).is_none() {
            problem("REC-FIELD", format!("{m} is missing"));
        }
    }
    if !district.is_empty() && !ids::is_shanghai_division(&district) {
        problem(
            "REC-FIELD",
            format!("district {district} is not a Shanghai division code"),
        );
    }
    if !code.is_empty() {
        if let Some(p) = ids::registration_code_problem(&code) {
            problem("REC-REGCODE", p);
        }
    }
    let org = get(fields, "orgCode").map(|o| ids::canonical_org_code(&o));
    if let Some(o) = &org {
        if !ids::org_code_valid(o) {
            problem(
                "REC-ORGCODE",
                format!("organization code {o} has a wrong check character"),
            );
        }
    }
    let credit = get(fields, "creditCode");
    if let Some(c) = &credit {
        if !ids::credit_code_valid(c) {
            problem(
                "REC-CREDITCODE",
                format!("unified social credit code {c} is not valid"),
            );
        } else if let (Some(o), Some(embedded)) = (&org, ids::org_code_of_credit(c)) {
            if *o != embedded {
                problem(
                    "REC-CREDITCODE",
                    format!("credit code {c} embeds {embedded} but the organization code is {o}"),
                );
            }
        }
    }
    // Derive the organization code from a sound credit code where it is missing.
    let org = match (&org, &credit) {
        (None, Some(c)) if ids::credit_code_valid(c) => ids::org_code_of_credit(c),
        _ => org.clone(),
    };
    if let Some(o) = &org {
        match fields.iter_mut().find(|(k, _)| k == "orgCode") {
            Some(slot) => slot.1 = o.clone(),
            None => fields.push(("orgCode".into(), o.clone())),
        }
    }
    if !code.is_empty() {
        let h = hash(&[&code]);
        if let Some(first) = seen.first(Index::Codes, h, row)? {
            problem(
                "DUP-REGCODE",
                format!("registration code also on row {first}"),
            );
        }
        if let Some(serial) = get(fields, "factorySerial") {
            let s = hash(&[&serial, &category]);
            if seen
                .first(Index::Serials, s, h)?
                .is_some_and(|other| other != h)
            {
                problem(
                    "DUP-SERIAL",
                    format!("factory serial {serial} ({category}) is also under another registration code"),
                );
            }
        }
    }
    if let (Some(unit), Some(o)) = (get(fields, "userUnit"), &org) {
        let oh = hash(&[o]);
        if seen
            .first(Index::Units, hash(&[&unit]), oh)?
            .is_some_and(|other| other != oh)
        {
            problem(
                "DUP-UNIT-ORG",
                format!("{unit} also appears with another organization code"),
            );
        }
    }
    Ok(out)
}

/// A UTF-8 reader over a file in UTF-8 or GBK (decided from its first bytes).
fn decoded(path: &Path) -> Result<Box<dyn Read>> {
    let mut head = vec![0u8; 64 * 1024];
    let mut f = File::open(path).at(path)?;
    let n = f.read(&mut head).at(path)?;
    head.truncate(n);
    let utf8 = match std::str::from_utf8(&head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && e.valid_up_to() + 4 > head.len(), // cut mid-character
    };
    let f = File::open(path).at(path)?;
    Ok(if utf8 {
        Box::new(f)
    } else {
        Box::new(
            encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(Some(encoding_rs::GBK))
                .build(f),
        )
    })
}

/// Where the outputs go: beside the input, or in `out`.
fn outputs(input: &Path, out: Option<&Path>, ext: &str) -> (PathBuf, PathBuf, PathBuf) {
    let stem = input
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("register");
    let dir = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| input.parent().unwrap_or(Path::new(".")).to_path_buf());
    (
        dir.join(format!("{stem}.clean.{ext}")),
        dir.join(format!("{stem}.problems.csv")),
        dir.join(format!("{stem}.report.html")),
    )
}

fn progress(path: &Path) -> indicatif::ProgressBar {
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr_with_hz(4),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {bytes}/{total_bytes} {wide_bar} {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    // Quiet when not on a terminal (indicatif hides itself then).
    bar
}

/// Clean a register export.
pub fn clean(input: &Path, out: Option<&Path>) -> Result<Report> {
    let is_xml = input
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xml"));
    let (cleaned, report_csv, report_html) =
        outputs(input, out, if is_xml { "xml" } else { "csv" });
    if let Some(d) = out {
        crate::context::files::create_dir_all(d)?;
    }
    let mut report = Report {
        cleaned: cleaned.clone(),
        report_csv: report_csv.clone(),
        report_html: report_html.clone(),
        ..Default::default()
    };
    let mut seen = Seen::open(out.unwrap_or_else(|| input.parent().unwrap_or(Path::new("."))))?;
    let mut problems =
        csv::Writer::from_writer(BufWriter::new(File::create(&report_csv).at(&report_csv)?));
    problems
        .write_record([
            "row",
            "registration_code",
            "code",
            "detail",
            "category",
            "district",
        ])
        .map_err(|e| Error::Other(e.to_string()))?;
    let bar = progress(input);
    let mut record =
        |row: u64, fields: &mut Vec<(String, String)>, report: &mut Report| -> Result<()> {
            report.rows += 1;
            for p in check(row, fields, &mut seen)? {
                *report.by_code.entry(p.code).or_default() += 1;
                let cat = if p.category.is_empty() {
                    "-".to_string()
                } else {
                    p.category.clone()
                };
                let dis = if p.district.is_empty() {
                    "-".to_string()
                } else {
                    p.district.clone()
                };
                *report
                    .by_category
                    .entry(cat)
                    .or_default()
                    .entry(p.code)
                    .or_default() += 1;
                *report
                    .by_district
                    .entry(dis)
                    .or_default()
                    .entry(p.code)
                    .or_default() += 1;
                if report.first.len() < SHOWN {
                    report.first.push(p.clone());
                }
                problems
                    .write_record([
                        &p.row.to_string(),
                        &p.key,
                        p.code,
                        &p.detail,
                        &p.category,
                        &p.district,
                    ])
                    .map_err(|e| Error::Other(e.to_string()))?;
            }
            Ok(())
        };
    if is_xml {
        let f = File::open(input).at(input)?;
        let counted = CountingReader {
            inner: f,
            bar: bar.clone(),
        };
        let mut reader = RecordReader::new(BufReader::with_capacity(1 << 20, counted));
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&cleaned).at(&cleaned)?);
        writeln!(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<batch xmlns=\"{BATCH_NS}\" from=\"clean\">").at(&cleaned)?;
        let mut row = 0;
        while let Some((kind, raw)) = reader.next_record()? {
            row += 1;
            let mut fields = raw.fields.clone();
            if kind == RecordKind::Equipment {
                record(row, &mut fields, &mut report)?;
            }
            write_record(&mut w, kind, &RawRecord { fields }).at(&cleaned)?;
        }
        writeln!(w, "</batch>").at(&cleaned)?;
        w.flush().at(&cleaned)?;
    } else {
        let counted = CountingReader {
            inner: decoded(input)?,
            bar: bar.clone(),
        };
        let mut rd = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(BufReader::with_capacity(1 << 20, counted));
        let header: Vec<String> = rd
            .headers()
            .map_err(|e| Error::Other(format!("{}: {e}", input.display())))?
            .iter()
            .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
            .collect();
        let (map, unknown) = map_header(&header);
        if !unknown.is_empty() {
            tracing::warn!(file = %input.display(), "unknown columns, not read: {}", unknown.join(", "));
        }
        report.unknown_columns = unknown;
        let mut w = csv::Writer::from_writer(BufWriter::with_capacity(
            1 << 20,
            File::create(&cleaned).at(&cleaned)?,
        ));
        let mut out_header = header.clone();
        let org_at = map.iter().position(|m| *m == Some("orgCode"));
        if org_at.is_none() {
            out_header.push("组织机构代码".into());
        }
        w.write_record(&out_header)
            .map_err(|e| Error::Other(e.to_string()))?;
        let mut row = 0u64;
        for rec in rd.records() {
            let rec = rec.map_err(|e| Error::Other(format!("{}: {e}", input.display())))?;
            row += 1;
            let mut fields: Vec<(String, String)> = map
                .iter()
                .zip(rec.iter())
                .filter_map(|(m, v)| m.map(|f| (f.to_string(), v.to_string())))
                .collect();
            record(row, &mut fields, &mut report)?;
            let mut values: Vec<String> = rec.iter().map(str::to_string).collect();
            for (i, m) in map.iter().enumerate() {
                if let (Some(f), Some(slot)) = (m, values.get_mut(i)) {
                    if let Some((_, v)) = fields.iter().find(|(k, _)| k == f) {
                        *slot = v.clone();
                    }
                }
            }
            if org_at.is_none() {
                values.push(
                    fields
                        .iter()
                        .find(|(k, _)| k == "orgCode")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default(),
                );
            }
            w.write_record(&values)
                .map_err(|e| Error::Other(e.to_string()))?;
        }
        w.flush().at(&cleaned)?;
    }
    bar.finish_and_clear();
    problems.flush().at(&report_csv)?;
    crate::context::files::write_atomic(&report_html, html(input, &report).as_bytes())?;
    Ok(report)
}

fn write_record(w: &mut impl Write, kind: RecordKind, raw: &RawRecord) -> std::io::Result<()> {
    write!(w, "  <{}>", kind.element())?;
    let spec = kind.spec();
    for f in spec.fields {
        if let Some((_, v)) = raw
            .fields
            .iter()
            .find(|(k, v)| k == f.name && !v.is_empty())
        {
            write!(w, "<{0}>{1}</{0}>", f.name, escape(v))?;
        }
    }
    writeln!(w, "</{}>", kind.element())
}

/// Counts bytes read for the progress bar.
struct CountingReader<R> {
    inner: R,
    bar: indicatif::ProgressBar,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// The terminal summary.
pub fn summary(r: &Report) -> String {
    let mut s = format!("{} rows, {} problems\n", r.rows, r.problems());
    if !r.unknown_columns.is_empty() {
        s.push_str(&format!(
            "unknown columns, not read 未识别的列: {} (docs/records.md lists the column names)\n",
            r.unknown_columns.join(", ")
        ));
    }
    for code in PROBLEMS {
        s.push_str(&format!(
            "  {code:<16} {}\n",
            r.by_code.get(code).copied().unwrap_or(0)
        ));
    }
    s.push_str("by category:\n");
    for (cat, m) in &r.by_category {
        s.push_str(&format!(
            "  {cat:<8} {:<10} {}\n",
            ids::category_name(cat),
            m.values().sum::<u64>()
        ));
    }
    s.push_str("by district:\n");
    for (d, m) in &r.by_district {
        let name = ids::SHANGHAI_DIVISIONS
            .iter()
            .find(|x| x.0 == d)
            .map(|x| x.1)
            .unwrap_or("");
        s.push_str(&format!("  {d:<8} {name:<6} {}\n", m.values().sum::<u64>()));
    }
    s.push_str(&format!(
        "cleaned copy: {}\nproblems: {}\nreport: {}\n",
        r.cleaned.display(),
        r.report_csv.display(),
        r.report_html.display()
    ));
    s
}

/// One self-contained page: tables and SVG bar charts of problems by category
/// and by district (no script, no external resource).
fn html(input: &Path, r: &Report) -> String {
    let chart = |id: &str,
                 title: &str,
                 data: &BTreeMap<String, BTreeMap<&'static str, u64>>,
                 name: fn(&str) -> &'static str| {
        let max = data
            .values()
            .map(|m| m.values().sum::<u64>())
            .max()
            .unwrap_or(1)
            .max(1);
        let mut svg = format!(
            "<h2>{title}</h2>\n<svg id=\"{id}\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"820\" height=\"{}\" role=\"img\" aria-label=\"{title}\">\n",
            data.len() * 22 + 10
        );
        for (i, (label, m)) in data.iter().enumerate() {
            let total: u64 = m.values().sum();
            let w = total * 500 / max;
            let y = i * 22 + 5;
            svg.push_str(&format!(
                "<text x=\"0\" y=\"{}\" font-size=\"12\">{} {}</text><rect class=\"bar\" x=\"210\" y=\"{y}\" width=\"{w}\" height=\"16\" fill=\"#c0392b\" data-count=\"{total}\"/><text x=\"{}\" y=\"{}\" font-size=\"12\">{total}</text>\n",
                y + 12,
                escape(label),
                name(label),
                215 + w,
                y + 12
            ));
        }
        svg.push_str("</svg>\n");
        svg
    };
    let mut rows = String::new();
    for code in PROBLEMS {
        rows.push_str(&format!(
            "<tr><td>{code}</td><td>{}</td></tr>",
            r.by_code.get(code).copied().unwrap_or(0)
        ));
    }
    let mut listed = String::new();
    for p in &r.first {
        listed.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} {}</td><td>{} {}</td></tr>\n",
            p.row,
            escape(&p.key),
            p.code,
            escape(&p.detail),
            escape(&p.category),
            ids::category_name(&p.category),
            escape(&p.district),
            ids::division_name(&p.district)
        ));
    }
    let more = if r.problems() > r.first.len() as u64 {
        format!(
            "<p>前 {} 条 / the first {} of {}; all of them: {}</p>",
            r.first.len(),
            r.first.len(),
            r.problems(),
            escape(r.report_csv.display().to_string())
        )
    } else {
        String::new()
    };
    let unknown = if r.unknown_columns.is_empty() {
        String::new()
    } else {
        format!(
            "<p id=\"unknown-columns\">未识别的列（未读取） / unknown columns, not read: {}</p>",
            escape(r.unknown_columns.join(", "))
        )
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>sedx clean: {file}</title>\n<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:2px 8px}}</style></head>\n<body><h1>数据整理报告 / cleanup report</h1><p>{file}: {rows_n} rows, <span id=\"total\">{total}</span> problems</p>\n{unknown}<table id=\"codes\"><tr><th>code</th><th>count</th></tr>{rows}</table>\n{c1}{c2}<h2>问题记录 / problem rows</h2>{more}\n<table id=\"problems\"><tr><th>row</th><th>registration code</th><th>code</th><th>detail</th><th>category</th><th>district</th></tr>\n{listed}</table></body></html>\n",
        file = escape(input.display().to_string()),
        rows_n = r.rows,
        total = r.problems(),
        c1 = chart("by-category", "Problems by category 按类别", &r.by_category, ids::category_name),
        c2 = chart("by-district", "Problems by district 按区县", &r.by_district, ids::division_name),
    )
}

/// Every equipment row of a register (CSV in UTF-8 or GBK, or a batch), its
/// fields named as in the batch and normalised, streamed to `each`.
///
/// Parsing runs on a second thread and hands over rows packed into one buffer
/// per thousand rows through a bounded channel: reading overlaps the caller's
/// work, memory stays flat, and no small allocation crosses threads (glibc's
/// malloc is slow at freeing another thread's blocks).
pub fn for_each_row(
    path: &Path,
    mut each: impl FnMut(u64, &[(&str, &str)]) -> Result<()>,
) -> Result<Vec<String>> {
    /// Rows packed as text plus (key, value) spans into it.
    #[derive(Default)]
    struct Packed {
        text: String,
        spans: Vec<(usize, usize, usize)>,
        /// Index into `spans` where each row ends.
        rows: Vec<usize>,
    }
    const BATCH: usize = 1024;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Packed>(8);
    std::thread::scope(|s| {
        let reader = s.spawn(move || {
            let mut batch = Packed::default();
            let mut unknown = Vec::new();
            parse_rows(path, &mut unknown, |fields| {
                for (k, v) in fields {
                    let at = batch.text.len();
                    batch.text.push_str(&k);
                    batch.text.push_str(&v);
                    batch.spans.push((at, at + k.len(), at + k.len() + v.len()));
                }
                batch.rows.push(batch.spans.len());
                if batch.rows.len() == BATCH {
                    // A closed channel means the caller stopped early: stop reading.
                    return Ok(tx.send(std::mem::take(&mut batch)).is_ok());
                }
                Ok(true)
            })?;
            if !batch.rows.is_empty() {
                let _ = tx.send(batch);
            }
            Ok(unknown)
        });
        let mut row = 0u64;
        let mut outcome = Ok(());
        'batches: for batch in rx.iter() {
            let mut fields: Vec<(&str, &str)> = Vec::new();
            let mut from = 0;
            for &to in &batch.rows {
                row += 1;
                fields.clear();
                fields.extend(
                    batch.spans[from..to]
                        .iter()
                        .map(|&(a, b, c)| (&batch.text[a..b], &batch.text[b..c])),
                );
                from = to;
                if let Err(e) = each(row, &fields) {
                    outcome = Err(e);
                    break 'batches;
                }
            }
        }
        drop(rx);
        let parsed = reader
            .join()
            .unwrap_or_else(|_| Err(Error::Other("register reader panicked".into())));
        outcome.and(parsed)
    })
}

/// Problems shown in the HTML page; the CSV has every one.
const SHOWN: usize = 1000;

/// The field each CSV column holds (None: a column of no known name), and the
/// names of the unknown columns.
pub fn map_header(header: &[String]) -> (Vec<Option<&'static str>>, Vec<String>) {
    let map: Vec<Option<&'static str>> = header
        .iter()
        .map(|h| {
            COLUMNS
                .iter()
                .find(|(f, names)| *f == h || names.contains(&h.as_str()))
                .map(|(f, _)| *f)
        })
        .collect();
    let unknown = header
        .iter()
        .zip(&map)
        .filter(|(h, m)| m.is_none() && !h.is_empty())
        .map(|(h, _)| h.clone())
        .collect();
    (map, unknown)
}

/// The parsing half of [`for_each_row`]: `each` returns false to stop; the
/// unknown columns of a CSV are put in `unknown_out`.
fn parse_rows(
    path: &Path,
    unknown_out: &mut Vec<String>,
    mut each: impl FnMut(Vec<(String, String)>) -> Result<bool>,
) -> Result<()> {
    let norm = |fields: Vec<(String, String)>| -> Vec<(String, String)> {
        fields
            .into_iter()
            .map(|(k, v)| {
                let v = normalise(&k, &v);
                (k, v)
            })
            .filter(|(_, v)| !v.is_empty())
            .collect()
    };
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xml"))
    {
        let mut reader = RecordReader::new(BufReader::with_capacity(
            1 << 20,
            File::open(path).at(path)?,
        ));
        while let Some((kind, raw)) = reader.next_record()? {
            if kind == RecordKind::Equipment && !each(norm(raw.fields))? {
                break;
            }
        }
        return Ok(());
    }
    let mut rd = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(BufReader::with_capacity(1 << 20, decoded(path)?));
    let names: Vec<String> = rd
        .headers()
        .map_err(|e| Error::Other(format!("{}: {e}", path.display())))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    let (header, unknown) = map_header(&names);
    *unknown_out = unknown;
    for rec in rd.records() {
        let rec = rec.map_err(|e| Error::Other(format!("{}: {e}", path.display())))?;
        let fields = header
            .iter()
            .zip(rec.iter())
            .filter_map(|(m, v)| m.map(|f| (f.to_string(), v.to_string())))
            .collect();
        if !each(norm(fields))? {
            break;
        }
    }
    Ok(())
}

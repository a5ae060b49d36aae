//! Entry points for the fuzz targets (fuzz/) and their corpus regression test
//! (tests/fuzz_corpus.rs): each runs one stage of the inbound path, or the record
//! rules, on arbitrary bytes. None may panic, and each bounds what it expands.

use crate::domain::rules::{judge, Direction, Policy, Register, Responsibility};
use crate::domain::{Record, Role};
use crate::wire::document::{self, DocKind, RecordReader};
use crate::wire::set::Marker;
use crate::wire::sshsig::{AllowedSigners, ParsedSig};
use crate::wire::suite::Hashing;
use crate::wire::validate::{self, Schemas};
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// The expansion cap used while fuzzing (a gzip bomb must stop here).
pub const CAP: u64 = 4 << 20;

fn limits() -> validate::ExpandLimits {
    validate::ExpandLimits {
        max_bytes: CAP,
        max_ratio: 100,
        doc: crate::wire::decode::Limits::default(),
    }
}

thread_local! {
    static SCHEMAS: RefCell<Option<Schemas>> = const { RefCell::new(None) };
}

fn scratch() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "sedx-fuzz-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A `.sha256` marker.
pub fn marker(data: &[u8]) {
    let _ = Marker::parse(data);
}

/// A signature of either suite (SSHSIG armour, SM2 DER), checked against the
/// data after it and a fixed trust list; and the two trust files' parsers.
pub fn signature(data: &[u8]) {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (sig, payload) = data.split_at(split);
    let mut h = Hashing::default();
    h.update(payload);
    let digest = h.finish();
    if let Ok(parsed) = ParsedSig::parse(sig) {
        let _ = parsed.verify(&digest);
        let trust = AllowedSigners::parse(
            "insp-city ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJZOV3aMflx8LMh1sLjDMDiXjZ1wBT2/nBkfH1fp9HDa\n",
        )
        .unwrap_or_default();
        let _ = trust.check(&parsed, "insp-city", "sedx-batch", &digest);
    }
    if let Ok(sm2) = crate::wire::sm2sig::parse_sig(sig) {
        let key = crate::wire::sm2sig::Sm2Public::from_base64(
            "MFkwEwYHKoZIzj0CAQYIKoEcz1UBgi0DQgAEGjsLLzc9gxmRdRMTnbHpW2XXM+0vwIy7ohKNKKgBIwB3EuoNSnTGQv4HoPMf2gRX0pyPvkZn86w+p+5PUYG8fw==",
        );
        if let Ok(key) = key {
            let mut h = Hashing::new(crate::wire::suite::Suite::Sm2, &[key.z()]);
            h.update(payload);
            let _ = key.verifies(&h.finish().signed[0], &sm2);
        }
    }
    let text = String::from_utf8_lossy(data);
    let _ = AllowedSigners::parse(&text);
    let _ = crate::wire::sm2sig::Sm2Trust::parse(&text);
}

/// A gzip payload: expanded under the cap, then the XML stages.
pub fn gzip(data: &[u8]) {
    let gz = scratch();
    let out = gz.with_extension("xml");
    if std::fs::write(&gz, data).is_ok() && validate::expand(&gz, &out, limits()).is_ok() {
        xml_file(&out);
    }
    let _ = std::fs::remove_file(&gz);
    let _ = std::fs::remove_file(&out);
}

/// An XML document: the DOCTYPE-refusing scan, libxml2's XSD validation, and
/// the records with their rules.
pub fn xml(data: &[u8]) {
    let path = scratch().with_extension("xml");
    if std::fs::write(&path, data).is_ok() {
        xml_file(&path);
    }
    let _ = std::fs::remove_file(&path);
}

fn xml_file(path: &std::path::Path) {
    let Ok(file) = std::fs::File::open(path) else {
        return;
    };
    let Ok(scan) = document::scan(std::io::BufReader::new(file)) else {
        return;
    };
    SCHEMAS.with(|s| {
        let mut s = s.borrow_mut();
        if s.is_none() {
            *s = Schemas::new().ok();
        }
        if let Some(schemas) = s.as_mut() {
            let _ = schemas.validate(path, scan.root.kind);
        }
    });
    if scan.root.kind == DocKind::Batch {
        let _ = document::BatchHeader::from_root(&scan.root);
        if let Ok(file) = std::fs::File::open(path) {
            let mut reader = RecordReader::new(std::io::BufReader::new(file));
            while let Ok(Some((kind, raw))) = reader.next_record() {
                if let Ok(rec) = Record::from_raw(kind, &raw) {
                    rules(&rec);
                }
            }
        }
    } else {
        let _ = crate::wire::ack::AckDoc::from_root(&scan.root);
    }
}

struct Fixed;
impl Register for Fixed {
    fn responsibility(
        &mut self,
        code: &str,
    ) -> crate::context::error::Result<Option<Responsibility>> {
        Ok((!code.len().is_multiple_of(3)).then(|| Responsibility {
            agency: Some("A".into()),
            temporary: code.len().is_multiple_of(2).then(|| "B".into()),
        }))
    }
}

fn rules(rec: &Record) {
    let policy = Policy {
        rollout: crate::domain::rules::default_rollout(),
        national_agencies: vec!["N".into()],
        today: "2006-07-01".into(),
    };
    for dir in [Direction::Sending, Direction::Receiving] {
        for role in [Role::Supervision, Role::Inspection] {
            let _ = judge(&policy, dir, role, rec, &mut Fixed);
        }
    }
}

/// Record rules on fields taken from arbitrary bytes: `kind \0 name=value \0 ...`.
pub fn records(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let Some(kind) = parts
        .next()
        .and_then(|k| crate::domain::RecordKind::from_element(k.as_bytes()))
    else {
        return;
    };
    let raw = crate::domain::RawRecord {
        fields: parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    if let Ok(rec) = Record::from_raw(kind, &raw) {
        rules(&rec);
    }
    let _ = crate::domain::ids::registration_code_problem(&text);
    let _ = crate::domain::ids::credit_code_valid(&text);
    let _ = crate::domain::ids::org_code_valid(&text);
}

/// The record reader against libxml2 on the same input: decoded once as the
/// node decodes it, a document libxml2 finds valid against the XSD and the
/// record reader reads must hold the same records with the same field values
/// in both. Panics (a finding) when they differ.
pub fn differential(data: &[u8]) {
    differential_compared(data);
}

/// [`differential`]; whether the two views were compared (the input decoded,
/// valid to libxml2, and read by the record reader).
pub fn differential_compared(data: &[u8]) -> bool {
    let path = scratch().with_extension("xml");
    let decoded = std::fs::File::create(&path).ok().and_then(|f| {
        let mut w = std::io::BufWriter::new(f);
        crate::wire::decode::normalize(
            data,
            &mut w,
            crate::wire::decode::Limits::default(),
            CAP,
            &path,
        )
        .ok()?;
        std::io::Write::flush(&mut w).ok()
    });
    let compared = decoded.is_some() && compare_views(&path);
    let _ = std::fs::remove_file(&path);
    compared
}

type View = Vec<(String, Vec<(String, String)>)>;

fn compare_views(path: &std::path::Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    let valid = SCHEMAS.with(|s| {
        let mut s = s.borrow_mut();
        if s.is_none() {
            *s = Schemas::new().ok();
        }
        s.as_mut()
            .is_some_and(|schemas| schemas.check(path, DocKind::Batch).is_ok())
    });
    if !valid {
        return false;
    }
    // The record reader's view.
    let mut ours: View = Vec::new();
    let mut reader = RecordReader::new(&bytes[..]);
    loop {
        match reader.next_record() {
            Ok(Some((kind, raw))) => ours.push((kind.element().to_string(), raw.fields)),
            Ok(None) => break,
            Err(_) => return false, // refused: nothing is applied
        }
    }
    // libxml2's view of the same bytes (no recovery, no network, no DTD).
    let parser = libxml::parser::Parser::default();
    let options = libxml::parser::ParserOptions {
        recover: false,
        no_net: true,
        no_def_dtd: true,
        ..Default::default()
    };
    let Ok(doc) = parser.parse_string_with_options(&bytes, options) else {
        panic!("libxml2 validated a document it cannot parse");
    };
    let mut theirs: View = Vec::new();
    if let Some(root) = doc.get_root_element() {
        for rec in root.get_child_elements() {
            let fields = rec
                .get_child_elements()
                .iter()
                .map(|f| (f.get_name(), f.get_content()))
                .collect();
            theirs.push((rec.get_name(), fields));
        }
    }
    assert_eq!(ours, theirs, "the record reader and libxml2 disagree");
    true
}

/// The stages by name, for the corpus runner.
pub fn target(name: &str) -> Option<fn(&[u8])> {
    Some(match name {
        "marker" => marker,
        "signature" => signature,
        "gzip" => gzip,
        "xml" => xml,
        "records" => records,
        "differential" => differential,
        _ => return None,
    })
}

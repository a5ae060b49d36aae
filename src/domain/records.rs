//! A record as read from a batch, normalised and checked on its own (identifiers,
//! mandatory fields, value domains). Rules that need the register are in `rules`.

use super::ids;
use super::spec::{RecordKind, Spec, Ty};
use crate::context::error::{Code, Reject};

/// A record as read from XML: its child fields in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawRecord {
    pub fields: Vec<(String, String)>,
}

impl RawRecord {
    /// The record's key as written (for reporting a record that failed its checks).
    pub fn key(&self, kind: RecordKind) -> String {
        let key = kind.spec().key;
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    }
}

/// A checked, normalised record: the fields present, in the schema's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: RecordKind,
    pub fields: Vec<(&'static str, String)>,
    /// Doubts that never reject (e.g. an unusual use certificate number).
    pub warnings: Vec<String>,
}

pub const STATUTORY_KINDS: [&str; 4] = [
    "periodic",
    "installation-supervision",
    "import",
    "product-supervision",
];
/// Kinds that exist only inside an inspection system (R15).
pub const NON_STATUTORY_KINDS: [&str; 2] = ["commissioned", "other"];

fn tokens(kind: RecordKind, field: &str) -> Option<&'static [&'static str]> {
    Some(match (kind, field) {
        (RecordKind::InspectionReport, "kind") => &[
            "periodic",
            "installation-supervision",
            "import",
            "product-supervision",
            "commissioned",
            "other",
        ],
        (RecordKind::ConstructionNotice, "constructionKind") => {
            &["installation", "modification", "major-repair"]
        }
        (RecordKind::CodeChange, "field") => &["registration-code", "use-certificate"],
        (RecordKind::ResponsibilityChange, "action") => &["grant", "reclaim"],
        (RecordKind::DiscrepancyNotice, "field") => &[
            "org-code",
            "registration-authority",
            "registration-date",
            "registration-code",
            "use-certificate",
            "use-status",
            "inspection-agency",
        ],
        _ => return None,
    })
}

fn valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().ok();
    match (num(0..4), num(5..7), num(8..10)) {
        (Some(y), Some(m), Some(d)) => {
            let days = match m {
                1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
                4 | 6 | 9 | 11 => 30,
                2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
                2 => 28,
                _ => return false,
            };
            (1900..=2200).contains(&y) && (1..=days).contains(&d)
        }
        _ => false,
    }
}

fn field_error(spec: &Spec, name: &str, why: String) -> Reject {
    Reject::new(Code::RecField, format!("{} {name}: {why}", spec.element))
}

impl Record {
    pub fn spec(&self) -> &'static Spec {
        self.kind.spec()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn key(&self) -> &str {
        self.get(self.spec().key).unwrap_or_default()
    }

    fn set(&mut self, name: &'static str, value: String) {
        match self.fields.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => {
                // Keep schema order so the record serialises valid.
                let order = |n: &str| self.kind.spec().fields.iter().position(|f| f.name == n);
                let at = self
                    .fields
                    .iter()
                    .position(|(k, _)| order(k) > order(name))
                    .unwrap_or(self.fields.len());
                self.fields.insert(at, (name, value));
            }
        }
    }

    /// The equipment category a record is about: its category field, or the
    /// category part of its registration code.
    pub fn category(&self) -> Option<&str> {
        self.get("category")
            .or_else(|| self.get("registrationCode").and_then(|c| c.get(..4)))
    }

    /// Normalise and check a record read from XML.
    pub fn from_raw(kind: RecordKind, raw: &RawRecord) -> Result<Record, Reject> {
        let spec = kind.spec();
        let mut rec = Record {
            kind,
            fields: Vec::new(),
            warnings: Vec::new(),
        };
        // Fields mostly come in schema order: look at the next one first. (A field
        // before the cursor was taken for an earlier name, so the first field of
        // this name is the same either way.)
        let mut cursor = 0;
        for field in spec.fields {
            let value = match raw.fields.get(cursor) {
                Some((k, v)) if k == field.name => {
                    cursor += 1;
                    Some(v)
                }
                _ => raw
                    .fields
                    .iter()
                    .find(|(k, _)| k == field.name)
                    .map(|(_, v)| v),
            };
            let Some(value) = value else {
                continue;
            };
            let value = match field.ty {
                Ty::Code => ids::normalize_code(value),
                Ty::Text => ids::normalize_text(value),
                Ty::Date | Ty::DateTime | Ty::Token => value.trim().to_string(),
                Ty::Bool => match value.trim() {
                    "true" | "1" => "true".to_string(),
                    "false" | "0" => "false".to_string(),
                    other => {
                        return Err(field_error(
                            spec,
                            field.name,
                            format!("{other:?} is not true or false"),
                        ))
                    }
                },
            };
            if value.is_empty() {
                continue;
            }
            if field.ty == Ty::Date && !valid_date(&value) {
                return Err(field_error(
                    spec,
                    field.name,
                    format!("{value:?} is not a date (YYYY-MM-DD)"),
                ));
            }
            if let Some(allowed) = tokens(kind, field.name) {
                if !allowed.contains(&value.as_str()) {
                    return Err(field_error(
                        spec,
                        field.name,
                        format!("{value:?} is not one of {}", allowed.join(", ")),
                    ));
                }
            }
            rec.fields.push((field.name, value));
        }
        for field in spec.fields.iter().filter(|f| f.required) {
            if rec.get(field.name).is_none() {
                return Err(field_error(spec, field.name, "is missing".into()));
            }
        }
        rec.check_identifiers()?;
        Ok(rec)
    }

    /// R2: the identifiers that must be true and reliable at both ends.
    fn check_identifiers(&mut self) -> Result<(), Reject> {
        let mut reg_codes: Vec<&str> = self.get("registrationCode").into_iter().collect();
        if self.kind == RecordKind::CodeChange && self.get("field") == Some("registration-code") {
            reg_codes.extend(self.get("oldValue"));
            reg_codes.extend(self.get("newValue"));
        }
        for code in reg_codes {
            if let Some(problem) = ids::registration_code_problem(code) {
                return Err(Reject::new(Code::RecRegistrationCode, problem));
            }
        }
        if let Some(district) = self.get("district") {
            if !ids::is_shanghai_division(district) {
                return Err(Reject::new(
                    Code::RecField,
                    format!("district {district} is not a Shanghai division code"),
                ));
            }
        }
        let org = self.get("orgCode").map(ids::canonical_org_code);
        if let Some(org) = &org {
            if !ids::org_code_valid(org) {
                return Err(Reject::new(
                    Code::RecOrgCode,
                    format!("organization code {org} has a wrong check character"),
                ));
            }
            self.set("orgCode", org.clone());
        }
        if let Some(credit) = self.get("creditCode").map(str::to_string) {
            if !ids::credit_code_valid(&credit) {
                return Err(Reject::new(
                    Code::RecCreditCode,
                    format!("unified social credit code {credit} is not valid"),
                ));
            }
            let embedded = ids::org_code_of_credit(&credit).unwrap_or_default();
            match org {
                Some(org) if org != embedded => {
                    return Err(Reject::new(
                        Code::RecCreditCode,
                        format!(
                        "credit code {credit} embeds {embedded} but the organization code is {org}"
                    ),
                    ))
                }
                // The credit code carries the organization code: derive it where missing.
                None if self.spec().field("orgCode").is_some() => self.set("orgCode", embedded),
                _ => {}
            }
        }
        if let Some(cert) = self.get("useCertificate") {
            if let Some(doubt) = ids::use_certificate_doubt(cert) {
                self.warnings.push(doubt);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> RawRecord {
        RawRecord {
            fields: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn normalises_and_derives() {
        let r = Record::from_raw(
            RecordKind::Equipment,
            &raw(&[
                ("registrationCode", "３１１０3101012006050007 "),
                ("category", "3110"),
                ("userUnit", "　上海某公司 "),
                ("creditCode", "91310000631696382c"),
            ]),
        )
        .unwrap();
        assert_eq!(r.key(), "31103101012006050007");
        assert_eq!(r.get("userUnit"), Some("上海某公司"));
        assert_eq!(r.get("orgCode"), Some("63169638-2"));
        assert_eq!(
            r.fields.iter().position(|f| f.0 == "orgCode"),
            Some(3),
            "schema order kept"
        );
    }

    #[test]
    fn rejects_with_codes() {
        let base = [
            ("registrationCode", "31103101012006050007"),
            ("category", "3110"),
            ("userUnit", "U"),
        ];
        let with = |extra: (&str, &str)| {
            let mut v = base.to_vec();
            v.push(extra);
            Record::from_raw(RecordKind::Equipment, &raw(&v))
                .unwrap_err()
                .code
        };
        assert_eq!(with(("orgCode", "63169638-3")), Code::RecOrgCode);
        assert_eq!(
            with(("creditCode", "91310000631696382D")),
            Code::RecCreditCode
        );
        assert_eq!(with(("district", "440101")), Code::RecField);
        assert_eq!(with(("registrationDate", "2006-02-30")), Code::RecField);
        let e = Record::from_raw(
            RecordKind::Equipment,
            &raw(&[
                ("registrationCode", "1"),
                ("category", "3110"),
                ("userUnit", "U"),
            ]),
        );
        assert_eq!(e.unwrap_err().code, Code::RecRegistrationCode);
        let e = Record::from_raw(
            RecordKind::Equipment,
            &raw(&[("registrationCode", "31103101012006050007")]),
        );
        assert_eq!(e.unwrap_err().code, Code::RecField);
    }

    #[test]
    fn use_certificate_is_only_a_warning() {
        let r = Record::from_raw(
            RecordKind::Equipment,
            &raw(&[
                ("registrationCode", "31103101012006050007"),
                ("category", "3110"),
                ("userUnit", "U"),
                ("useCertificate", "???"),
            ]),
        )
        .unwrap();
        assert_eq!(r.warnings.len(), 1);
    }
}

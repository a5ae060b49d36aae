//! The records a batch carries and the checks each must pass before it is applied.

use super::ids;
use crate::error::{Code, Reject};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Equipment,
    InspectionReport,
}

impl RecordKind {
    /// The XML element that carries this record.
    pub fn element(self) -> &'static str {
        match self {
            RecordKind::Equipment => "equipment",
            RecordKind::InspectionReport => "inspectionReport",
        }
    }

    pub fn from_element(name: &[u8]) -> Option<RecordKind> {
        match name {
            b"equipment" => Some(RecordKind::Equipment),
            b"inspectionReport" => Some(RecordKind::InspectionReport),
            _ => None,
        }
    }
}

/// A record as read from XML: its element and its child fields in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawRecord {
    pub fields: Vec<(String, String)>,
}

impl RawRecord {
    fn take(&self, name: &str) -> Option<String> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.trim().is_empty())
    }
    fn code(&self, name: &str) -> Option<String> {
        self.take(name).map(|v| ids::normalize_code(&v))
    }
    fn text(&self, name: &str) -> Option<String> {
        self.take(name).map(|v| ids::normalize_text(&v))
    }
}

/// A piece of special equipment as registered (R2 identifiers included).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Equipment {
    pub registration_code: String,
    pub equipment_code: Option<String>,
    pub category: String,
    pub factory_serial: Option<String>,
    pub internal_number: Option<String>,
    pub use_certificate: Option<String>,
    pub user_unit: String,
    pub org_code: Option<String>,
    pub credit_code: Option<String>,
    pub address: Option<String>,
    pub district: Option<String>,
    pub registration_authority: Option<String>,
    pub registration_date: Option<String>,
    pub use_status: Option<String>,
    pub inspection_agency: Option<String>,
}

/// An approved inspection report about one piece of equipment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InspectionReport {
    pub report_number: String,
    pub registration_code: String,
    pub kind: String,
    pub date: String,
    pub conclusion: String,
    pub next_due: Option<String>,
    pub agency: String,
    pub approved: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Equipment(Equipment),
    InspectionReport(InspectionReport),
}

impl Record {
    /// The key a rejection is reported under.
    pub fn key(&self) -> &str {
        match self {
            Record::Equipment(e) => &e.registration_code,
            Record::InspectionReport(r) => &r.report_number,
        }
    }
}

pub const STATUTORY_KINDS: [&str; 4] = [
    "periodic",
    "installation-supervision",
    "import",
    "product-supervision",
];

fn required(raw: &RawRecord, name: &str, text: bool) -> Result<String, Reject> {
    let v = if text { raw.text(name) } else { raw.code(name) };
    v.ok_or_else(|| Reject::new(Code::RecField, format!("{name} is missing")))
}

fn check_registration_code(code: &str) -> Result<(), Reject> {
    match ids::registration_code_problem(code) {
        Some(p) => Err(Reject::new(Code::RecRegistrationCode, p)),
        None => Ok(()),
    }
}

impl Equipment {
    pub fn from_raw(raw: &RawRecord) -> Result<Equipment, Reject> {
        let registration_code = required(raw, "registrationCode", false)?;
        check_registration_code(&registration_code)?;
        let org_code = raw.code("orgCode").map(|c| ids::canonical_org_code(&c));
        if let Some(org) = &org_code {
            if !ids::org_code_valid(org) {
                return Err(Reject::new(
                    Code::RecOrgCode,
                    format!("organization code {org} has a wrong check character"),
                ));
            }
        }
        let credit_code = raw.code("creditCode");
        if let Some(credit) = &credit_code {
            if !ids::credit_code_valid(credit) {
                return Err(Reject::new(
                    Code::RecCreditCode,
                    format!("unified social credit code {credit} is not valid"),
                ));
            }
            let embedded = ids::org_code_of_credit(credit);
            if org_code.is_some() && embedded != org_code {
                return Err(Reject::new(
                    Code::RecCreditCode,
                    format!(
                        "credit code {credit} embeds {} but the organization code is {}",
                        embedded.unwrap_or_default(),
                        org_code.clone().unwrap_or_default()
                    ),
                ));
            }
        }
        // The credit code carries the organization code: derive it where missing.
        let org_code =
            org_code.or_else(|| credit_code.as_deref().and_then(ids::org_code_of_credit));
        Ok(Equipment {
            registration_code,
            equipment_code: raw.code("equipmentCode"),
            category: required(raw, "category", false)?,
            factory_serial: raw.text("factorySerial"),
            internal_number: raw.text("internalNumber"),
            use_certificate: raw.text("useCertificate"),
            user_unit: required(raw, "userUnit", true)?,
            org_code,
            credit_code,
            address: raw.text("address"),
            district: raw.code("district"),
            registration_authority: raw.text("registrationAuthority"),
            registration_date: raw.code("registrationDate"),
            use_status: raw.text("useStatus"),
            inspection_agency: raw.text("inspectionAgency"),
        })
    }
}

impl InspectionReport {
    pub fn from_raw(raw: &RawRecord) -> Result<InspectionReport, Reject> {
        let registration_code = required(raw, "registrationCode", false)?;
        check_registration_code(&registration_code)?;
        let kind = required(raw, "kind", true)?;
        if !STATUTORY_KINDS.contains(&kind.as_str()) {
            return Err(Reject::new(
                Code::RecField,
                format!("inspection kind {kind:?} is not a statutory kind"),
            ));
        }
        Ok(InspectionReport {
            report_number: required(raw, "reportNumber", false)?,
            registration_code,
            kind,
            date: required(raw, "date", false)?,
            conclusion: required(raw, "conclusion", true)?,
            next_due: raw.code("nextDue"),
            agency: required(raw, "agency", true)?,
            approved: raw.code("approved"),
        })
    }
}

impl Record {
    pub fn from_raw(kind: RecordKind, raw: &RawRecord) -> Result<Record, Reject> {
        match kind {
            RecordKind::Equipment => Equipment::from_raw(raw).map(Record::Equipment),
            RecordKind::InspectionReport => {
                InspectionReport::from_raw(raw).map(Record::InspectionReport)
            }
        }
    }
}

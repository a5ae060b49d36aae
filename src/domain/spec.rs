//! The record vocabulary of the notice: each kind's XML element, store table,
//! key, fields and owning side (R4: whoever generates a datum manages it).

use super::Role;

/// How a field's value is normalised and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// Identifiers: full-width to half-width, spaces removed, upper case.
    Code,
    /// Names, addresses: trimmed, full-width spaces folded.
    Text,
    /// YYYY-MM-DD.
    Date,
    /// xs:dateTime.
    DateTime,
    /// true / false.
    Bool,
    /// A value from a fixed list (lower case).
    Token,
}

#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// XML element name (camelCase); the store column is its snake_case.
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
    /// Owner of this field where the record is shared (equipment); None: the record's owner.
    pub owner: Option<Role>,
}

const fn f(name: &'static str, ty: Ty, required: bool) -> Field {
    Field {
        name,
        ty,
        required,
        owner: None,
    }
}
const fn sup(name: &'static str, ty: Ty, required: bool) -> Field {
    Field {
        name,
        ty,
        required,
        owner: Some(Role::Supervision),
    }
}
const fn ins(name: &'static str, ty: Ty, required: bool) -> Field {
    Field {
        name,
        ty,
        required,
        owner: Some(Role::Inspection),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKind {
    Equipment,
    InspectionReport,
    ConstructionNotice,
    UseRegistration,
    CodeChange,
    ResponsibilityProposal,
    ResponsibilityAssignment,
    ResponsibilityChangeRequest,
    ResponsibilityChange,
    DiscrepancyNotice,
}

pub struct Spec {
    pub kind: RecordKind,
    pub element: &'static str,
    pub table: &'static str,
    /// The field that identifies a record of this kind.
    pub key: &'static str,
    /// The side that generates records of this kind; None for equipment, whose
    /// fields are owned one by one.
    pub owner: Option<Role>,
    pub fields: &'static [Field],
}

use Ty::*;

const EQUIPMENT: &[Field] = &[
    sup("registrationCode", Code, true),
    ins("equipmentCode", Code, false),
    sup("category", Code, true),
    ins("factorySerial", Text, false),
    ins("internalNumber", Text, false),
    sup("useCertificate", Text, false),
    sup("userUnit", Text, true),
    sup("orgCode", Code, false),
    sup("creditCode", Code, false),
    sup("address", Text, false),
    sup("district", Code, false),
    sup("registrationAuthority", Text, false),
    sup("registrationDate", Date, false),
    sup("useStatus", Text, false),
    sup("inspectionAgency", Text, false),
    sup("nationalLevel", Bool, false),
];

const REPORT: &[Field] = &[
    f("reportNumber", Code, true),
    f("registrationCode", Code, true),
    f("kind", Token, true),
    f("date", Date, true),
    f("conclusion", Text, true),
    f("nextDue", Date, false),
    f("agency", Text, true),
    f("approved", DateTime, false),
];

const NOTICE: &[Field] = &[
    f("noticeNumber", Code, true),
    f("category", Code, true),
    f("registrationCode", Code, false),
    f("factorySerial", Text, false),
    f("userUnit", Text, true),
    f("orgCode", Code, false),
    f("creditCode", Code, false),
    f("address", Text, true),
    f("district", Code, false),
    f("constructionUnit", Text, true),
    f("constructionKind", Token, true),
    f("plannedStart", Date, true),
    f("inspectionAgency", Text, true),
];

const REGISTRATION: &[Field] = &[
    f("registrationCode", Code, true),
    f("useCertificate", Text, true),
    f("category", Code, true),
    f("factorySerial", Text, false),
    f("userUnit", Text, true),
    f("orgCode", Code, false),
    f("creditCode", Code, false),
    f("address", Text, false),
    f("district", Code, false),
    f("registrationAuthority", Text, true),
    f("registrationDate", Date, true),
    f("useStatus", Text, false),
    f("inspectionAgency", Text, false),
];

const CODE_CHANGE: &[Field] = &[
    f("changeId", Code, true),
    f("field", Token, true),
    f("oldValue", Code, true),
    f("newValue", Code, true),
    f("date", Date, true),
];

const PROPOSAL: &[Field] = &[
    f("proposalId", Code, true),
    f("registrationCode", Code, true),
    f("proposedAgency", Text, true),
    f("date", Date, true),
];

const ASSIGNMENT: &[Field] = &[
    f("assignmentId", Code, true),
    f("registrationCode", Code, true),
    f("agency", Text, true),
    f("date", Date, true),
    f("proposalId", Code, false),
];

const CHANGE_REQUEST: &[Field] = &[
    f("requestId", Code, true),
    f("registrationCode", Code, true),
    f("agency", Text, true),
    f("reason", Text, true),
    f("superiorApproval", Bool, true),
    f("date", Date, true),
];

const CHANGE: &[Field] = &[
    f("changeId", Code, true),
    f("registrationCode", Code, true),
    f("agency", Text, true),
    f("action", Token, true),
    f("date", Date, true),
    // The change request this decision answers, if any (R13).
    f("requestId", Code, false),
];

const DISCREPANCY: &[Field] = &[
    f("noticeId", Code, true),
    f("registrationCode", Code, true),
    f("field", Token, true),
    f("valueOnRecord", Text, false),
    f("valueFound", Text, false),
    f("agency", Text, true),
    f("date", Date, true),
];

pub const SPECS: &[Spec] = &[
    Spec {
        kind: RecordKind::Equipment,
        element: "equipment",
        table: "equipment",
        key: "registrationCode",
        owner: None,
        fields: EQUIPMENT,
    },
    Spec {
        kind: RecordKind::InspectionReport,
        element: "inspectionReport",
        table: "inspection_report",
        key: "reportNumber",
        owner: Some(Role::Inspection),
        fields: REPORT,
    },
    Spec {
        kind: RecordKind::ConstructionNotice,
        element: "constructionNotice",
        table: "construction_notice",
        key: "noticeNumber",
        owner: Some(Role::Supervision),
        fields: NOTICE,
    },
    Spec {
        kind: RecordKind::UseRegistration,
        element: "useRegistration",
        table: "use_registration",
        key: "registrationCode",
        owner: Some(Role::Supervision),
        fields: REGISTRATION,
    },
    Spec {
        kind: RecordKind::CodeChange,
        element: "codeChange",
        table: "code_change",
        key: "changeId",
        owner: Some(Role::Supervision),
        fields: CODE_CHANGE,
    },
    Spec {
        kind: RecordKind::ResponsibilityProposal,
        element: "responsibilityProposal",
        table: "responsibility_proposal",
        key: "proposalId",
        owner: Some(Role::Inspection),
        fields: PROPOSAL,
    },
    Spec {
        kind: RecordKind::ResponsibilityAssignment,
        element: "responsibilityAssignment",
        table: "responsibility_assignment",
        key: "assignmentId",
        owner: Some(Role::Supervision),
        fields: ASSIGNMENT,
    },
    Spec {
        kind: RecordKind::ResponsibilityChangeRequest,
        element: "responsibilityChangeRequest",
        table: "responsibility_change_request",
        key: "requestId",
        owner: Some(Role::Inspection),
        fields: CHANGE_REQUEST,
    },
    Spec {
        kind: RecordKind::ResponsibilityChange,
        element: "responsibilityChange",
        table: "responsibility_change",
        key: "changeId",
        owner: Some(Role::Supervision),
        fields: CHANGE,
    },
    Spec {
        kind: RecordKind::DiscrepancyNotice,
        element: "discrepancyNotice",
        table: "discrepancy_notice",
        key: "noticeId",
        owner: Some(Role::Inspection),
        fields: DISCREPANCY,
    },
];

impl RecordKind {
    pub fn spec(self) -> &'static Spec {
        SPECS
            .iter()
            .find(|s| s.kind == self)
            .expect("every kind has a spec")
    }

    /// The XML element that carries this record.
    pub fn element(self) -> &'static str {
        self.spec().element
    }

    pub fn from_element(name: &[u8]) -> Option<RecordKind> {
        SPECS
            .iter()
            .find(|s| s.element.as_bytes() == name)
            .map(|s| s.kind)
    }
}

/// The store column of an XML field name: camelCase to snake_case.
/// A field's name as Chinese operators read it (R11's screens are in Chinese);
/// empty for a name not in the table.
pub fn label_zh(name: &str) -> &'static str {
    match name {
        "action" => "操作",
        "address" => "地址",
        "agency" => "检验机构",
        "approved" => "已审批",
        "assignmentId" => "指定编号",
        "category" => "设备类别",
        "changeId" => "变更编号",
        "conclusion" => "检验结论",
        "constructionKind" => "施工类别",
        "constructionUnit" => "施工单位",
        "creditCode" => "信用代码",
        "date" => "日期",
        "district" => "区县",
        "equipmentCode" => "设备代码",
        "factorySerial" => "出厂编号",
        "field" => "字段",
        "inspectionAgency" => "检验机构",
        "internalNumber" => "单位内编号",
        "kind" => "种类",
        "nationalLevel" => "国家级",
        "newValue" => "新值",
        "nextDue" => "下次检验",
        "noticeId" => "通知编号",
        "noticeNumber" => "告知编号",
        "oldValue" => "原值",
        "orgCode" => "组织机构代码",
        "plannedStart" => "计划开工",
        "proposalId" => "建议编号",
        "proposedAgency" => "建议机构",
        "reason" => "原因",
        "registrationAuthority" => "登记机关",
        "registrationCode" => "注册代码",
        "registrationDate" => "登记日期",
        "reportNumber" => "报告编号",
        "requestId" => "申请编号",
        "superiorApproval" => "上级批准",
        "useCertificate" => "使用证号",
        "useStatus" => "使用状态",
        "userUnit" => "使用单位",
        "valueFound" => "发现值",
        "valueOnRecord" => "登记值",
        "temporaryAgency" => "临时检验机构",
        _ => "",
    }
}

pub fn column(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

impl Spec {
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The side that owns `field` of a record of this kind.
    pub fn owner_of(&self, field: &Field) -> Role {
        field.owner.or(self.owner).unwrap_or(Role::Supervision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_has_a_chinese_label() {
        for s in SPECS {
            for f in s.fields {
                assert!(!label_zh(f.name).is_empty(), "{}: no label", f.name);
            }
        }
    }

    #[test]
    fn columns_and_lookup() {
        assert_eq!(column("registrationCode"), "registration_code");
        assert_eq!(
            RecordKind::from_element(b"codeChange"),
            Some(RecordKind::CodeChange)
        );
        for s in SPECS {
            assert!(
                s.field(s.key).is_some_and(|f| f.required),
                "{} key",
                s.element
            );
        }
    }
}

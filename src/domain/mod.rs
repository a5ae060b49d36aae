//! The domain: identifiers, records and the rules they must satisfy. Nothing here
//! knows about files, signatures or transport.

pub mod ids;
pub mod records;
pub mod rules;
pub mod spec;

pub use records::{RawRecord, Record};
pub use spec::RecordKind;

/// The two sides of the exchange.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// 监察: the city and district bureaus.
    Supervision,
    /// 检验: the inspection agencies.
    Inspection,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Supervision => "supervision",
            Role::Inspection => "inspection",
        }
    }

    /// Peers are always of the other side.
    pub fn other(self) -> Role {
        match self {
            Role::Supervision => Role::Inspection,
            Role::Inspection => Role::Supervision,
        }
    }
}

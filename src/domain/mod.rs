//! The domain: identifiers, records and the rules they must satisfy. Nothing here
//! knows about files, signatures or transport.

pub mod ids;
pub mod records;

pub use records::{Equipment, InspectionReport, Record, RecordKind};

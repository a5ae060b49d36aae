//! The exchange format (docs/format.md): a sealed set's three files, SSHSIG
//! signatures, the batch and acknowledgment documents, decoding into UTF-8 with
//! streaming limits, expansion and XSD validation, and verification of a set.

pub mod ack;
pub mod decode;
pub mod document;
pub mod seal;
pub mod set;
pub mod sm2sig;
pub mod sshsig;
pub mod suite;
pub mod validate;
pub mod verify;

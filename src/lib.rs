//! sedx: the special-equipment data exchanger between a city's supervision system
//! (监察) and its inspection system (检验).
//!
//! The pipeline is the architecture: [`seal`] (compress, sign, checksum) →
//! [`ship`] (SFTP push) → [`receive`] (take complete sets) → [`verify`] (checksum,
//! signature, sender) → [`validate`] (gunzip with a cap, no DOCTYPE, XSD) →
//! [`apply`] (records into the [`store`]) → [`ack`] (sealed acknowledgment back).
//! [`domain`] holds the records and rules; it knows nothing of transport.

pub mod ack;
pub mod apply;
pub mod backup;
pub mod card;
pub mod check;
pub mod clean;
pub mod config;
pub mod decode;
pub mod demo;
pub mod document;
pub mod domain;
pub mod error;
pub mod export;
pub mod faults;
pub mod fsx;
#[doc(hidden)]
pub mod fuzzing;
pub mod gen;
pub mod node;
pub mod outbound;
pub mod pull;
pub mod quarantine;
pub mod receive;
pub mod reconcile;
pub mod seal;
pub mod set;
pub mod ship;
pub mod signature;
pub mod status;
pub mod store;
pub mod text;
pub mod validate;
pub mod verify;
pub mod views;
pub mod watch;

pub use error::{Code, Error, Reject, Result};

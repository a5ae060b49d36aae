//! What operators run beside the exchange: status, checks and participant
//! cards, register cleanup and reconciliation, synthetic data, export, backup
//! and the demo.

pub mod alerts;
pub mod backup;
pub mod card;
pub mod check;
pub mod clean;
pub mod console;
pub mod demo;
pub mod export;
#[doc(hidden)]
pub mod fuzzing;
pub mod generate;
pub mod metrics;
pub mod reconcile;
pub mod status;

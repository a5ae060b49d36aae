//! sedx: the special-equipment data exchanger between a city's supervision system
//! (监察) and its inspection system (检验).
//!
//! The pipeline is the architecture, and the folders show it, lowest first:
//! - [`context`]: what every stage works in: errors, files, text, clock, the
//!   configuration and the node (its folders, store, keys and sessions);
//! - [`domain`]: records and rules of the notice (R1-R16), free of transport;
//! - [`wire`]: the exchange format: sealed sets, SSHSIG, documents, decoding,
//!   validation, acknowledgments;
//! - [`store`]: the journal, the channels and the records, in SQLite;
//! - the stages: [`send`] (drops sifted, sealed, released), [`transport`] (SFTP
//!   push, pull, backoff, resend), [`receive`] (take, verify, validate, apply,
//!   answer);
//! - [`run`]: one pass over the stages, and the watcher that repeats it;
//! - [`tools`]: what operators run beside the exchange (status, views, quarantine,
//!   check, cards, clean, reconcile, generate, export, backup, demo).
//!
//! A module imports only from its own level or below; nothing imports [`run`] or
//! [`tools`] back.

pub mod context;
pub mod domain;
pub mod receive;
pub mod run;
pub mod send;
pub mod store;
pub mod tools;
pub mod transport;
pub mod wire;

pub use context::error::{Code, Error, Reject, Result};

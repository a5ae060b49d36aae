//! What every stage works in: errors, files, text, the clock, the configuration
//! and the node. Nothing here imports a stage.

pub mod clock;
pub mod config;
pub mod error;
pub mod faults;
pub mod files;
pub mod node;
pub mod quarantine;
pub mod report;
pub mod text;

//! Orchestration, above every stage: one pass of work, and the watcher that
//! runs passes until stopped (SIGTERM) and reloads on SIGHUP.

pub mod pass;
pub mod watch;

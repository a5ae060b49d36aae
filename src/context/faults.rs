//! Fault injection for the kill-and-restart tests: with SEDX_CRASH_AT=<point>
//! the process aborts at that point, as a kill would stop it (no cleanup runs);
//! with SEDX_CRASH_AT=<point>#N, at the point's Nth passage.

use std::sync::atomic::{AtomicU64, Ordering};

static PASSED: AtomicU64 = AtomicU64::new(0);

/// Abort here if the environment asks for a crash at `point`.
pub fn crash_point(point: &str) {
    let Ok(want) = std::env::var("SEDX_CRASH_AT") else {
        return;
    };
    let (name, nth) = match want.split_once('#') {
        Some((name, n)) => (name, n.parse().unwrap_or(1)),
        None => (want.as_str(), 1),
    };
    if name == point && PASSED.fetch_add(1, Ordering::SeqCst) + 1 >= nth {
        eprintln!("sedx: crash injected at {point}");
        std::process::abort();
    }
}

//! Fault injection for the kill-and-restart tests: with SEDX_CRASH_AT=<point>
//! the process aborts at that point, as a kill would stop it (no cleanup runs).

/// Abort here if the environment asks for a crash at `point`.
pub fn crash_point(point: &str) {
    if std::env::var("SEDX_CRASH_AT").is_ok_and(|p| p == point) {
        eprintln!("sedx: crash injected at {point}");
        std::process::abort();
    }
}

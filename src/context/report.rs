//! What one pass did: counts, failures (each logged once, each with its stage
//! and kind), and which peers failed, so that a pass does not try them again.

use crate::context::error::Error;

/// The step of a pass a failure happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Pull,
    Receive,
    Release,
    Resend,
    Seal,
    Ship,
    PullWatch,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Pull => "pull",
            Stage::Receive => "receive",
            Stage::Release => "release",
            Stage::Resend => "resend",
            Stage::Seal => "seal",
            Stage::Ship => "ship",
            Stage::PullWatch => "pulls",
        }
    }
}

/// What kind of trouble a failure is, mildest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailureKind {
    /// A peer could not be reached or refused the login or host key: the sets
    /// wait and are tried again (exit 69, EX_UNAVAILABLE).
    Transport,
    /// The machine: a full disk, a read-only or busy store (exit 74, EX_IOERR).
    Environment,
    /// Anything else (exit 1).
    Other,
}

impl FailureKind {
    pub fn of(e: &Error) -> FailureKind {
        match e {
            Error::Transport { .. } | Error::HostKey { .. } => FailureKind::Transport,
            e if e.is_environmental() => FailureKind::Environment,
            _ => FailureKind::Other,
        }
    }

    /// The exit status a command ends with when this is the worst failure.
    pub fn exit_code(self) -> u8 {
        match self {
            FailureKind::Transport => 69,
            FailureKind::Environment => 74,
            FailureKind::Other => 1,
        }
    }
}

/// One failure of a pass: where, what it was about, and why.
#[derive(Debug, Clone)]
pub struct Failure {
    pub stage: Stage,
    pub kind: FailureKind,
    /// The failure as it reads: what it was about (a peer, a set, a file) and why.
    pub detail: String,
}

impl Failure {
    pub fn new(stage: Stage, what: impl std::fmt::Display, e: &Error) -> Failure {
        let what = what.to_string();
        Failure {
            stage,
            kind: FailureKind::of(e),
            detail: if what.is_empty() {
                e.to_string()
            } else {
                format!("{what}: {e}")
            },
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.stage.as_str(), self.detail)
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone)]
pub struct PassReport {
    pub sealed: u64,
    pub shipped: u64,
    pub applied: u64,
    pub duplicates: u64,
    pub acks_received: u64,
    pub quarantined: u64,
    pub held: u64,
    /// Batches of deferred records whose exchange date has come (R9).
    pub released: u64,
    /// Sets fetched from a hub (pull mode).
    pub pulled: u64,
    /// Batches queued because the exchange window is closed.
    pub waiting_for_window: u64,
    /// Peers skipped while waiting to retry after transport errors.
    pub backing_off: u64,
    /// Batches not acknowledged in time (alerted and resent).
    pub overdue: u64,
    /// Plain files still growing: look again after the settle time.
    pub unsettled: u64,
    /// Transport and other failures; the sets concerned stay queued.
    pub errors: Vec<Failure>,
    /// Complete sets in inbound folders of no configured peer (not read).
    pub strangers: u64,
    /// Indexes into `errors` of those already logged.
    pub logged: Vec<usize>,
    /// Peers whose transport failed in this pass: not tried again until the next.
    pub failed_peers: Vec<String>,
    /// Shipping failed in this pass: it is not tried again until the next.
    pub ship_failed: bool,
}

impl PassReport {
    /// A failure already logged where it happened (with its peer and set): it
    /// counts, and is not logged a second time at the end of the pass.
    pub fn logged_error(&mut self, f: Failure) {
        self.logged.push(self.errors.len());
        self.errors.push(f);
    }

    /// A failure of a step of the pass.
    pub fn failed(&mut self, stage: Stage, what: impl std::fmt::Display, e: &Error) {
        self.errors.push(Failure::new(stage, what, e));
    }

    /// What went wrong in this pass, worst kind first: the exit status of
    /// `sedx run --once` and `sedx send` follows it.
    pub fn worst(&self) -> Option<FailureKind> {
        self.errors.iter().map(|f| f.kind).max()
    }

    /// The failures not logged yet.
    pub fn unlogged_errors(&self) -> impl Iterator<Item = &Failure> {
        self.errors
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.logged.contains(i))
            .map(|(_, e)| e)
    }

    pub fn did_something(&self) -> bool {
        self.sealed
            + self.shipped
            + self.applied
            + self.duplicates
            + self.acks_received
            + self.quarantined
            > 0
    }
}

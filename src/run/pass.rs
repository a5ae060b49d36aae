//! One pass of work over the stages, in order: pull what waits at a hub, take
//! what arrived (answering as it goes), release held records, resend what is
//! overdue, seal what was dropped (shipping each as it is sealed), ship the
//! rest, and watch the pulls of pulling peers. The only module that calls the
//! stages.

use crate::context::node::Node;
use crate::context::report::{PassReport, Stage};

impl Node {
    /// One full pass: take what arrived (and answer it), seal what was dropped,
    /// ship what is sealed (batches only within the exchange window).
    pub fn pass(&mut self) -> PassReport {
        self.pass_with(false)
    }

    /// A pass; with `force`, the exchange window and retry waits are overridden
    /// (`--now`).
    pub fn pass_with(&mut self, force: bool) -> PassReport {
        let mut report = PassReport::default();
        if let Err(e) = crate::transport::pull::pull_all(self, &mut report, force) {
            report.failed(Stage::Pull, "", &e);
        }
        // Acknowledgments leave while a long inbound queue is applied: every
        // ACK_FLUSH_SETS sets or second, whichever comes first.
        let (mut taken, mut last) = (0u32, std::time::Instant::now());
        let flush = |node: &mut Node, report: &mut PassReport| {
            taken += 1;
            if taken >= ACK_FLUSH_SETS || last.elapsed() >= std::time::Duration::from_secs(1) {
                (taken, last) = (0, std::time::Instant::now());
                ship_answers(node, report);
            }
        };
        // Deliveries a crash left half done go before any later batch is applied.
        if let Err(e) = crate::receive::deliver::deliver_pending(self) {
            report.failed(Stage::Receive, "delivered/", &e);
        }
        if let Err(e) = crate::receive::receive_all(self, &mut report, flush) {
            report.failed(Stage::Receive, "", &e);
        }
        if let Err(e) = crate::send::release_due(self, &mut report) {
            report.failed(Stage::Release, "", &e);
        }
        // Overdue batches first: what is shipped below is not overdue yet.
        if let Err(e) = crate::transport::ship::resend_overdue(self, &mut report) {
            report.failed(Stage::Resend, "", &e);
        }
        if self.cfg.node.auto_export {
            if let Err(e) = crate::tools::export::auto(self) {
                report.failed(Stage::Seal, "export", &e);
            }
        }
        if let Err(e) = crate::send::seal_dropped(self, &mut report, |node, report| {
            ship_now(node, report, force)
        }) {
            report.failed(Stage::Seal, "", &e);
        }
        if let Err(e) = crate::transport::ship::ship_all(self, &mut report, force) {
            report.failed(Stage::Ship, "", &e);
        }
        if let Err(e) = crate::transport::pull::watch_pulls(self) {
            report.failed(Stage::PullWatch, "", &e);
        }
        report
    }

    /// Seal what was dropped and ship what is queued (`sedx send`).
    pub fn send(&mut self, force: bool) -> PassReport {
        let mut report = PassReport::default();
        for (stage, r) in [
            (Stage::Release, crate::send::release_due(self, &mut report)),
            (
                Stage::Seal,
                crate::send::seal_dropped(self, &mut report, |node, report| {
                    ship_now(node, report, force)
                }),
            ),
            (
                Stage::Ship,
                crate::transport::ship::ship_all(self, &mut report, force),
            ),
        ] {
            if let Err(e) = r {
                report.failed(stage, "", &e);
            }
        }
        report
    }
}

/// Sets taken between two shipments of acknowledgments in a long inbound queue.
pub const ACK_FLUSH_SETS: u32 = 25;

/// Ship what is queued while the inbound queue is worked: acknowledgments go
/// whatever the window (batches still wait for it).
fn ship_answers(node: &mut Node, report: &mut PassReport) {
    ship_once(node, report, false);
}

fn ship_now(node: &mut Node, report: &mut PassReport, force: bool) {
    // Outside the window batches wait; the pass's last ship counts them.
    if force || node.cfg.window().open_now() {
        ship_once(node, report, force);
    }
}

/// Ship between the steps of a pass; after a failure, not again in this pass.
fn ship_once(node: &mut Node, report: &mut PassReport, force: bool) {
    if report.ship_failed {
        return;
    }
    let errors = report.errors.len();
    if let Err(e) = crate::transport::ship::ship_all(node, report, force) {
        report.failed(Stage::Ship, "", &e);
    }
    report.ship_failed = report.errors.len() > errors;
}

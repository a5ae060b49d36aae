//! `/metrics`: the node's state in the Prometheus text format, gathered afresh
//! at each scrape from `sedx status` and the store's totals (names documented
//! in docs/operations.md).

use crate::context::error::{Error, Result};
use crate::context::node::Node;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

fn gauges(
    reg: &mut Registry,
    name: &str,
    help: &str,
) -> Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>> {
    let f = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    reg.register(name, help, f.clone());
    f
}

fn counters(reg: &mut Registry, name: &str, help: &str) -> Family<Labels, Counter> {
    let f = Family::<Labels, Counter>::default();
    reg.register(name, help, f.clone());
    f
}

fn unix(rfc3339: &str) -> Option<f64> {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp() as f64)
}

/// The metrics text of a node now.
pub fn render(node: &Node) -> Result<String> {
    let status = crate::tools::status::gather(node)?;
    let totals = crate::store::views::exchange_totals(&node.store)?;
    let mut reg = Registry::with_prefix("sedx");
    let peer = |p: &str| -> Labels { vec![("peer", p.to_string())] };

    let queued = gauges(
        &mut reg,
        "peer_queued_sets",
        "Sets in outbound/ waiting to be shipped to the peer",
    );
    let awaiting = gauges(
        &mut reg,
        "peer_awaiting_ack_batches",
        "Batches shipped to the peer and not acknowledged yet",
    );
    let oldest = gauges(
        &mut reg,
        "peer_oldest_unacknowledged_seconds",
        "Age of the oldest batch shipped and not acknowledged (0: none)",
    );
    let failing = gauges(
        &mut reg,
        "peer_transport_failures",
        "Consecutive transport failures with the peer (0: working)",
    );
    let last_sent = gauges(
        &mut reg,
        "peer_last_sent_timestamp_seconds",
        "When a set was last shipped to the peer (Unix time)",
    );
    let last_recv = gauges(
        &mut reg,
        "peer_last_received_timestamp_seconds",
        "When a batch of the peer was last applied (Unix time)",
    );
    let gaps = gauges(
        &mut reg,
        "peer_held_sets",
        "Sets of the peer held back by a sequence gap",
    );
    let waiting_pull = gauges(
        &mut reg,
        "peer_waiting_for_pull_sets",
        "Sets left for a pulling peer and not taken yet",
    );
    for p in &status.peers {
        queued.get_or_create(&peer(&p.id)).set(p.queued as f64);
        awaiting
            .get_or_create(&peer(&p.id))
            .set(p.awaiting_ack.len() as f64);
        let age = p
            .awaiting_ack
            .iter()
            .map(|a| a.waiting_secs)
            .max()
            .unwrap_or(0);
        oldest.get_or_create(&peer(&p.id)).set(age as f64);
        failing
            .get_or_create(&peer(&p.id))
            .set(p.transport.failures as f64);
        if let Some(t) = p.last_sent.as_deref().and_then(unix) {
            last_sent.get_or_create(&peer(&p.id)).set(t);
        }
        if let Some(t) = p.last_received.as_deref().and_then(unix) {
            last_recv.get_or_create(&peer(&p.id)).set(t);
        }
        gaps.get_or_create(&peer(&p.id)).set(p.held.len() as f64);
        if let Some(pull) = &p.pull {
            waiting_pull
                .get_or_create(&peer(&p.id))
                .set(pull.waiting as f64);
        }
    }
    let quarantine = gauges(
        &mut reg,
        "quarantine_open_items",
        "Open quarantined items by reason code",
    );
    for q in &status.quarantine {
        quarantine
            .get_or_create(&vec![("code", q.code.clone())])
            .inc();
    }
    let undecided = gauges(
        &mut reg,
        "decisions_awaiting",
        "Proposals and change requests awaiting this node's decision",
    );
    undecided
        .get_or_create(&vec![])
        .set(status.undecided.len() as f64);

    let sent = counters(
        &mut reg,
        "sets_shipped",
        "Sets shipped, by peer and kind (batch, ack)",
    );
    for (p, kind, n) in &totals.sets_sent {
        sent.get_or_create(&vec![("peer", p.clone()), ("kind", kind.clone())])
            .inc_by(*n);
    }
    let received = counters(
        &mut reg,
        "batches_received",
        "Batches received and journaled, by peer and outcome",
    );
    for (p, s, n) in &totals.batches_received {
        received
            .get_or_create(&vec![("peer", p.clone()), ("status", s.clone())])
            .inc_by(*n);
    }
    let applied = counters(
        &mut reg,
        "records_applied",
        "Records applied from the peer's batches",
    );
    let refused = counters(
        &mut reg,
        "records_refused",
        "Records of the peer's batches refused, with a reason code each",
    );
    for (p, a, r) in &totals.records {
        applied.get_or_create(&peer(p)).inc_by(*a);
        refused.get_or_create(&peer(p)).inc_by(*r);
    }
    let sealed = counters(&mut reg, "sets_sealed", "Batches sealed, by peer");
    for (p, n) in &totals.sets_sealed {
        sealed.get_or_create(&peer(p)).inc_by(*n);
    }
    let quarantined = counters(
        &mut reg,
        "quarantined",
        "Items ever put in quarantine, by reason code",
    );
    for (code, n) in &totals.quarantined {
        quarantined
            .get_or_create(&vec![("code", code.clone())])
            .inc_by(*n);
    }
    let by_kind = counters(
        &mut reg,
        "records_by_kind",
        "Records applied, by direction (in: from peers, out: this node's own) and kind",
    );
    for (dir, kind, n) in crate::store::views::records_by_kind(&node.store)? {
        by_kind
            .get_or_create(&vec![("direction", dir), ("kind", kind)])
            .inc_by(n);
    }
    let acks = counters(
        &mut reg,
        "acknowledgments_received",
        "Acknowledgments of this node's batches, by status",
    );
    for (s, n) in &totals.acks_received {
        acks.get_or_create(&vec![("status", s.clone())]).inc_by(*n);
    }
    let latency = Histogram::new([1.0, 5.0, 30.0, 60.0, 300.0, 1800.0, 3600.0, 21600.0]);
    for s in &totals.ack_latency_secs {
        latency.observe(*s);
    }
    reg.register(
        "ack_latency_seconds",
        "From shipping a batch to its acknowledgment",
        latency,
    );
    let mut out = String::new();
    encode(&mut out, &reg).map_err(|e| Error::Other(format!("metrics: {e}")))?;
    Ok(out)
}

//! Per-stage figures from the validators' Prometheus metrics, read before and after the
//! measured window.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use crate::client;

/// The counters the benchmark reads, by what they measure.
pub const ORDERED: &str = "ordo_node_committed_transactions_total";
pub const EXECUTED: &str = "ordo_node_executed_transactions_total";
pub const TIMEOUTS: &str = "ordo_consensus_timeouts_total";
pub const REEXECUTIONS: &str = "ordo_node_reexecutions_total";
/// The histograms whose means split a transaction's latency by stage, in the order a
/// transaction meets them: ingress (per submission request: read, decoded, signatures
/// checked, into the mempool), the mempool (per transaction), its batch's proof of
/// availability and ordering (per own batch: made to proven, proven to committed and
/// stored), and execution (per block: stored to executed and written).
pub const LATENCY_STAGES: [(&str, &str); 5] = [
    ("ingress", "ordo_node_rpc_seconds"),
    ("mempool", "ordo_network_mempool_wait_seconds"),
    ("availability", "ordo_node_batch_availability_seconds"),
    ("ordering", "ordo_node_batch_ordering_seconds"),
    ("execution", "ordo_node_block_execution_latency_seconds"),
];

/// One validator's counters at one instant (`None`: not exported or not reachable).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub ordered: Option<f64>,
    pub executed: Option<f64>,
    pub timeouts: Option<f64>,
    pub reexecutions: Option<f64>,
    /// (sum of seconds, count) of each of [`LATENCY_STAGES`].
    pub latency: [Option<(f64, f64)>; 5],
}

/// The sum of every sample of `name` (all label sets) in an exposition text, if any.
pub fn sum(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        // The name must end here: `x_total` is not `x_total_bucket`.
        let rest = match rest.chars().next() {
            Some('{') => rest.split_once('}').map_or("", |(_, r)| r),
            Some(' ') => rest,
            _ => continue,
        };
        if let Some(value) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        {
            *found.get_or_insert(0.0) += value;
        }
    }
    found
}

pub fn snapshot(addr: SocketAddr) -> Snapshot {
    match client::metrics_text(addr, Duration::from_secs(5)) {
        Ok(text) => parse(&text),
        Err(_) => Snapshot::default(),
    }
}

/// The figures of one readable exposition text.
fn parse(text: &str) -> Snapshot {
    // A counter appears once first incremented: absent from a readable exposition, it is
    // zero (except the ordered count, whose absence means an older node).
    Snapshot {
        ordered: sum(text, ORDERED),
        executed: sum(text, EXECUTED).or(Some(0.0)),
        timeouts: sum(text, TIMEOUTS).or(Some(0.0)),
        reexecutions: sum(text, REEXECUTIONS).or(Some(0.0)),
        latency: LATENCY_STAGES.map(|(_, name)| {
            Some((
                sum(text, &format!("{name}_sum"))?,
                sum(text, &format!("{name}_count"))?,
            ))
        }),
    }
}

/// One validator's figures over the window.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    pub validator: usize,
    /// Transactions ordered by consensus per second.
    pub ordered_tps: Option<f64>,
    pub executed_tps: Option<f64>,
    pub view_change_timeouts: Option<u64>,
    pub reexecutions: Option<u64>,
    /// Mean milliseconds of each of [`LATENCY_STAGES`] over the window, by stage name.
    pub latency_ms: Vec<(String, Option<f64>)>,
}

fn delta(before: Option<f64>, after: Option<f64>) -> Option<f64> {
    // A counter that is missing at the start but there at the end started at zero.
    Some(after? - before.unwrap_or(0.0)).filter(|d| *d >= 0.0)
}

pub fn stage(validator: usize, before: &Snapshot, after: &Snapshot, seconds: f64) -> Stage {
    let rate = |b, a| delta(b, a).map(|d| d / seconds.max(1e-9));
    Stage {
        validator,
        ordered_tps: rate(before.ordered, after.ordered),
        executed_tps: rate(before.executed, after.executed),
        view_change_timeouts: delta(before.timeouts, after.timeouts).map(|d| d as u64),
        reexecutions: delta(before.reexecutions, after.reexecutions).map(|d| d as u64),
        latency_ms: LATENCY_STAGES
            .iter()
            .zip(before.latency.iter().zip(&after.latency))
            .map(|((name, _), (b, a))| {
                let mean = a.and_then(|(sum_a, count_a)| {
                    let (sum_b, count_b) = b.unwrap_or((0.0, 0.0));
                    let count = count_a - count_b;
                    (count > 0.0).then(|| (sum_a - sum_b) / count * 1e3)
                });
                ((*name).to_string(), mean)
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_samples_of_one_metric_only() {
        let text = "# TYPE ordo_node_executed_transactions_total counter\n\
                    ordo_node_executed_transactions_total 120\n\
                    ordo_node_executed_transactions_total_bucket{le=\"1\"} 5\n\
                    ordo_consensus_timeouts_total{kind=\"a\"} 2\n\
                    ordo_consensus_timeouts_total{kind=\"b\"} 3\n";
        assert_eq!(sum(text, EXECUTED), Some(120.0));
        assert_eq!(sum(text, TIMEOUTS), Some(5.0));
        assert_eq!(sum(text, ORDERED), None);
        let before = Snapshot {
            executed: Some(100.0),
            ..Snapshot::default()
        };
        let after = Snapshot {
            executed: Some(300.0),
            timeouts: Some(2.0),
            ..Snapshot::default()
        };
        let s = stage(0, &before, &after, 2.0);
        assert_eq!(s.executed_tps, Some(100.0));
        assert_eq!(s.view_change_timeouts, Some(2));
        assert_eq!(s.ordered_tps, None);
    }

    /// A stage's mean over the window is the growth of its histogram's sum over the growth
    /// of its count (both cumulative in the exposition), in milliseconds.
    #[test]
    fn a_stage_mean_is_taken_over_the_window_only() {
        let text = |sum: f64, count: u64| {
            format!(
                "ordo_node_batch_ordering_seconds{{quantile=\"0.5\"}} 9\n\
                 ordo_node_batch_ordering_seconds_sum {sum}\n\
                 ordo_node_batch_ordering_seconds_count {count}\n\
                 ordo_node_rpc_seconds_sum{{endpoint=\"submit\"}} 1\n\
                 ordo_node_rpc_seconds_count{{endpoint=\"submit\"}} 10\n\
                 ordo_node_rpc_seconds_sum{{endpoint=\"submit_batch\"}} 3\n\
                 ordo_node_rpc_seconds_count{{endpoint=\"submit_batch\"}} 10\n"
            )
        };
        let before = parse(&text(100.0, 1_000));
        let after = parse(&text(102.5, 1_010));
        let s = stage(0, &before, &after, 1.0);
        let mean = |name: &str| s.latency_ms.iter().find(|(n, _)| n == name).unwrap().1;
        // 2.5 s over 10 batches in the window, not 102.5 s over 1,010.
        assert_eq!(mean("ordering"), Some(250.0));
        // Labelled series add up; no growth in the window gives no mean.
        assert_eq!(before.latency[0], Some((4.0, 20.0)));
        assert_eq!(mean("ingress"), None);
        assert_eq!(mean("mempool"), None, "not exported");
    }
}

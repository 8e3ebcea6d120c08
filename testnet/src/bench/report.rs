//! The benchmark's report: the figures, the accounting identity, and how it prints.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::metrics::Stage;
use super::verify::Verification;

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
    /// How many latencies these are drawn from.
    pub samples: u64,
}

impl Latency {
    /// Milliseconds from a histogram of microseconds.
    pub fn from_histogram(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
            samples: h.len(),
        }
    }
}

/// Per-stage figures over the measured window.
#[derive(Debug, Clone, Serialize)]
pub struct Stages {
    /// Mean over the validators that export the counter.
    pub ordered_tps: Option<f64>,
    pub executed_tps: Option<f64>,
    /// Summed over validators.
    pub view_change_timeouts: Option<u64>,
    pub reexecutions: Option<u64>,
    /// Mean milliseconds per stage of a transaction's latency (the validators' view),
    /// averaged over the validators that export it: see `metrics::LATENCY_STAGES`.
    pub latency_ms: Vec<(String, Option<f64>)>,
    pub per_validator: Vec<Stage>,
}

impl Stages {
    pub fn from(per_validator: Vec<Stage>) -> Stages {
        fn mean(v: impl Iterator<Item = Option<f64>>) -> Option<f64> {
            let v: Vec<f64> = v.flatten().collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        }
        fn total(v: impl Iterator<Item = Option<u64>>) -> Option<u64> {
            v.fold(None, |acc, x| match x {
                Some(x) => Some(acc.unwrap_or(0) + x),
                None => acc,
            })
        }
        Stages {
            ordered_tps: mean(per_validator.iter().map(|s| s.ordered_tps)),
            executed_tps: mean(per_validator.iter().map(|s| s.executed_tps)),
            view_change_timeouts: total(per_validator.iter().map(|s| s.view_change_timeouts)),
            reexecutions: total(per_validator.iter().map(|s| s.reexecutions)),
            latency_ms: super::metrics::LATENCY_STAGES
                .iter()
                .enumerate()
                .map(|(i, (name, _))| {
                    let stage = per_validator
                        .iter()
                        .map(|s| s.latency_ms.get(i).and_then(|(_, m)| *m));
                    ((*name).to_string(), mean(stage))
                })
                .collect(),
            per_validator,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PerSecond {
    /// Seconds since the start (this second ends at `t + 1`).
    pub t: u64,
    /// Items first seen committed during this second.
    pub committed: u64,
    /// Latency of those items: where in a run a tail comes from.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub workload: String,
    /// `ordo` (ed25519) or `eth` (EIP-1559, secp256k1 senders recovered by every validator).
    pub tx_format: String,
    pub tx_size: Option<usize>,
    pub ordering_only: bool,
    /// `open` (fixed rate) or `closed` (bounded in flight).
    pub load: String,
    pub rate: Option<f64>,
    pub max_in_flight: Option<u64>,
    pub validators: usize,
    pub live_validators: usize,
    pub faults: usize,
    pub fault_at_s: Option<f64>,
    pub accounts: u32,
    pub skew: String,
    pub cores: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
    /// The measured window's actual length.
    pub measured_s: f64,
    pub signed: u64,
    pub signing_s: f64,

    /// Items due by the end of the run (open loop) or sent (closed loop).
    pub offered: u64,
    pub offered_tps: Option<f64>,
    pub sent: u64,
    /// Block appearances of the run's items (a duplicate would count twice).
    pub committed: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    pub expired: u64,
    pub in_flight: u64,
    /// Of `in_flight`, items a validator answered as accepted (the rest went unanswered).
    pub in_flight_admitted: u64,
    /// `sent = committed + rejected + expired + in_flight`.
    pub identity_holds: bool,
    /// Items both refused and committed, committed twice, or committed though never sent.
    pub anomalies: u64,
    /// Items sent in requests that got no answer (counted in the categories above).
    pub unanswered: u64,
    pub busy_retries: u64,

    /// Items first committed inside the window / the window's length.
    pub committed_tps: f64,
    pub committed_in_window: u64,
    /// Submission to execution, for items submitted inside the window.
    pub latency_ms: Latency,
    pub stages: Stages,
    pub verification: Verification,
    /// Sum over the bench accounts of how far their nonces moved (transactions that
    /// executed and paid their fee); `None` for opaque payloads.
    pub nonces_advanced: Option<u64>,
    pub per_second: Vec<PerSecond>,
    pub interrupted: bool,
    pub notes: Vec<String>,
}

fn n(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl BenchReport {
    /// The human summary.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let load = match (self.rate, self.max_in_flight) {
            (Some(r), _) => format!("open loop at {} tx/s", n(r.round() as u64)),
            (_, Some(k)) => format!("closed loop, at most {} in flight", n(k)),
            _ => String::new(),
        };
        let size = self
            .tx_size
            .map(|b| format!(" of {b} bytes"))
            .unwrap_or_default();
        let accounts = if self.ordering_only {
            String::new()
        } else {
            format!(", {} accounts ({})", n(self.accounts.into()), self.skew)
        };
        let format = match self.tx_format.as_str() {
            "eth" => " as Ethereum transactions",
            _ => "",
        };
        let _ = writeln!(
            s,
            "ordo bench: {}{format}{size}, {load}; {} validators ({} crashed{}){accounts}, {} cores",
            self.workload,
            self.validators,
            self.faults,
            self.fault_at_s
                .map(|t| format!(" at {t:.0} s"))
                .unwrap_or_else(|| if self.faults > 0 {
                    " from the start".into()
                } else {
                    String::new()
                }),
            self.cores
        );
        let _ =
            writeln!(
            s,
            "{} {} before the clock started ({:.1} s); measured {:.1} s after a {:.1} s warm-up{}",
            if self.ordering_only { "built" } else { "signed" },
            n(self.signed),
            self.signing_s,
            self.measured_s,
            self.warmup_s,
            if self.interrupted { " (INTERRUPTED)" } else { "" }
        );
        let _ = writeln!(s);
        let row = |s: &mut String, name: &str, v: u64, extra: String| {
            let _ = writeln!(s, "  {name:<10} {:>12}  {extra}", n(v));
        };
        row(
            &mut s,
            "offered",
            self.offered,
            match self.offered_tps {
                Some(r) if self.offered > self.sent => format!(
                    "({} tx/s; {} not sent by the end)",
                    n(r.round() as u64),
                    n(self.offered - self.sent)
                ),
                Some(r) => format!("({} tx/s)", n(r.round() as u64)),
                None => String::new(),
            },
        );
        row(&mut s, "sent", self.sent, String::new());
        row(&mut s, "committed", self.committed, String::new());
        let reasons: Vec<String> = self
            .rejected_by_reason
            .iter()
            .map(|(k, v)| format!("{k} {}", n(*v)))
            .collect();
        row(&mut s, "rejected", self.rejected, reasons.join(", "));
        row(&mut s, "expired", self.expired, String::new());
        row(
            &mut s,
            "in flight",
            self.in_flight,
            format!(
                "(at the end; {} of them answered as accepted, the rest unanswered)",
                n(self.in_flight_admitted)
            ),
        );
        let _ = writeln!(
            s,
            "  identity   sent = committed + rejected + expired + in flight: {} = {} + {} + {} + {}: {}",
            n(self.sent),
            n(self.committed),
            n(self.rejected),
            n(self.expired),
            n(self.in_flight),
            if self.identity_holds { "holds" } else { "DOES NOT HOLD" }
        );
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "  committed TPS  {:.0}  ({} committed after warm-up / {:.1} s)",
            self.committed_tps,
            n(self.committed_in_window),
            self.measured_s
        );
        let l = &self.latency_ms;
        let _ = writeln!(
            s,
            "  latency        p50 {:.0} ms  p90 {:.0} ms  p99 {:.0} ms  max {:.0} ms  (submission to execution, {} samples)",
            l.p50,
            l.p90,
            l.p99,
            l.max,
            n(l.samples)
        );
        let opt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.0}/s"));
        let optc = |v: Option<u64>| v.map_or("n/a".to_string(), n);
        let _ = writeln!(
            s,
            "  stages         ordered {}, executed {} (mean per validator); view-change timeouts {}, re-executions {} (all validators)",
            opt(self.stages.ordered_tps),
            opt(self.stages.executed_tps),
            optc(self.stages.view_change_timeouts),
            optc(self.stages.reexecutions)
        );
        if self.stages.latency_ms.iter().any(|(_, m)| m.is_some()) {
            let parts: Vec<String> = self
                .stages
                .latency_ms
                .iter()
                .map(|(name, m)| match m {
                    Some(m) => format!("{name} {m:.0} ms"),
                    None => format!("{name} n/a"),
                })
                .collect();
            let _ = writeln!(
                s,
                "  by stage       {} (means, validators' view; the client's mean: {:.0} ms)",
                parts.join(", "),
                self.latency_ms.mean
            );
        }
        let v = &self.verification;
        let checked = v.validators.len();
        let clean = v
            .validators
            .iter()
            .filter(|c| c.error.is_none() && c.missing == 0 && c.extra == 0)
            .count();
        let _ = write!(
            s,
            "  nothing lost   {}: committed transactions found on {clean} of {checked} live validators (heights {} to {})",
            if v.nothing_lost { "yes" } else { "NO" },
            v.from_height,
            v.to_height
        );
        let unchecked = v.validators.iter().map(|c| c.pruned).max().unwrap_or(0);
        if unchecked > 0 {
            let _ = write!(
                s,
                "; up to {unchecked} committed in heights validators have pruned since (storage.retain_blocks) were not checked there"
            );
        }
        for c in v
            .validators
            .iter()
            .filter(|c| c.missing + c.extra > 0 || c.error.is_some())
        {
            let _ = write!(
                s,
                "; validator {} misses {} and has {} extra{}",
                c.validator,
                c.missing,
                c.extra,
                c.error
                    .as_ref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            );
        }
        let _ = writeln!(s);
        match (v.roots_agree, v.common_height) {
            (Some(true), Some(h)) => {
                let _ = writeln!(s, "  state roots    agree at height {h}");
            }
            (Some(false), Some(h)) => {
                let _ = writeln!(
                    s,
                    "  state roots    DIFFER at height {h}: {:?}",
                    v.state_roots
                );
            }
            _ => {}
        }
        if let Some(adv) = self.nonces_advanced {
            let distinct = self.committed.saturating_sub(self.anomalies);
            let _ = writeln!(
                s,
                "  nonces         advanced by {} over all accounts ({} of the committed did not execute: bad nonce, expired or unpaid)",
                n(adv),
                n(distinct.saturating_sub(adv))
            );
        }
        for note in &self.notes {
            let _ = writeln!(s, "  note: {note}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(n(0), "0");
        assert_eq!(n(999), "999");
        assert_eq!(n(1000), "1,000");
        assert_eq!(n(1234567), "1,234,567");
    }

    #[test]
    fn latency_is_read_in_milliseconds() {
        let mut h = super::super::shared::histogram();
        for us in [1_000, 2_000, 3_000, 100_000] {
            h.record(us).unwrap();
        }
        let l = Latency::from_histogram(&h);
        assert!((l.p50 - 2.0).abs() < 0.01, "{l:?}");
        assert!((l.max - 100.0).abs() < 0.1, "{l:?}");
        assert_eq!(l.samples, 4);
    }
}

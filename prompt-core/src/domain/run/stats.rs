//! Aggregates of runs: counts, error rate, latency percentiles, tokens and cost.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::*;

/// Aggregates over a set of runs.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStats {
    /// The UTC start of the row's time bucket (see [`StatsQuery::bucket`]), `None`
    /// when the query is not bucketed.
    #[serde(default)]
    pub bucket: Option<DateTime<Utc>>,
    /// The group's key (version number, label or model), `None` for the total or
    /// for runs without that field.
    pub group: Option<String>,
    /// Runs.
    pub count: u64,
    /// Failed runs.
    pub failed: u64,
    /// `failed / count`, 0 when there are none.
    pub error_rate: f64,
    /// Median latency (linear interpolation between ranks), ms.
    pub latency_p50_ms: Option<f64>,
    /// 95th percentile latency, ms.
    pub latency_p95_ms: Option<f64>,
    /// 99th percentile latency, ms.
    pub latency_p99_ms: Option<f64>,
    /// Sum of input tokens.
    pub input_tokens: u64,
    /// Sum of output tokens.
    pub output_tokens: u64,
    /// Sum of known costs.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub cost_usd: Decimal,
}

/// Percentile `p` (0–1) of sorted values with linear interpolation between closest
/// ranks — what Postgres' `percentile_cont` computes, so every backend agrees.
pub fn percentile_cont(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = p * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let frac = rank - lo as f64;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

/// Accumulates [`RunStats`] from runs, for backends that aggregate in Rust.
#[derive(Debug, Default, Clone)]
pub struct StatsAccumulator {
    count: u64,
    failed: u64,
    latencies: Vec<f64>,
    input_tokens: u64,
    output_tokens: u64,
    cost: Decimal,
}

impl StatsAccumulator {
    /// Add one run's figures.
    pub fn add(
        &mut self,
        status: RunStatus,
        latency_ms: Option<u64>,
        input_tokens: Option<u64>,
        output_tokens: Option<u64>,
        cost: Option<Decimal>,
    ) {
        self.count += 1;
        if status == RunStatus::Failed {
            self.failed += 1;
        }
        if let Some(l) = latency_ms {
            self.latencies.push(l as f64);
        }
        self.input_tokens = self.input_tokens.saturating_add(input_tokens.unwrap_or(0));
        self.output_tokens = self
            .output_tokens
            .saturating_add(output_tokens.unwrap_or(0));
        if let Some(c) = cost {
            self.cost = self.cost.saturating_add(c);
        }
    }

    /// Add a run.
    pub fn add_run(&mut self, run: &Run) {
        self.add(
            run.status,
            run.latency_ms,
            run.input_tokens,
            run.output_tokens,
            run.cost_usd,
        );
    }

    /// The figures of the time bucket starting at `bucket` (`None`: not bucketed) and
    /// group `group`.
    pub fn finish(mut self, bucket: Option<DateTime<Utc>>, group: Option<String>) -> RunStats {
        self.latencies.sort_by(f64::total_cmp);
        let l = &self.latencies;
        RunStats {
            bucket,
            group,
            count: self.count,
            failed: self.failed,
            error_rate: if self.count == 0 {
                0.0
            } else {
                self.failed as f64 / self.count as f64
            },
            latency_p50_ms: percentile_cont(l, 0.5),
            latency_p95_ms: percentile_cont(l, 0.95),
            latency_p99_ms: percentile_cont(l, 0.99),
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            cost_usd: self.cost.normalize(),
        }
    }
}

/// Accumulators of a statistics query keyed by (bucket start, group), for backends that
/// aggregate in Rust.
pub type StatsGroups =
    std::collections::BTreeMap<(Option<DateTime<Utc>>, Option<String>), StatsAccumulator>;

/// The answer of `query` from its accumulators, ordered by bucket then group: an
/// unbucketed, ungrouped query over no runs still answers one (empty) total row.
pub fn stats_rows(mut groups: StatsGroups, query: &StatsQuery) -> Vec<RunStats> {
    if groups.is_empty() && query.group_by.is_none() && query.bucket.is_none() {
        groups.insert((None, None), StatsAccumulator::default());
    }
    groups
        .into_iter()
        .map(|((b, g), acc)| acc.finish(b, g))
        .collect()
}

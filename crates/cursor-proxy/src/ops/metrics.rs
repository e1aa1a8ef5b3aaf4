//! Prometheus metrics, served as text at `GET /metrics`.
//!
//! Every label value is bounded: routes and categories are fixed sets, models are the first
//! [`MAX_MODEL_LABELS`] distinct names seen (then `other`), limits are the policy names. No key,
//! account secret or conversation id is ever a label.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use prometheus::{
    Encoder as _, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::engine::Engine;
use crate::engine::pool::AccountHealth;

/// Distinct model label values before the rest are counted as `other`.
pub const MAX_MODEL_LABELS: usize = 64;

/// Latency buckets in seconds, from 10 ms to 5 min.
const BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// The proxy's metrics (one registry per proxy, so several proxies in a process stay apart).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    first_token: HistogramVec,
    tokens: IntCounterVec,
    active_streams: IntGauge,
    parked: IntGauge,
    accounts: IntGaugeVec,
    attempts: IntCounterVec,
    failovers: IntCounter,
    refusals: IntCounterVec,
    reloads: IntCounterVec,
    draining: IntGauge,
    models: Mutex<HashSet<String>>,
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| unreachable(&e))
}

fn histogram(name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    HistogramVec::new(
        HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()),
        labels,
    )
    .unwrap_or_else(|e| unreachable(&e))
}

fn gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::new(name, help).unwrap_or_else(|e| unreachable(&e))
}

/// The metric definitions above are constants; an error building one is a bug in this file.
fn unreachable(e: &prometheus::Error) -> ! {
    panic!("invalid metric definition: {e}")
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let m = Self {
            registry: Registry::new(),
            requests: counter(
                "cursor_proxy_requests_total",
                "Requests answered, by route, model, HTTP status and failure category.",
                &["route", "model", "status", "category"],
            ),
            duration: histogram(
                "cursor_proxy_request_duration_seconds",
                "Time from request to the end of the response.",
                &["route"],
            ),
            first_token: histogram(
                "cursor_proxy_time_to_first_token_seconds",
                "Time from request to the first answer event of a streamed response.",
                &["route"],
            ),
            tokens: counter(
                "cursor_proxy_tokens_total",
                "Tokens reported by Cursor, by kind.",
                &["kind"],
            ),
            active_streams: gauge(
                "cursor_proxy_active_streams",
                "Turns running now (streamed or not).",
            ),
            parked: gauge(
                "cursor_proxy_parked_tool_turns",
                "Upstream turns held open while callers run tools.",
            ),
            accounts: IntGaugeVec::new(
                Opts::new("cursor_proxy_accounts", "Accounts by state."),
                &["state"],
            )
            .unwrap_or_else(|e| unreachable(&e)),
            attempts: counter(
                "cursor_proxy_upstream_attempts_total",
                "Upstream attempts by outcome (failures include the ones failed over).",
                &["outcome"],
            ),
            failovers: IntCounter::new(
                "cursor_proxy_upstream_failovers_total",
                "Failed upstream attempts after which the turn moved to another account.",
            )
            .unwrap_or_else(|e| unreachable(&e)),
            refusals: counter(
                "cursor_proxy_limit_refusals_total",
                "Requests refused by a caller key's policy, by limit.",
                &["limit"],
            ),
            reloads: counter(
                "cursor_proxy_config_reloads_total",
                "Configuration reloads by result.",
                &["result"],
            ),
            draining: gauge(
                "cursor_proxy_draining",
                "1 while shutting down (new requests get 503).",
            ),
            models: Mutex::new(HashSet::new()),
        };
        m.register_all();
        m
    }

    fn register_all(&self) {
        let all: [Box<dyn prometheus::core::Collector>; 12] = [
            Box::new(self.requests.clone()),
            Box::new(self.duration.clone()),
            Box::new(self.first_token.clone()),
            Box::new(self.tokens.clone()),
            Box::new(self.active_streams.clone()),
            Box::new(self.parked.clone()),
            Box::new(self.accounts.clone()),
            Box::new(self.attempts.clone()),
            Box::new(self.failovers.clone()),
            Box::new(self.refusals.clone()),
            Box::new(self.reloads.clone()),
            Box::new(self.draining.clone()),
        ];
        for c in all {
            self.registry
                .register(c)
                .unwrap_or_else(|e| unreachable(&e));
        }
    }

    /// The model as a label value: known models by name, the rest `other`.
    fn model_label(&self, model: &str) -> String {
        let mut seen = self.models.lock().unwrap_or_else(|e| e.into_inner());
        let sane = !model.is_empty()
            && model.len() <= 64
            && model
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._:/[]=,".contains(c));
        if sane && (seen.contains(model) || seen.len() < MAX_MODEL_LABELS) {
            seen.insert(model.to_owned());
            model.to_owned()
        } else {
            "other".to_owned()
        }
    }

    /// One answered request.
    pub fn request(&self, route: &'static str, model: Option<&str>, status: u16, category: &str) {
        let model = model.map_or_else(|| "none".to_owned(), |m| self.model_label(m));
        self.requests
            .with_label_values(&[route, model.as_str(), status.to_string().as_str(), category])
            .inc();
    }

    /// A response finished after `elapsed`.
    pub fn duration(&self, route: &'static str, elapsed: Duration) {
        self.duration
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }

    /// A streamed response's first event came after `elapsed`.
    pub fn first_token(&self, route: &'static str, elapsed: Duration) {
        self.first_token
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }

    /// Tokens of a finished turn.
    pub fn tokens(&self, usage: &cursor_connect::Usage) {
        for (kind, n) in [
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("cache_read", usage.cache_read_tokens),
            ("cache_write", usage.cache_write_tokens),
            ("reasoning", usage.reasoning_tokens),
        ] {
            self.tokens.with_label_values(&[kind]).inc_by(n);
        }
    }

    /// The gauge of running turns.
    pub fn active_streams(&self) -> &IntGauge {
        &self.active_streams
    }

    /// A policy refusal.
    pub fn refusal(&self, limit: &'static str) {
        self.refusals.with_label_values(&[limit]).inc();
    }

    /// A reload, successful or not.
    pub fn reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "refused" };
        self.reloads.with_label_values(&[result]).inc();
    }

    /// Adds the state store's latency histogram (see [`crate::store::timed`]).
    pub fn register_store(&self, latency: HistogramVec) {
        self.registry
            .register(Box::new(latency))
            .unwrap_or_else(|e| unreachable(&e));
    }

    /// Marks the proxy as draining.
    pub fn set_draining(&self) {
        self.draining.set(1);
    }

    /// The text exposition, with the gauges that are read from the engine brought up to date.
    pub fn render(&self, engine: &Engine) -> String {
        self.sample(engine);
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// Reads account states, parked turns and attempt counts from the engine.
    fn sample(&self, engine: &Engine) {
        let pool = engine.pool();
        let status = pool.status(pool.now());
        let (mut ok, mut failed) = (0, 0);
        for state in [
            AccountHealth::Healthy,
            AccountHealth::Cooldown,
            AccountHealth::Refresh,
            AccountHealth::Disabled,
        ] {
            let n = status.iter().filter(|a| a.state == state).count();
            self.accounts
                .with_label_values(&[health_name(state)])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        for a in &status {
            ok += a.successes;
            failed += a.failures;
        }
        // The pool keeps the totals; the counters follow them (they only ever grow).
        for (outcome, total) in [("success", ok), ("failure", failed)] {
            let c: IntCounter = self.attempts.with_label_values(&[outcome]);
            c.inc_by(total.saturating_sub(c.get()));
        }
        self.failovers
            .inc_by(engine.failovers().saturating_sub(self.failovers.get()));
        self.parked
            .set(i64::try_from(engine.parked_count()).unwrap_or(i64::MAX));
    }
}

/// The state's name as the admin API and the metrics spell it.
pub fn health_name(h: AccountHealth) -> &'static str {
    match h {
        AccountHealth::Healthy => "healthy",
        AccountHealth::Cooldown => "cooldown",
        AccountHealth::Refresh => "refresh",
        AccountHealth::Disabled => "disabled",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_labels_are_bounded() {
        let m = Metrics::new();
        for i in 0..200 {
            m.request("chat", Some(&format!("model-{i}")), 200, "none");
        }
        m.request("chat", Some("bad model\n"), 200, "none");
        let families = m.registry.gather();
        let req = families
            .iter()
            .find(|f| f.name() == "cursor_proxy_requests_total")
            .unwrap();
        assert_eq!(req.get_metric().len(), MAX_MODEL_LABELS + 1);
    }
}

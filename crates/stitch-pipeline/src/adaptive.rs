//! Adaptive sampling.
//!
//! * [`ErrorRateController`] (tail side): per service, compares the error rate of a short
//!   sliding window with the service's own recent baseline and raises the share of its
//!   normal traffic that is kept (e.g. 5% → 50% → 100%) when errors spike, lowering it again
//!   step by step once things have been calm for a while. Every change is an
//!   [`AdaptiveEvent`] with a reason, for the caller to log and expose. The
//!   [`crate::tail::TailSampler`] drives it when `adaptive.enabled` is set.
//! * [`jaeger`] (head side): per-service, per-operation probabilities served over Jaeger's
//!   remote-sampling protocol, computed to reach a target of sampled traces per second.

pub mod jaeger;

use std::collections::HashMap;

use serde::Serialize;

use crate::config::AdaptiveConfig;

/// How far a service's sampling is raised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    #[default]
    Normal,
    Elevated,
    Critical,
}

/// One change of a service's sampling, with why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AdaptiveEvent {
    pub service: String,
    pub at_unix_nanos: u64,
    pub from_level: Level,
    pub to_level: Level,
    /// Share of the service's normal traffic kept before and after, in percent. At
    /// `Normal` this is the configured base percentage (the top-level probabilistic policy).
    pub from_percentage: f64,
    pub to_percentage: f64,
    /// Error rate (fraction) over the short window, and of the baseline before it.
    pub error_rate: f64,
    pub baseline_error_rate: f64,
    /// Traces touching the service in the short window.
    pub requests: u64,
    pub reason: String,
}

/// The current state of one service, for the API.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServiceState {
    pub service: String,
    pub level: Level,
    pub percentage: f64,
    pub error_rate: f64,
    pub baseline_error_rate: f64,
    pub requests: u64,
    pub since_unix_nanos: u64,
}

#[derive(Clone, Copy, Default)]
struct Bucket {
    epoch: u64,
    total: u64,
    errors: u64,
}

struct Service {
    /// Ring of buckets indexed by `epoch % len`.
    buckets: Vec<Bucket>,
    level: Level,
    since: u64,
    calm_since: Option<u64>,
    last_seen_epoch: u64,
}

struct Rates {
    rate: f64,
    requests: u64,
    baseline: f64,
    baseline_requests: u64,
}

/// Per-service error-rate tracking with hysteresis; see [`AdaptiveConfig`] for the rules.
pub struct ErrorRateController {
    config: AdaptiveConfig,
    bucket_nanos: u64,
    short_buckets: u64,
    baseline_buckets: u64,
    base_percentage: f64,
    services: HashMap<String, Service>,
    last_evaluated_epoch: Option<u64>,
    /// Observations dropped because `max_services` was reached.
    pub untracked_observations: u64,
}

impl ErrorRateController {
    /// `base_percentage` is the share of normal traffic kept at `Normal` (reported in
    /// events; the tail sampler's probabilistic policy applies it).
    pub fn new(config: &AdaptiveConfig, base_percentage: f64) -> ErrorRateController {
        let bucket_nanos = (config.bucket.as_nanos() as u64).max(1);
        let short_buckets = (config.window.as_nanos() as u64 / bucket_nanos).max(1);
        let baseline_buckets = (config.baseline_window.as_nanos() as u64 / bucket_nanos).max(1);
        ErrorRateController {
            config: config.clone(),
            bucket_nanos,
            short_buckets,
            baseline_buckets,
            base_percentage,
            services: HashMap::new(),
            last_evaluated_epoch: None,
            untracked_observations: 0,
        }
    }

    fn ring_len(&self) -> usize {
        (self.short_buckets + self.baseline_buckets) as usize
    }

    /// Counts one trace that touched `service`, and whether it had an error there.
    pub fn observe(&mut self, service: &str, error: bool, now_nanos: u64) {
        let epoch = now_nanos / self.bucket_nanos;
        let len = self.ring_len();
        let svc = match self.services.get_mut(service) {
            Some(s) => s,
            None => {
                if self.services.len() >= self.config.max_services {
                    self.untracked_observations += 1;
                    return;
                }
                self.services
                    .entry(service.to_owned())
                    .or_insert_with(|| Service {
                        buckets: vec![Bucket::default(); len],
                        level: Level::Normal,
                        since: now_nanos,
                        calm_since: None,
                        last_seen_epoch: epoch,
                    })
            }
        };
        let b = &mut svc.buckets[(epoch % len as u64) as usize];
        if b.epoch != epoch {
            *b = Bucket {
                epoch,
                total: 0,
                errors: 0,
            };
        }
        b.total += 1;
        b.errors += error as u64;
        svc.last_seen_epoch = svc.last_seen_epoch.max(epoch);
    }

    fn rates(&self, svc: &Service, epoch: u64) -> Rates {
        let (mut total, mut errors, mut btotal, mut berrors) = (0, 0, 0, 0);
        for b in &svc.buckets {
            if b.epoch > epoch || b.total == 0 {
                continue;
            }
            let age = epoch - b.epoch;
            if age < self.short_buckets {
                total += b.total;
                errors += b.errors;
            } else if age < self.short_buckets + self.baseline_buckets {
                btotal += b.total;
                berrors += b.errors;
            }
        }
        let frac = |e: u64, t: u64| if t == 0 { 0.0 } else { e as f64 / t as f64 };
        Rates {
            rate: frac(errors, total),
            requests: total,
            baseline: frac(berrors, btotal),
            baseline_requests: btotal,
        }
    }

    fn percentage(&self, level: Level) -> f64 {
        match level {
            Level::Normal => self.base_percentage,
            Level::Elevated => self.config.elevated_percentage,
            Level::Critical => self.config.critical_percentage,
        }
    }

    /// The raised percentage for a service, or `None` at `Normal`.
    pub fn boost_percentage(&self, service: &str) -> Option<f64> {
        match self.services.get(service)?.level {
            Level::Normal => None,
            level => Some(self.percentage(level)),
        }
    }

    /// Re-evaluates every service (at most once per bucket) and returns the changes.
    pub fn evaluate(&mut self, now_nanos: u64) -> Vec<AdaptiveEvent> {
        let epoch = now_nanos / self.bucket_nanos;
        if self.last_evaluated_epoch == Some(epoch) {
            return Vec::new();
        }
        self.last_evaluated_epoch = Some(epoch);
        let c = self.config.clone();
        let mut events = Vec::new();
        let mut stale = Vec::new();
        let names: Vec<String> = self.services.keys().cloned().collect();
        for name in names {
            let r = self.rates(&self.services[&name], epoch);
            let raise_at = (c.raise_factor * r.baseline).max(c.min_error_rate);
            let critical_at = (c.critical_factor * r.baseline)
                .max(c.min_error_rate * c.critical_factor / c.raise_factor);
            let calm_below = raise_at * c.release_factor / c.raise_factor;
            let enough = r.requests >= c.min_requests;
            // A service needs a baseline before it can be called unusual.
            let comparable = enough && r.baseline_requests >= c.min_requests;
            let target = if comparable && r.rate >= critical_at {
                Level::Critical
            } else if comparable && r.rate >= raise_at {
                Level::Elevated
            } else {
                Level::Normal
            };
            let calm = !enough || r.rate < calm_below;
            let svc = self.services.get_mut(&name).expect("listed");
            let from = svc.level;
            let mut to = from;
            let mut reason = String::new();
            let pct = |x: f64| x * 100.0;
            let baseline_text = if r.baseline_requests == 0 {
                "no baseline yet".to_owned()
            } else {
                format!(
                    "baseline {:.2}% over the previous {}",
                    pct(r.baseline),
                    crate::units::format_duration(c.baseline_window)
                )
            };
            if target > from {
                to = target;
                svc.calm_since = None;
                reason = format!(
                    "error rate {:.2}% over the last {} ({} traces) reached the {} threshold {:.2}% ({}× {}, at least {:.2}%)",
                    pct(r.rate),
                    crate::units::format_duration(c.window),
                    r.requests,
                    if target == Level::Critical {
                        "critical"
                    } else {
                        "raise"
                    },
                    pct(if target == Level::Critical {
                        critical_at
                    } else {
                        raise_at
                    }),
                    if target == Level::Critical {
                        c.critical_factor
                    } else {
                        c.raise_factor
                    },
                    baseline_text,
                    pct(c.min_error_rate),
                );
            } else if from > Level::Normal {
                if calm {
                    let since = *svc.calm_since.get_or_insert(now_nanos);
                    if now_nanos.saturating_sub(since) >= c.cool_down.as_nanos() as u64 {
                        to = if from == Level::Critical && target < Level::Critical {
                            Level::Elevated
                        } else {
                            Level::Normal
                        };
                        svc.calm_since = Some(now_nanos);
                        reason = if enough {
                            format!(
                                "error rate {:.2}% over the last {} stayed below {:.2}% for {} ({})",
                                pct(r.rate),
                                crate::units::format_duration(c.window),
                                pct(calm_below),
                                crate::units::format_duration(c.cool_down),
                                baseline_text
                            )
                        } else {
                            format!(
                                "fewer than {} traces in the last {} for {}",
                                c.min_requests,
                                crate::units::format_duration(c.window),
                                crate::units::format_duration(c.cool_down)
                            )
                        };
                    }
                } else {
                    svc.calm_since = None;
                }
            }
            if to != from {
                svc.level = to;
                svc.since = now_nanos;
                events.push(AdaptiveEvent {
                    service: name.clone(),
                    at_unix_nanos: now_nanos,
                    from_level: from,
                    to_level: to,
                    from_percentage: 0.0,
                    to_percentage: 0.0,
                    error_rate: r.rate,
                    baseline_error_rate: r.baseline,
                    requests: r.requests,
                    reason,
                });
            }
            let svc = &self.services[&name];
            if svc.level == Level::Normal
                && epoch.saturating_sub(svc.last_seen_epoch)
                    > self.short_buckets + self.baseline_buckets
            {
                stale.push(name);
            }
        }
        for e in &mut events {
            e.from_percentage = self.percentage(e.from_level);
            e.to_percentage = self.percentage(e.to_level);
        }
        for name in stale {
            self.services.remove(&name);
        }
        events.sort_by(|a, b| a.service.cmp(&b.service));
        events
    }

    /// Every tracked service's state, sorted by name.
    pub fn snapshot(&self, now_nanos: u64) -> Vec<ServiceState> {
        let epoch = now_nanos / self.bucket_nanos;
        let mut out: Vec<ServiceState> = self
            .services
            .iter()
            .map(|(name, svc)| {
                let r = self.rates(svc, epoch);
                ServiceState {
                    service: name.clone(),
                    level: svc.level,
                    percentage: self.percentage(svc.level),
                    error_rate: r.rate,
                    baseline_error_rate: r.baseline,
                    requests: r.requests,
                    since_unix_nanos: svc.since,
                }
            })
            .collect();
        out.sort_by(|a, b| a.service.cmp(&b.service));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SEC: u64 = 1_000_000_000;

    /// Feeds `per_second` traces per second for `seconds`, `errors_per_second` of them failing.
    fn feed(
        c: &mut ErrorRateController,
        start: u64,
        seconds: u64,
        per_second: u64,
        errors_per_second: u64,
        events: &mut Vec<AdaptiveEvent>,
    ) -> u64 {
        for s in 0..seconds {
            let now = start + s * SEC;
            for i in 0..per_second {
                c.observe(
                    "checkout",
                    i < errors_per_second,
                    now + i * (SEC / per_second),
                );
            }
            events.extend(c.evaluate(now + SEC - 1));
        }
        start + seconds * SEC
    }

    #[test]
    fn an_error_spike_raises_the_rate_and_calm_lowers_it_with_events() {
        let config = AdaptiveConfig {
            enabled: true,
            ..AdaptiveConfig::default()
        };
        let mut c = ErrorRateController::new(&config, 5.0);
        let mut events = Vec::new();
        // 30 minutes of 20 traces/s with 0.5% errors (1 in 200): the baseline.
        let mut now = 0;
        for _ in 0..(30 * 60 / 10) {
            for s in 0..10u64 {
                for i in 0..20u64 {
                    let n = (now / SEC + s) * 20 + i;
                    c.observe("checkout", n.is_multiple_of(200), now + s * SEC + i);
                }
            }
            now += 10 * SEC;
            events.extend(c.evaluate(now - 1));
        }
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(c.boost_percentage("checkout"), None);

        // Errors jump to 3/20 = 15%: far above 2× and 5× the 0.5% baseline.
        now = feed(&mut c, now, 30, 20, 3, &mut events);
        assert_eq!(events.len(), 1, "{events:?}");
        let e = &events[0];
        assert_eq!((e.from_level, e.to_level), (Level::Normal, Level::Critical));
        assert_eq!((e.from_percentage, e.to_percentage), (5.0, 100.0));
        assert!(
            e.reason.contains("reached the critical threshold"),
            "{}",
            e.reason
        );
        assert!(
            e.error_rate > 0.025 && e.baseline_error_rate < 0.01,
            "{e:?}"
        );
        assert_eq!(c.boost_percentage("checkout"), Some(100.0));

        // Errors stop: once the spike has left the window and the cool-down has passed, one
        // step down, and after another cool-down, back to normal.
        events.clear();
        now = feed(&mut c, now, 165, 20, 0, &mut events);
        assert!(events.is_empty(), "still cooling down: {events:?}");
        now = feed(&mut c, now, 10, 20, 0, &mut events);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(
            (events[0].from_level, events[0].to_level),
            (Level::Critical, Level::Elevated)
        );
        assert_eq!(events[0].to_percentage, 50.0);
        assert!(
            events[0].reason.contains("stayed below"),
            "{}",
            events[0].reason
        );
        now = feed(&mut c, now, 120, 20, 0, &mut events);
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(
            (events[1].from_level, events[1].to_level),
            (Level::Elevated, Level::Normal)
        );
        assert_eq!(c.boost_percentage("checkout"), None);
        let snap = c.snapshot(now);
        assert_eq!(snap[0].level, Level::Normal);
        assert_eq!(snap[0].percentage, 5.0);
    }

    #[test]
    fn a_moderate_rise_raises_one_level_and_low_volume_never_triggers() {
        let config = AdaptiveConfig {
            enabled: true,
            bucket: Duration::from_secs(10),
            window: Duration::from_secs(60),
            baseline_window: Duration::from_secs(600),
            min_requests: 100,
            ..AdaptiveConfig::default()
        };
        let mut c = ErrorRateController::new(&config, 5.0);
        let mut events = Vec::new();
        // Baseline 2% errors.
        let now = feed(&mut c, 0, 600, 50, 1, &mut events);
        assert!(events.is_empty());
        // 3/50 = 6%: 3× baseline, above raise (2×) but below critical (5×).
        feed(&mut c, now, 60, 50, 3, &mut events);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].to_level, Level::Elevated);

        // A service with a 100% error rate but a trickle of traffic stays normal.
        let mut quiet = ErrorRateController::new(&config, 5.0);
        let mut events = Vec::new();
        for s in 0..600u64 {
            if s % 10 == 0 {
                quiet.observe("cron", true, s * SEC);
            }
            events.extend(quiet.evaluate(s * SEC));
        }
        assert!(events.is_empty());
    }
}

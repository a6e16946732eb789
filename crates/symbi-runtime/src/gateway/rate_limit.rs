//! `rate_limit` conditions (GRAMMAR.md §4.10): at most N actions per period, per agent and
//! action (and per subject when the condition says `/recipient` etc.). Excess calls are
//! denied, not queued. Backed by `governor` (GCRA), one keyed limiter per distinct quota.

use dashmap::DashMap;
use governor::clock::DefaultClock;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::Arc;
use symbi_types::decision::RatePeriod;

type Keyed = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;

/// All rate limits the gateway enforces.
#[derive(Default, Clone)]
pub struct RateLimits {
    limiters: Arc<DashMap<(u32, RatePeriod), Arc<Keyed>>>,
}

impl RateLimits {
    /// Counts one call under `key` against `max` per `period`. Returns `false` when the call
    /// exceeds the limit (deny it). `max == 0` denies everything.
    ///
    /// ```
    /// use symbi_runtime::gateway::rate_limit::RateLimits;
    /// use symbi_types::decision::RatePeriod;
    /// let rl = RateLimits::default();
    /// assert!(rl.check(2, RatePeriod::Minute, "agent/http.get"));
    /// assert!(rl.check(2, RatePeriod::Minute, "agent/http.get"));
    /// assert!(!rl.check(2, RatePeriod::Minute, "agent/http.get"));
    /// assert!(rl.check(2, RatePeriod::Minute, "other/http.get"));
    /// ```
    pub fn check(&self, max: u32, period: RatePeriod, key: &str) -> bool {
        let Some(n) = NonZeroU32::new(max) else {
            return false;
        };
        let limiter = self
            .limiters
            .entry((max, period))
            .or_insert_with(|| {
                // N per period, with a burst of N: the first N calls pass at once, then one
                // more every period/N.
                let quota = Quota::with_period(period.duration() / max)
                    .expect("period/max is non-zero")
                    .allow_burst(n);
                Arc::new(RateLimiter::keyed(quota))
            })
            .clone();
        limiter.check_key(&key.to_string()).is_ok()
    }
}

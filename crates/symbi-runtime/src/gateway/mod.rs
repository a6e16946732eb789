//! The action gateway: the one door every agent action goes through —
//! resolve → decide (policy) → satisfy conditions (approval, rate limit, sanitization, …)
//! → execute in the right place → record (audit).

pub mod approvals;
pub mod rate_limit;
pub mod sanitize;

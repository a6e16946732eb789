//! The decision cache: the Cedar half of a decision, memoized per policy snapshot.
//!
//! # What is cached, and why it can never be stale
//!
//! A decision is the combination (deny overrides) of an agent's DSL rules and Cedar. The DSL
//! side ([`symbi_types::AgentRuleSet`]) is opaque to the engine — it may read clocks, counters
//! or anything else — so it is evaluated on every decision and never cached. The Cedar side
//! is cached: its outcome (deciding forbids, applying permits with their conditions,
//! evaluation errors, or the reason a request does not fit the model) is a pure function of
//!
//! * the policy set — the cache lives *inside* the immutable [`crate::PolicySnapshot`]; a
//!   reload installs a new snapshot with a new, empty cache, so a decision is never served
//!   from another generation's cache;
//! * the request fields the translation reads: the principal (name, id, capabilities, every
//!   attribute), the action category, the subject (kind, name, every attribute) and the
//!   context record's fields (`model::CONTEXT_FIELDS`).
//!
//! Cedar has no clock, no randomness and no I/O: the only inputs of an evaluation are the
//! request, the three entities built from it and the policies. A decision therefore depends
//! on time only if the request carries a time, and then the time is part of the key. This is
//! how "cannot depend on time" is decided: by construction of the inputs, not per request.
//!
//! # The key
//!
//! The key is the full byte string of those inputs (length-prefixed, so two different
//! requests never share a key), not a hash of it: a collision could serve another request's
//! decision, which a security component must not risk. Only one refinement narrows it: a
//! context field that **no policy of the snapshot reads** cannot change the outcome, so it is
//! left out of the key. Which fields are read is found once per snapshot by walking every
//! policy's JSON form ([`ContextUse::of_policies`]): every occurrence of the variable
//! `context` must be the left side of an attribute access or `has` test with a literal name;
//! any other use (`context == {...}`, passing `context` to an operator) counts as reading
//! every field. This is what makes per-execution fields (`execution`, `session`) and the
//! arguments (`args_digest`) cost nothing in the key unless a policy looks at them. A field
//! left out of the key is still coerced on every request, so a malformed value is still
//! denied as before (such requests are never cached).
//!
//! # Bounds
//!
//! The cache holds at most `capacity` outcomes in 32 shards (each behind its own mutex, so
//! two cores rarely contend); a full shard evicts an arbitrary entry.

use crate::model::{CONTEXT_FIELDS, ContextValues, CtxValue};
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use symbi_types::{Condition, PolicyRequest};

const SHARDS: usize = 32;

/// The Cedar half of a decision, ready to be combined with the DSL rules' outcome.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum CedarOutcome {
    /// The request does not fit the model (denied whatever the DSL says).
    Unfit(String),
    /// Evaluated against the snapshot's policies.
    Evaluated {
        /// Reasons of deciding forbids (sorted); non-empty means Deny.
        forbids: Vec<String>,
        /// Reasons of applying permits, sorted by policy id.
        permit_reasons: Vec<String>,
        /// Conditions of applying permits, in permit order, without duplicates.
        permit_conditions: Vec<Condition>,
        /// Permits that could not be evaluated (reported with the default deny).
        errored_permits: Vec<String>,
    },
}

/// Which context fields the policies of a snapshot read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ContextUse {
    /// Bit i set: `CONTEXT_FIELDS[i]` is read by some policy.
    mask: u32,
}

impl ContextUse {
    /// Every field counts as read.
    pub(crate) const ALL: ContextUse = ContextUse {
        mask: (1 << CONTEXT_FIELDS.len()) - 1,
    };

    /// Whether field `i` of [`CONTEXT_FIELDS`] is read.
    pub(crate) fn reads(self, i: usize) -> bool {
        self.mask & (1 << i) != 0
    }

    /// The fields read by these policies (conservative: see the module docs).
    pub(crate) fn of_policies<'a>(
        policies: impl IntoIterator<Item = &'a cedar_policy::Policy>,
    ) -> ContextUse {
        let mut u = ContextUse { mask: 0 };
        for p in policies {
            match p.to_json() {
                Ok(v) => walk(&v, &mut u),
                Err(_) => return Self::ALL,
            }
            if u == Self::ALL {
                break;
            }
        }
        u
    }

    fn mark(&mut self, attr: &str) {
        match CONTEXT_FIELDS.iter().position(|(f, _)| *f == attr) {
            Some(i) => self.mask |= 1 << i,
            // Not a declared field: strict validation rejects such policies, but stay safe.
            None => *self = Self::ALL,
        }
    }
}

fn is_context_var(v: &Value) -> bool {
    matches!(v, Value::Object(o) if o.len() == 1 && o.get("Var").and_then(Value::as_str) == Some("context"))
}

fn walk(v: &Value, u: &mut ContextUse) {
    match v {
        Value::Object(o) => {
            if is_context_var(v) {
                // `context` used as a whole.
                *u = ContextUse::ALL;
                return;
            }
            for (k, child) in o {
                if (k == "." || k == "has")
                    && let Some(inner) = child.as_object()
                    && let Some(left) = inner.get("left")
                    && is_context_var(left)
                {
                    match inner.get("attr") {
                        Some(Value::String(a)) => u.mark(a),
                        // `context has a.b.c`: the first name is the context field.
                        Some(Value::Array(path))
                            if path.first().and_then(Value::as_str).is_some() =>
                        {
                            u.mark(path[0].as_str().unwrap_or_default())
                        }
                        _ => *u = ContextUse::ALL,
                    }
                    for (k2, c2) in inner {
                        if k2 != "left" && k2 != "attr" {
                            walk(c2, u);
                        }
                    }
                    continue;
                }
                walk(child, u);
            }
        }
        Value::Array(a) => a.iter().for_each(|c| walk(c, u)),
        _ => {}
    }
}

/// Appends the key of `req` to `out` (see the module docs for what it contains).
pub(crate) fn key(
    req: &PolicyRequest,
    values: &ContextValues,
    uses: ContextUse,
    out: &mut Vec<u8>,
) {
    fn bytes(out: &mut Vec<u8>, b: &[u8]) {
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        out.extend_from_slice(b);
    }
    fn json(out: &mut Vec<u8>, v: &impl serde::Serialize) {
        let start = out.len();
        out.extend_from_slice(&[0; 8]);
        serde_json::to_writer(&mut *out, v).expect("JSON values serialize");
        let len = (out.len() - start - 8) as u64;
        out[start..start + 8].copy_from_slice(&len.to_le_bytes());
    }
    out.push(req.category as u8);
    out.push(req.subject.kind as u8);
    let p = &req.principal;
    bytes(out, p.name.as_bytes());
    match &p.agent_id {
        Some(id) => {
            out.push(1);
            bytes(out, id.to_string().as_bytes());
        }
        None => out.push(0),
    }
    out.extend_from_slice(&(p.capabilities.len() as u64).to_le_bytes());
    for c in &p.capabilities {
        bytes(out, c.as_bytes());
    }
    json(out, &p.attributes);
    bytes(out, req.subject.name.as_bytes());
    json(out, &req.subject.attrs);
    let mut args_done = false;
    for (i, v) in values.0.iter().enumerate() {
        if !uses.reads(i) {
            out.push(0xff);
            continue;
        }
        match v {
            CtxValue::Str(s) => {
                out.push(0);
                bytes(out, s.as_bytes());
            }
            CtxValue::Bool(b) => out.extend_from_slice(&[1, *b as u8]),
            CtxValue::Args => {
                out.push(2);
                if !args_done {
                    // The preimage of args_digest: equal preimages, equal digest and size.
                    json(out, &req.args);
                    json(out, &req.named);
                    args_done = true;
                }
            }
        }
    }
}

/// Hit and miss counts of a snapshot's cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    /// Decisions whose Cedar half came from the cache.
    pub hits: u64,
    /// Decisions whose Cedar half was evaluated (and then stored).
    pub misses: u64,
    /// Outcomes held now.
    pub entries: usize,
    /// Most outcomes held.
    pub capacity: usize,
}

/// A bounded map from request key to Cedar outcome.
pub(crate) struct DecisionCache {
    shards: Vec<Mutex<HashMap<Box<[u8]>, Arc<CedarOutcome>>>>,
    per_shard: usize,
    hasher: RandomState,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl DecisionCache {
    /// A cache of at most `capacity` outcomes (`capacity` ≥ 1).
    pub(crate) fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard,
            hasher: RandomState::new(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: &[u8]) -> &Mutex<HashMap<Box<[u8]>, Arc<CedarOutcome>>> {
        let mut h = self.hasher.build_hasher();
        key.hash(&mut h);
        &self.shards[(h.finish() as usize) % SHARDS]
    }

    /// The outcome for `key`, computing and storing it on a miss.
    pub(crate) fn get_or_insert(
        &self,
        key: &[u8],
        compute: impl FnOnce() -> CedarOutcome,
    ) -> Arc<CedarOutcome> {
        let shard = self.shard(key);
        if let Some(o) = shard.lock().get(key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return o.clone();
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        // Evaluated outside the lock: two threads may compute the same outcome once each.
        let o = Arc::new(compute());
        let mut m = shard.lock();
        if m.len() >= self.per_shard
            && let Some(victim) = m.keys().next().cloned()
        {
            m.remove(&victim);
        }
        m.insert(key.into(), o.clone());
        o
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.shards.iter().map(|s| s.lock().len()).sum(),
            capacity: self.per_shard * SHARDS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn uses(text: &str) -> ContextUse {
        let set = cedar_policy::PolicySet::from_str(text).unwrap();
        ContextUse::of_policies(set.policies())
    }

    fn field(name: &str) -> usize {
        CONTEXT_FIELDS.iter().position(|(f, _)| *f == name).unwrap()
    }

    #[test]
    fn context_use_finds_read_fields() {
        let u = uses("permit(principal, action, resource);");
        assert_eq!(u, ContextUse { mask: 0 });
        let u = uses(
            r#"permit(principal, action, resource) when { context.trigger == "api" && context has session };"#,
        );
        assert!(u.reads(field("trigger")) && u.reads(field("session")));
        assert!(!u.reads(field("execution")) && !u.reads(field("args_digest")));
        let u = uses(
            r#"forbid(principal, action, resource) unless { context["has_human_approval"] };"#,
        );
        assert!(u.reads(field("has_human_approval")));
        assert!(!u.reads(field("trigger")));
    }

    #[test]
    fn whole_context_use_reads_everything() {
        for text in [
            r#"permit(principal, action, resource) when { context == {"trigger": "api"} };"#,
            r#"permit(principal, action, resource) when { [context].contains(context) };"#,
            r#"permit(principal, action, resource) when { {"c": context}.c.trigger == "x" };"#,
        ] {
            assert_eq!(uses(text), ContextUse::ALL, "{text}");
        }
    }

    #[test]
    fn cache_is_bounded() {
        let c = DecisionCache::new(64);
        for i in 0..1000u32 {
            c.get_or_insert(&i.to_le_bytes(), || CedarOutcome::Unfit(i.to_string()));
        }
        let s = c.stats();
        assert!(s.entries <= s.capacity && s.capacity >= 64, "{s:?}");
        assert_eq!(s.misses, 1000);
        // A present key is a hit and returns what was stored for it.
        let k = 999u32.to_le_bytes();
        assert_eq!(
            *c.get_or_insert(&k, || unreachable!()),
            CedarOutcome::Unfit("999".into())
        );
        assert_eq!(c.stats().hits, 1);
    }
}

//! The policy decision point: Cedar plus an agent's DSL rules under deny-overrides, with
//! atomic hot reload.

use crate::cache::{self, CacheStats, CedarOutcome, ContextUse, DecisionCache};
use crate::error::{Diagnostic, PolicyError, Severity};
use crate::events::EventForwarder;
use crate::load::{self, Compiled, PolicyInfo, PolicySource};
use crate::model::{self, Model};
use crate::watch::WatchHandle;
use arc_swap::ArcSwap;
use cedar_policy::{Authorizer, Effect, PolicyId};
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use symbi_types::{
    AgentRuleSet, Condition, Decision, EventDraft, EventSink, PolicyDecisionPoint, PolicyRequest,
    RuleOutcome,
};

/// Default capacity of the decision cache (outcomes per policy snapshot).
pub const DEFAULT_DECISION_CACHE: usize = 65_536;

/// How an engine behaves apart from its policies.
#[derive(Clone)]
pub struct EngineOptions {
    /// `[security] enforce_policies`. When false, decisions are still computed and reported,
    /// but a Deny comes back as Allow with a reason saying what would have been denied.
    /// Construct with [`EngineOptions::enforcing`] for the secure default.
    pub enforce: bool,
    /// Where `policy_reload` events go (the audit log).
    pub sink: Option<Arc<dyn EventSink>>,
    /// Most Cedar outcomes cached per policy snapshot; `0` turns the cache off (every
    /// decision evaluates Cedar). See [`crate::cache`] for why a cached outcome is never
    /// stale. Default [`DEFAULT_DECISION_CACHE`].
    pub decision_cache: usize,
}

impl Default for EngineOptions {
    /// Not enforcing (as `[security] enforce_policies = false`), no sink, default cache.
    fn default() -> Self {
        Self {
            enforce: false,
            sink: None,
            decision_cache: DEFAULT_DECISION_CACHE,
        }
    }
}

impl EngineOptions {
    /// Enforcing, without an event sink.
    pub fn enforcing() -> Self {
        Self {
            enforce: true,
            ..Self::default()
        }
    }

    /// Sets the decision cache capacity; `0` turns it off (builder style).
    pub fn with_decision_cache(mut self, capacity: usize) -> Self {
        self.decision_cache = capacity;
        self
    }

    /// Sets the event sink (builder style).
    pub fn with_sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.sink = Some(sink);
        self
    }
}

impl std::fmt::Debug for EngineOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineOptions")
            .field("enforce", &self.enforce)
            .field("sink", &self.sink.is_some())
            .field("decision_cache", &self.decision_cache)
            .finish()
    }
}

/// What started a reload (recorded in the `policy_reload` event).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReloadCause {
    /// The engine was created.
    Startup,
    /// A file in the watched directory changed.
    Watch,
    /// [`PolicyEngine::reload`] was called (e.g. an operator's command).
    Manual,
    /// [`PolicyEngine::replace_policies`] or [`PolicyEngine::write_policy_file`] (API update).
    Api,
}

/// The outcome of an accepted reload.
#[derive(Clone, Debug, Serialize)]
pub struct ReloadReport {
    /// Generation of the active set (unchanged when `changed` is false).
    pub generation: u64,
    /// Whether the active set changed (a reload of identical files changes nothing).
    pub changed: bool,
    /// Files of the active set.
    pub files: Vec<String>,
    /// Number of policies in the active set.
    pub policies: usize,
    /// Warnings (accepted, but worth a look).
    pub warnings: Vec<Diagnostic>,
}

/// One immutable, validated policy set. Decisions are always made against exactly one
/// snapshot; a reload swaps in a new one atomically.
pub struct PolicySnapshot {
    generation: u64,
    compiled: Compiled,
    /// Which context fields the policies read (narrows cache keys).
    context_use: ContextUse,
    /// Cedar outcomes of this set only; dropped with it on reload.
    cache: Option<DecisionCache>,
}

impl PolicySnapshot {
    /// Increases by one with every accepted change.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Source names of the files in this set.
    pub fn files(&self) -> &[String] {
        &self.compiled.files
    }

    /// Number of policies.
    pub fn policy_count(&self) -> usize {
        self.compiled.info.len()
    }

    /// SHA-256 over the names and texts of the files.
    pub fn digest(&self) -> &str {
        &self.compiled.digest
    }

    fn new(generation: u64, compiled: Compiled, cache_capacity: usize) -> Self {
        let context_use = ContextUse::of_policies(compiled.all.policies());
        let cache = (cache_capacity > 0).then(|| DecisionCache::new(cache_capacity));
        Self {
            generation,
            compiled,
            context_use,
            cache,
        }
    }

    /// Hit/miss counts of this set's decision cache (`None` when the cache is off).
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.cache.as_ref().map(DecisionCache::stats)
    }

    /// Warnings found when the set was loaded.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.compiled.warnings
    }

    /// Facts about every policy, in no particular order.
    pub fn policies(&self) -> impl Iterator<Item = &PolicyInfo> {
        self.compiled.info.values()
    }

    /// The whole Cedar policy set (with the ids decisions name).
    pub fn policy_set(&self) -> &cedar_policy::PolicySet {
        &self.compiled.all
    }

    /// Facts about one policy by id.
    pub fn policy(&self, id: &str) -> Option<&PolicyInfo> {
        self.compiled.info.get(&PolicyId::new(id))
    }

    /// The decision of this set for one request, before enforcement mode is applied.
    pub fn evaluate(
        &self,
        request: &PolicyRequest,
        agent_rules: Option<&dyn AgentRuleSet>,
    ) -> Decision {
        let m = model::model().expect("a snapshot exists only if the model loaded");
        evaluate(m, self, request, agent_rules)
    }
}

/// The policy engine. Cheap to share (`Arc<PolicyEngine>`); every method takes `&self`.
///
/// ```
/// use symbi_policy::{EngineOptions, PolicyEngine, PolicySource, requests};
/// use symbi_types::{PolicyDecisionPoint, Decision};
///
/// let engine = PolicyEngine::from_sources(
///     vec![PolicySource::new("p.cedar", r#"
///         @id("agents-may-use-search")
///         permit(principal is Agent, action == Action::"invoke_tool", resource == Tool::"search");
///     "#)],
///     EngineOptions::enforcing(),
/// ).unwrap();
/// let me = requests::agent_principal("helper", None, ["search"], None);
/// let d = engine.decide(&requests::invoke_tool(me.clone(), requests::ToolSubject::named("search"), vec![]), None);
/// assert!(matches!(d, Decision::Allow { .. }));
/// let d = engine.decide(&requests::invoke_tool(me, requests::ToolSubject::named("shell"), vec![]), None);
/// assert!(d.reason().contains("no rule allows"));
/// ```
pub struct PolicyEngine {
    current: ArcSwap<PolicySnapshot>,
    enforce: bool,
    cache_capacity: usize,
    model: &'static Model,
    dir: Option<PathBuf>,
    reload_lock: Mutex<()>,
    events: Option<EventForwarder>,
    watcher: Mutex<Option<WatchHandle>>,
}

impl std::fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.current.load();
        f.debug_struct("PolicyEngine")
            .field("generation", &s.generation)
            .field("policies", &s.policy_count())
            .field("enforce", &self.enforce)
            .field("dir", &self.dir)
            .finish()
    }
}

impl PolicyEngine {
    /// Loads every `*.cedar` file under `dir`. Fails if the directory is missing or any file
    /// has an error (all problems listed with positions).
    pub fn from_dir(dir: impl AsRef<Path>, options: EngineOptions) -> Result<Self, PolicyError> {
        let dir = dir.as_ref().to_path_buf();
        let sources = load::read_dir_sources(&dir)?;
        Self::build(sources, Some(dir), options)
    }

    /// A set built from texts (no directory; [`Self::reload`] is then an error).
    pub fn from_sources(
        sources: Vec<PolicySource>,
        options: EngineOptions,
    ) -> Result<Self, PolicyError> {
        Self::build(sources, None, options)
    }

    /// The engine the runtime uses: the directory `[policy] dir` (default
    /// `<data dir>/policies`, seeded with the shipped defaults when it does not exist yet),
    /// enforcement from `[security] enforce_policies`, and — when `[policy] watch` is on —
    /// a watcher that reloads on every change.
    pub fn from_config(
        config: &symbi_config::Config,
        sink: Option<Arc<dyn EventSink>>,
    ) -> Result<Arc<Self>, PolicyError> {
        let dir = config.under_data_dir(config.policy.dir.as_deref(), "policies");
        crate::defaults::seed_if_missing(&dir)?;
        let engine = Arc::new(Self::from_dir(
            &dir,
            EngineOptions {
                enforce: config.security.enforce_policies,
                sink,
                ..EngineOptions::default()
            },
        )?);
        if config.policy.watch {
            engine.watch()?;
        }
        Ok(engine)
    }

    fn build(
        sources: Vec<PolicySource>,
        dir: Option<PathBuf>,
        options: EngineOptions,
    ) -> Result<Self, PolicyError> {
        let m = model::model()?;
        let events = options.sink.map(EventForwarder::new);
        let compiled = match load::compile(m, &sources) {
            Ok(c) => c,
            Err(diags) => {
                if let Some(ev) = &events {
                    ev.send(reload_event(
                        ReloadCause::Startup,
                        false,
                        &sources_names(&sources),
                        None,
                        Some(&diags),
                    ));
                }
                return Err(PolicyError::Invalid(diags));
            }
        };
        let snapshot = PolicySnapshot::new(1, compiled, options.decision_cache);
        if let Some(ev) = &events {
            ev.send(reload_event(
                ReloadCause::Startup,
                true,
                snapshot.files(),
                Some(&snapshot),
                None,
            ));
        }
        Ok(Self {
            current: ArcSwap::from_pointee(snapshot),
            enforce: options.enforce,
            cache_capacity: options.decision_cache,
            model: m,
            dir,
            reload_lock: Mutex::new(()),
            events,
            watcher: Mutex::new(None),
        })
    }

    /// Checks policy texts against the schema without creating an engine. `Ok` carries the
    /// warnings; `Err` is [`PolicyError::Invalid`] with every problem.
    pub fn check(sources: &[PolicySource]) -> Result<CheckReport, PolicyError> {
        let m = model::model()?;
        load::compile(m, sources)
            .map(|c| CheckReport {
                policies: c.info.len(),
                files: c.files.clone(),
                warnings: c.warnings,
            })
            .map_err(PolicyError::Invalid)
    }

    /// The directory this engine loads from, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Whether Deny decisions are enforced.
    pub fn enforcing(&self) -> bool {
        self.enforce
    }

    /// The active policy set.
    pub fn snapshot(&self) -> Arc<PolicySnapshot> {
        self.current.load_full()
    }

    /// Re-reads the policy directory. A valid set replaces the active one for the next
    /// decision; an invalid one is rejected with positions and the active set stays.
    pub fn reload(&self) -> Result<ReloadReport, PolicyError> {
        self.reload_with(ReloadCause::Manual)
    }

    pub(crate) fn reload_with(&self, cause: ReloadCause) -> Result<ReloadReport, PolicyError> {
        let dir = self.dir.as_ref().ok_or(PolicyError::NoDirectory)?;
        let _g = self.reload_lock.lock();
        let sources = match load::read_dir_sources(dir) {
            Ok(s) => s,
            Err(e) => {
                self.emit(reload_event(cause, false, &[], None, None).with_error(&e.to_string()));
                return Err(e);
            }
        };
        self.install(cause, sources, |_| Ok(()))
    }

    /// Replaces the whole active set with these texts (an API update). Validation and
    /// atomicity as for [`Self::reload`]. With a watched directory, the next change in the
    /// directory replaces this set again; use [`Self::write_policy_file`] for a lasting change.
    pub fn replace_policies(
        &self,
        sources: Vec<PolicySource>,
    ) -> Result<ReloadReport, PolicyError> {
        let _g = self.reload_lock.lock();
        self.install(ReloadCause::Api, sources, |_| Ok(()))
    }

    /// Adds or replaces one file of the policy directory (a lasting API update): the
    /// directory's set with this file is validated first; only a valid set is written (atomically:
    /// temporary file, fsync, rename) and activated. `name` is relative to the directory.
    pub fn write_policy_file(&self, name: &str, text: &str) -> Result<ReloadReport, PolicyError> {
        let dir = self.dir.clone().ok_or(PolicyError::NoDirectory)?;
        let rel = Path::new(name);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
            || !load::is_policy_path(rel)
        {
            return Err(PolicyError::InvalidFileName(name.to_string()));
        }
        let _g = self.reload_lock.lock();
        let mut sources = load::read_dir_sources(&dir)?;
        let path = dir.join(rel);
        let new = PolicySource {
            name: name.replace('\\', "/"),
            display: path.display().to_string(),
            text: text.to_string(),
        };
        match sources.iter_mut().find(|s| s.name == new.name) {
            Some(s) => *s = new,
            None => {
                sources.push(new);
                sources.sort_by(|a, b| a.name.cmp(&b.name));
            }
        }
        self.install(ReloadCause::Api, sources, |_| {
            crate::defaults::write_atomic(&path, text.as_bytes())
        })
    }

    /// Compiles, runs `before_swap` (which may persist), then swaps. Caller holds the lock.
    fn install(
        &self,
        cause: ReloadCause,
        sources: Vec<PolicySource>,
        before_swap: impl FnOnce(&Compiled) -> Result<(), PolicyError>,
    ) -> Result<ReloadReport, PolicyError> {
        let old = self.current.load_full();
        let compiled = match load::compile(self.model, &sources) {
            Ok(c) => c,
            Err(diags) => {
                tracing::warn!(
                    errors = diags.len(),
                    "policy reload rejected; the previous policy set stays active"
                );
                self.emit(reload_event(
                    cause,
                    false,
                    &sources_names(&sources),
                    None,
                    Some(&diags),
                ));
                return Err(PolicyError::Invalid(diags));
            }
        };
        if compiled.digest == old.compiled.digest {
            return Ok(ReloadReport {
                generation: old.generation,
                changed: false,
                files: old.files().to_vec(),
                policies: old.policy_count(),
                warnings: old.warnings().to_vec(),
            });
        }
        if let Err(e) = before_swap(&compiled) {
            self.emit(
                reload_event(cause, false, &sources_names(&sources), None, None)
                    .with_error(&e.to_string()),
            );
            return Err(e);
        }
        let snapshot = Arc::new(PolicySnapshot::new(
            old.generation + 1,
            compiled,
            self.cache_capacity,
        ));
        self.current.store(snapshot.clone());
        tracing::info!(
            generation = snapshot.generation,
            policies = snapshot.policy_count(),
            ?cause,
            "policy set reloaded"
        );
        self.emit(reload_event(
            cause,
            true,
            snapshot.files(),
            Some(&snapshot),
            None,
        ));
        Ok(ReloadReport {
            generation: snapshot.generation,
            changed: true,
            files: snapshot.files().to_vec(),
            policies: snapshot.policy_count(),
            warnings: snapshot.warnings().to_vec(),
        })
    }

    fn emit(&self, draft: EventDraft) {
        if let Some(ev) = &self.events {
            ev.send(draft);
        }
    }

    /// Waits until every `policy_reload` event so far has been handed to the sink. Returns
    /// false on timeout or when there is no sink.
    pub fn flush_events(&self, timeout: Duration) -> bool {
        self.events.as_ref().is_some_and(|e| e.flush(timeout))
    }

    /// Starts watching the policy directory: every change (after 150 ms of quiet) reloads.
    /// The watcher stops when the engine is dropped.
    pub fn watch(self: &Arc<Self>) -> Result<(), PolicyError> {
        let dir = self.dir.clone().ok_or(PolicyError::NoDirectory)?;
        let handle = crate::watch::start(Arc::downgrade(self), &dir)?;
        *self.watcher.lock() = Some(handle);
        Ok(())
    }

    /// Whether a directory watcher is running.
    pub fn is_watching(&self) -> bool {
        self.watcher.lock().is_some()
    }

    fn finish(&self, d: Decision) -> Decision {
        match d {
            Decision::Deny { reasons } if !self.enforce => Decision::Allow {
                reasons: vec![format!(
                    "not enforced ([security] enforce_policies = false); would deny: {}",
                    reasons.join("; ")
                )],
            },
            d => d,
        }
    }
}

/// Result of [`PolicyEngine::check`].
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    /// Number of policies.
    pub policies: usize,
    /// Files checked.
    pub files: Vec<String>,
    /// Warnings.
    pub warnings: Vec<Diagnostic>,
}

impl PolicyDecisionPoint for PolicyEngine {
    fn decide(&self, request: &PolicyRequest, agent_rules: Option<&dyn AgentRuleSet>) -> Decision {
        let snap = self.current.load();
        self.finish(evaluate(self.model, &snap, request, agent_rules))
    }

    fn decide_batch(
        &self,
        requests: &[PolicyRequest],
        agent_rules: Option<&dyn AgentRuleSet>,
    ) -> Vec<Decision> {
        let snap = self.current.load_full();
        requests
            .iter()
            .map(|r| self.finish(evaluate(self.model, &snap, r, agent_rules)))
            .collect()
    }
}

/// The decision procedure (GRAMMAR.md §4.10 "Decision"), deny overrides.
fn evaluate(
    m: &Model,
    snap: &PolicySnapshot,
    req: &PolicyRequest,
    agent_rules: Option<&dyn AgentRuleSet>,
) -> Decision {
    // 1. A matching DSL deny decides at once. The DSL side is never cached (it is opaque).
    let outcome: RuleOutcome = agent_rules.map(|r| r.evaluate(req)).unwrap_or_default();
    if let Some(reason) = outcome.denied_by {
        return Decision::Deny {
            reasons: vec![reason],
        };
    }
    // 2. Cedar, from the snapshot's cache when the request's context is well-formed
    // (a malformed one is denied below and not worth caching).
    let values = m.context_values(req);
    let cedar: Arc<CedarOutcome> = match (&snap.cache, values) {
        (Some(cache), Ok(values)) => {
            let key = KEY_BUF.with(|b| {
                let mut b = b.borrow_mut();
                b.clear();
                cache::key(req, &values, snap.context_use, &mut b);
                b.clone()
            });
            cache.get_or_insert(&key, || cedar_outcome(m, snap, req, Ok(values)))
        }
        (_, values) => Arc::new(cedar_outcome(m, snap, req, values)),
    };
    let (forbids, permit_reasons, permit_conditions, errored_permits) = match &*cedar {
        // A request that does not fit the model cannot be checked against the forbids, so
        // it is denied whatever the DSL rules allow.
        CedarOutcome::Unfit(e) => {
            return Decision::Deny {
                reasons: vec![e.clone()],
            };
        }
        CedarOutcome::Evaluated {
            forbids,
            permit_reasons,
            permit_conditions,
            errored_permits,
        } => (forbids, permit_reasons, permit_conditions, errored_permits),
    };
    if !forbids.is_empty() {
        return Decision::Deny {
            reasons: forbids.clone(),
        };
    }
    // 3. Allowed by a DSL allow or a Cedar permit; conditions from both.
    if !outcome.allowed_by.is_empty() || !permit_reasons.is_empty() {
        let mut reasons = outcome.allowed_by;
        let mut conditions: Vec<Condition> = Vec::new();
        for c in outcome
            .conditions
            .into_iter()
            .chain(permit_conditions.iter().cloned())
        {
            if !conditions.contains(&c) {
                conditions.push(c);
            }
        }
        reasons.extend(permit_reasons.iter().cloned());
        return if conditions.is_empty() {
            Decision::Allow { reasons }
        } else {
            Decision::AllowWithConditions {
                conditions,
                reasons,
            }
        };
    }
    // 4. The default.
    let mut reasons = vec![default_deny(req)];
    reasons.extend(errored_permits.iter().cloned());
    Decision::Deny { reasons }
}

thread_local! {
    /// Reused buffer for cache keys (avoids growing a fresh vector per decision).
    static KEY_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Evaluates the Cedar half of a decision against the snapshot's indexed policies.
fn cedar_outcome(
    m: &Model,
    snap: &PolicySnapshot,
    req: &PolicyRequest,
    values: Result<model::ContextValues, model::RequestError>,
) -> CedarOutcome {
    let (request, entities) = match m.cedar_request_with(req, values) {
        Ok(x) => x,
        Err(e) => return CedarOutcome::Unfit(e.0),
    };
    let index = &snap.compiled.slices[model::action_index(req.category)];
    let (Some(p), Some(r)) = (request.principal(), request.resource()) else {
        return CedarOutcome::Unfit("request has no principal or resource".into());
    };
    let info = &snap.compiled.info;
    let authorizer = Authorizer::new();
    let mut forbids: Vec<String> = Vec::new();
    let mut permits: Vec<&PolicyInfo> = Vec::new();
    let mut errored_permits: Vec<String> = Vec::new();
    for set in index.sets(p, r) {
        let response = authorizer.is_authorized(&request, set, &entities);
        for id in response.diagnostics().reason() {
            if let Some(p) = info.get(id) {
                match p.effect {
                    Effect::Forbid => forbids.push(p.decision_text.clone()),
                    Effect::Permit => permits.push(p),
                }
            }
        }
        for e in response.diagnostics().errors() {
            let cedar_policy::AuthorizationError::PolicyEvaluationError(pe) = e;
            match info.get(pe.policy_id()) {
                // An erroring forbid might have applied: fail closed.
                Some(p) if p.effect == Effect::Forbid => forbids.push(format!(
                    "forbid policy {} could not be evaluated ({}); denied to fail closed",
                    p.label(),
                    pe.inner()
                )),
                Some(p) => errored_permits.push(format!(
                    "permit policy {} could not be evaluated: {}",
                    p.label(),
                    pe.inner()
                )),
                None => forbids.push(format!(
                    "policy {} could not be evaluated: {}",
                    pe.policy_id(),
                    pe.inner()
                )),
            }
        }
    }
    forbids.sort();
    permits.sort_by(|a, b| a.id.cmp(&b.id));
    let mut permit_conditions: Vec<Condition> = Vec::new();
    for c in permits.iter().flat_map(|p| p.conditions.iter()) {
        if !permit_conditions.contains(c) {
            permit_conditions.push(c.clone());
        }
    }
    CedarOutcome::Evaluated {
        forbids,
        permit_reasons: permits.iter().map(|p| p.decision_text.clone()).collect(),
        permit_conditions,
        errored_permits,
    }
}

fn default_deny(req: &PolicyRequest) -> String {
    let cat = req.category.as_str();
    let action = if req.name == cat || req.name.is_empty() {
        cat.to_string()
    } else {
        format!("{} ({cat})", req.name)
    };
    format!(
        "no rule allows action {action} on {}::{:?}",
        req.subject.kind.cedar_type(),
        req.subject.name
    )
}

fn sources_names(sources: &[PolicySource]) -> Vec<String> {
    sources.iter().map(|s| s.name.clone()).collect()
}

trait WithError {
    fn with_error(self, e: &str) -> Self;
}

impl WithError for EventDraft {
    fn with_error(mut self, e: &str) -> Self {
        if let Some(o) = self.details.as_object_mut() {
            o.insert("error".into(), json!(e));
        }
        self
    }
}

/// `policy_reload` event: `{accepted, cause, files, generation?, policies?, digest?, error?, errors?}`.
fn reload_event(
    cause: ReloadCause,
    accepted: bool,
    files: &[String],
    snap: Option<&PolicySnapshot>,
    diags: Option<&[Diagnostic]>,
) -> EventDraft {
    let mut details = json!({ "accepted": accepted, "cause": cause, "files": files });
    let o = details.as_object_mut().expect("object");
    if let Some(s) = snap {
        o.insert("generation".into(), json!(s.generation));
        o.insert("policies".into(), json!(s.policy_count()));
        o.insert("digest".into(), json!(s.digest()));
    }
    if let Some(d) = diags {
        let errors: Vec<String> = d
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| d.to_string())
            .collect();
        o.insert(
            "error".into(),
            json!(errors.first().cloned().unwrap_or_default()),
        );
        o.insert("errors".into(), json!(errors));
    }
    EventDraft::new(symbi_types::event::types::POLICY_RELOAD, details)
}

//! The agent registry: every registered agent as a small record in a sharded concurrent map.
//!
//! An idle agent costs one [`AgentEntry`] (a few hundred bytes) plus its map slots — no
//! thread, no task, no channel. Lookups by id are one shard read; names are indexed too
//! (several agents may share a name, as the HTTP API allows).

use crate::spec::{AgentSpec, Persistence, Priority, ProgramSlot};
use chrono::{DateTime, TimeZone, Utc};
use dashmap::DashMap;
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use symbi_types::{AgentId, AgentState, ResourceBudget};

/// The registry is full (`[runtime] max_concurrent_agents`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the runtime already holds {limit} agents ([runtime] max_concurrent_agents); delete agents or raise the limit"
)]
pub struct RegistryFull {
    /// The configured limit.
    pub limit: usize,
}

const STATE_NONE: u8 = u8::MAX;

fn state_code(s: AgentState) -> u8 {
    AgentState::ALL
        .iter()
        .position(|x| *x == s)
        .expect("state in ALL") as u8
}

fn state_from_code(c: u8) -> Option<AgentState> {
    AgentState::ALL.get(c as usize).copied()
}

/// The mutable, rarely-touched parts of an agent.
struct Mutable {
    name: Arc<str>,
    metadata: BTreeMap<String, String>,
    program: Option<ProgramSlot>,
    diagnostics: Vec<String>,
    last_failure: Option<Box<LastFailure>>,
}

/// The last failed execution of an agent, kept for status and operators.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LastFailure {
    /// Class of the failure.
    pub class: symbi_types::ErrorClass,
    /// Error kind (`Timeout`, `Panic`, a DSL error kind, …).
    pub kind: String,
    /// Message.
    pub message: String,
    /// When it happened.
    pub at: DateTime<Utc>,
}

/// One registered agent.
///
/// The state is read lock-free; it changes only through the
/// [`Lifecycle`](crate::lifecycle::Lifecycle) controller, which serialises transitions of one
/// agent with [`AgentEntry::transition_lock`].
pub struct AgentEntry {
    id: AgentId,
    priority: Priority,
    budget: ResourceBudget,
    persistence: Persistence,
    created_at: DateTime<Utc>,
    state: AtomicU8,
    last_activity_ms: AtomicI64,
    executions: AtomicU64,
    failures: AtomicU64,
    mutable: Mutex<Mutable>,
    pub(crate) transition_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for AgentEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentEntry")
            .field("id", &self.id)
            .field("name", &self.name())
            .field("state", &self.state())
            .finish()
    }
}

impl AgentEntry {
    /// A record for a new agent that has not entered any state yet.
    pub(crate) fn new(id: AgentId, spec: AgentSpec) -> Self {
        let now = Utc::now();
        AgentEntry {
            id,
            priority: spec.priority,
            budget: spec.budget,
            persistence: spec.persistence,
            created_at: now,
            state: AtomicU8::new(STATE_NONE),
            last_activity_ms: AtomicI64::new(now.timestamp_millis()),
            executions: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            mutable: Mutex::new(Mutable {
                name: spec.name.into(),
                metadata: spec.metadata,
                program: spec.program,
                diagnostics: Vec::new(),
                last_failure: None,
            }),
            transition_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The agent's id.
    pub fn id(&self) -> AgentId {
        self.id
    }

    /// The agent's name.
    pub fn name(&self) -> Arc<str> {
        self.mutable.lock().name.clone()
    }

    /// Current state (`None` only while the creation event is being recorded).
    pub fn state_opt(&self) -> Option<AgentState> {
        state_from_code(self.state.load(Ordering::Acquire))
    }

    /// Current state. A registered agent always has one.
    pub fn state(&self) -> AgentState {
        self.state_opt().unwrap_or(AgentState::Initializing)
    }

    pub(crate) fn set_state(&self, s: AgentState) {
        self.state.store(state_code(s), Ordering::Release);
        self.touch();
    }

    /// Default task priority.
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// Default task budget.
    pub fn budget(&self) -> ResourceBudget {
        self.budget
    }

    /// Persistence.
    pub fn persistence(&self) -> Persistence {
        self.persistence
    }

    /// When the agent was registered.
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    /// Last state change, task start or task end.
    pub fn last_activity(&self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.last_activity_ms.load(Ordering::Relaxed))
            .single()
            .unwrap_or(self.created_at)
    }

    /// Marks the agent active now.
    pub fn touch(&self) {
        self.last_activity_ms
            .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    /// Executions started.
    pub fn executions(&self) -> u64 {
        self.executions.load(Ordering::Relaxed)
    }

    /// Executions that failed.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    pub(crate) fn count_execution(&self) {
        self.executions.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_failure(&self, f: LastFailure) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.mutable.lock().last_failure = Some(Box::new(f));
    }

    /// The last failed execution, if any.
    pub fn last_failure(&self) -> Option<LastFailure> {
        self.mutable.lock().last_failure.as_deref().cloned()
    }

    /// Metadata.
    pub fn metadata(&self) -> BTreeMap<String, String> {
        self.mutable.lock().metadata.clone()
    }

    /// Merges metadata entries (heartbeats, updates).
    pub fn merge_metadata(&self, m: BTreeMap<String, String>) {
        self.mutable.lock().metadata.extend(m);
    }

    /// The loaded program, if any.
    pub fn program(&self) -> Option<ProgramSlot> {
        self.mutable.lock().program.clone()
    }

    /// Replaces the loaded program (an update of the agent's DSL). Running tasks keep the
    /// program they started with.
    pub fn set_program(&self, p: Option<ProgramSlot>) {
        self.mutable.lock().program = p;
    }

    /// Diagnostics that made the agent `Failed`.
    pub fn diagnostics(&self) -> Vec<String> {
        self.mutable.lock().diagnostics.clone()
    }

    pub(crate) fn set_diagnostics(&self, d: Vec<String>) {
        self.mutable.lock().diagnostics = d;
    }
}

/// Ids of the agents that share one name.
#[derive(Debug)]
enum NameSlot {
    One(AgentId),
    Many(Vec<AgentId>),
}

/// The concurrent agent map.
pub struct Registry {
    agents: DashMap<AgentId, Arc<AgentEntry>>,
    names: DashMap<Arc<str>, NameSlot>,
    count: AtomicUsize,
    limit: usize,
}

impl Registry {
    /// An empty registry holding at most `limit` agents.
    pub fn new(limit: usize) -> Self {
        Registry {
            agents: DashMap::new(),
            names: DashMap::new(),
            count: AtomicUsize::new(0),
            limit,
        }
    }

    /// Reserves room for one agent; undone by [`Registry::unreserve`] if registration fails.
    pub(crate) fn reserve(&self) -> Result<(), RegistryFull> {
        let prev = self.count.fetch_add(1, Ordering::AcqRel);
        if prev >= self.limit {
            self.count.fetch_sub(1, Ordering::AcqRel);
            return Err(RegistryFull { limit: self.limit });
        }
        Ok(())
    }

    pub(crate) fn unreserve(&self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }

    /// Inserts an entry whose room was reserved.
    pub(crate) fn insert(&self, entry: Arc<AgentEntry>) {
        let name = entry.name();
        let id = entry.id();
        self.names
            .entry(name)
            .and_modify(|slot| match slot {
                NameSlot::One(other) => *slot = NameSlot::Many(vec![*other, id]),
                NameSlot::Many(v) => v.push(id),
            })
            .or_insert(NameSlot::One(id));
        self.agents.insert(id, entry);
    }

    /// Removes an agent. Returns its record.
    pub(crate) fn remove(&self, id: AgentId) -> Option<Arc<AgentEntry>> {
        let (_, entry) = self.agents.remove(&id)?;
        self.count.fetch_sub(1, Ordering::AcqRel);
        self.unindex_name(&entry.name(), id);
        Some(entry)
    }

    fn unindex_name(&self, name: &Arc<str>, id: AgentId) {
        self.names.remove_if_mut(name, |_, slot| match slot {
            NameSlot::One(x) => *x == id,
            NameSlot::Many(v) => {
                v.retain(|x| *x != id);
                if v.len() == 1 {
                    *slot = NameSlot::One(v[0]);
                }
                false
            }
        });
    }

    /// Renames an agent (API update).
    pub fn rename(&self, id: AgentId, new_name: &str) -> bool {
        let Some(entry) = self.get(id) else {
            return false;
        };
        let old = entry.name();
        if &*old == new_name {
            return true;
        }
        self.unindex_name(&old, id);
        let new: Arc<str> = new_name.into();
        entry.mutable.lock().name = new.clone();
        self.names
            .entry(new)
            .and_modify(|slot| match slot {
                NameSlot::One(other) => *slot = NameSlot::Many(vec![*other, id]),
                NameSlot::Many(v) => v.push(id),
            })
            .or_insert(NameSlot::One(id));
        true
    }

    /// The agent with this id.
    pub fn get(&self, id: AgentId) -> Option<Arc<AgentEntry>> {
        self.agents.get(&id).map(|e| e.value().clone())
    }

    /// Every agent with this name, oldest first.
    pub fn find_by_name(&self, name: &str) -> Vec<AgentId> {
        match self.names.get(name).as_deref() {
            None => Vec::new(),
            Some(NameSlot::One(id)) => vec![*id],
            Some(NameSlot::Many(v)) => v.clone(),
        }
    }

    /// Number of registered agents (including those still being created).
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Whether no agent is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The configured limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Calls `f` for every agent (a consistent view per map shard, not across shards).
    pub fn for_each(&self, mut f: impl FnMut(&Arc<AgentEntry>)) {
        for e in self.agents.iter() {
            f(e.value());
        }
    }

    /// Agents per state.
    pub fn counts(&self) -> StateCounts {
        let mut c = StateCounts::default();
        self.for_each(|e| c.add(e.state()));
        c
    }
}

/// Number of agents in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StateCounts {
    /// Initializing.
    pub initializing: usize,
    /// Ready.
    pub ready: usize,
    /// Running.
    pub running: usize,
    /// Suspended.
    pub suspended: usize,
    /// Terminated.
    pub terminated: usize,
    /// Failed.
    pub failed: usize,
}

impl StateCounts {
    fn add(&mut self, s: AgentState) {
        match s {
            AgentState::Initializing => self.initializing += 1,
            AgentState::Ready => self.ready += 1,
            AgentState::Running => self.running += 1,
            AgentState::Suspended => self.suspended += 1,
            AgentState::Terminated => self.terminated += 1,
            AgentState::Failed => self.failed += 1,
        }
    }

    /// All agents.
    pub fn total(&self) -> usize {
        self.initializing
            + self.ready
            + self.running
            + self.suspended
            + self.terminated
            + self.failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> Arc<AgentEntry> {
        let e = Arc::new(AgentEntry::new(AgentId::new(), AgentSpec::new(name)));
        e.set_state(AgentState::Ready);
        e
    }

    #[test]
    fn lookup_by_id_and_shared_names() {
        let r = Registry::new(10);
        let (a, b, c) = (entry("x"), entry("x"), entry("y"));
        for e in [&a, &b, &c] {
            r.reserve().unwrap();
            r.insert(e.clone());
        }
        assert_eq!(r.len(), 3);
        assert_eq!(r.get(a.id()).unwrap().id(), a.id());
        assert_eq!(r.find_by_name("x"), vec![a.id(), b.id()]);
        assert_eq!(r.find_by_name("y"), vec![c.id()]);
        r.remove(a.id()).unwrap();
        assert_eq!(r.find_by_name("x"), vec![b.id()]);
        assert!(r.rename(b.id(), "y"));
        assert_eq!(r.find_by_name("x"), Vec::<AgentId>::new());
        assert_eq!(r.find_by_name("y"), vec![c.id(), b.id()]);
        assert_eq!(r.counts().ready, 2);
    }

    #[test]
    fn limit_is_enforced() {
        let r = Registry::new(2);
        r.reserve().unwrap();
        r.reserve().unwrap();
        assert_eq!(r.reserve(), Err(RegistryFull { limit: 2 }));
        r.unreserve();
        assert!(r.reserve().is_ok());
    }

    #[test]
    fn an_idle_record_is_small() {
        // The record itself; the maps add a key and an Arc per agent.
        assert!(
            std::mem::size_of::<AgentEntry>() < 512,
            "{}",
            std::mem::size_of::<AgentEntry>()
        );
    }
}

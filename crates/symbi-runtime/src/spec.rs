//! What a caller says about an agent and about a task: priority, budget, persistence.

use serde::{Deserialize, Serialize};
use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use symbi_types::ResourceBudget;

/// Scheduling priority: higher runs first and may preempt lower (strategy `priority`).
///
/// Any `u8` is allowed; the named levels are conventions.
///
/// ```
/// use symbi_runtime::Priority;
/// assert!(Priority::HIGH > Priority::NORMAL);
/// assert_eq!(Priority::default(), Priority::NORMAL);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Priority(pub u8);

impl Priority {
    /// Background work.
    pub const LOW: Priority = Priority(25);
    /// The default.
    pub const NORMAL: Priority = Priority(50);
    /// Interactive work.
    pub const HIGH: Priority = Priority(75);
    /// Work that must run now.
    pub const CRITICAL: Priority = Priority(100);
}

impl Default for Priority {
    fn default() -> Self {
        Priority::NORMAL
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How long an agent's state lives (GRAMMAR §4.8 `memory`). The runtime keeps it for the
/// caller; persistence itself is implemented by the context manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Persistence {
    /// No state survives an execution.
    #[default]
    Ephemeral,
    /// `remember`/`recall` state and message delivery survive.
    Persistent,
    /// State lives as long as the caller's session.
    Session,
    /// Persistent, encrypted at rest.
    Encrypted,
}

/// The loaded program of an agent: opaque to the runtime (the binary stores the checked
/// DSL program here and downcasts it when it builds a task).
pub type ProgramSlot = Arc<dyn Any + Send + Sync>;

/// Everything needed to register an agent.
///
/// ```
/// use symbi_runtime::{AgentSpec, Priority};
/// let spec = AgentSpec::new("greeter").priority(Priority::HIGH).metadata("team", "ops");
/// assert_eq!(spec.name, "greeter");
/// ```
#[derive(Clone)]
pub struct AgentSpec {
    /// Display name (several agents may share one; see `Registry::find_by_name`).
    pub name: String,
    /// Default priority of the agent's tasks.
    pub priority: Priority,
    /// Default budget of the agent's tasks (reserved only while a task runs).
    pub budget: ResourceBudget,
    /// Persistence of the agent's state.
    pub persistence: Persistence,
    /// Free-form string metadata (API `metadata`).
    pub metadata: BTreeMap<String, String>,
    /// The loaded program, if any.
    pub program: Option<ProgramSlot>,
}

impl fmt::Debug for AgentSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentSpec")
            .field("name", &self.name)
            .field("priority", &self.priority)
            .field("budget", &self.budget)
            .field("persistence", &self.persistence)
            .field("metadata", &self.metadata)
            .field("program", &self.program.is_some())
            .finish()
    }
}

impl AgentSpec {
    /// A spec with default priority, budget and persistence.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            priority: Priority::default(),
            budget: ResourceBudget::default(),
            persistence: Persistence::default(),
            metadata: BTreeMap::new(),
            program: None,
        }
    }

    /// Sets the priority.
    pub fn priority(mut self, p: Priority) -> Self {
        self.priority = p;
        self
    }

    /// Sets the budget.
    pub fn budget(mut self, b: ResourceBudget) -> Self {
        self.budget = b;
        self
    }

    /// Sets the persistence.
    pub fn persistence(mut self, p: Persistence) -> Self {
        self.persistence = p;
        self
    }

    /// Adds one metadata entry.
    pub fn metadata(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.metadata.insert(k.into(), v.into());
        self
    }

    /// Sets the program slot.
    pub fn program(mut self, p: ProgramSlot) -> Self {
        self.program = Some(p);
        self
    }
}

/// The outcome of validating an agent's configuration while it is `Initializing`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Validation {
    /// Configuration valid: Initializing → Ready.
    Valid,
    /// Configuration invalid: Initializing → Failed; the diagnostics are kept with the agent
    /// and recorded in the transition event.
    Invalid(Vec<String>),
}

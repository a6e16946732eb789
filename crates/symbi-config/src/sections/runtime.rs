//! `[runtime]`: agent capacity, scheduler, timeouts, mode, data locations.

use crate::validate::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;
use symbi_types::{ByteSize, HumanDuration};

/// Development or production (`SYMBI_RUNTIME_MODE`). Production is the secure default:
/// unenforceable policy requirements and unsandboxed tools are errors there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeMode {
    /// Lenient: unenforceable requirements are recorded, not enforced.
    Development,
    /// Secure by default.
    #[default]
    Production,
}

/// How the resource manager places work on worker shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AllocationStrategy {
    /// The first shard with room.
    FirstFit,
    /// The shard whose remaining room is smallest but sufficient.
    BestFit,
    /// High-priority work may take capacity from lower-priority work (preemption).
    #[default]
    Priority,
}

/// What to do with a request that does not fit in the free capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AdmissionPolicy {
    /// Queue it until capacity frees up (default).
    #[default]
    Queue,
    /// Refuse it at once with an error.
    Reject,
}

/// `[runtime]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSection {
    /// Maximum registered agents.
    #[serde(deserialize_with = "usize_in::<1, 10_000_000, _>")]
    pub max_concurrent_agents: usize,
    /// Worker shards of the scheduler (each runs its own queue).
    #[serde(deserialize_with = "usize_in::<1, 1024, _>")]
    pub scheduler_threads: usize,
    /// Capacity of message queues, in messages.
    #[serde(deserialize_with = "usize_in::<1, 1_073_741_824, _>")]
    pub message_buffer_size: usize,
    /// How often finished executions, expired holds and stale state are collected.
    #[serde(deserialize_with = "u64_in::<1, 3_600_000, _>")]
    pub gc_interval_ms: u64,
    /// Wall-clock limit of an execution when neither the agent nor its resource limits say.
    #[serde(deserialize_with = "nonzero_duration")]
    pub default_execution_timeout: HumanDuration,
    /// Development or production.
    pub mode: RuntimeMode,
    /// Where all state lives; default `$XDG_DATA_HOME/symbi` or `~/.local/share/symbi`.
    pub data_dir: Option<PathBuf>,
    /// A directory of `.symbi` files loaded by `symbi up` (relative to the data dir).
    pub agents_dir: Option<PathBuf>,
    /// Placement strategy of the resource manager.
    pub allocation_strategy: AllocationStrategy,
    /// Over-capacity requests: queue or reject.
    pub admission: AdmissionPolicy,
    /// Memory the runtime may hand out to agents in total.
    #[serde(deserialize_with = "size_at_least::<1048576, _>")]
    pub memory_capacity: ByteSize,
    /// CPU the runtime may hand out, in cores.
    #[serde(deserialize_with = "f64_in_milli::<1, 4_096_000, _>")]
    pub cpu_capacity: f64,
    /// How long `symbi up` waits for running work when asked to stop.
    #[serde(deserialize_with = "nonzero_duration")]
    pub shutdown_grace: HumanDuration,
}

impl Default for RuntimeSection {
    fn default() -> Self {
        Self {
            max_concurrent_agents: 10_000,
            scheduler_threads: 8,
            message_buffer_size: 1_048_576,
            gc_interval_ms: 100,
            default_execution_timeout: HumanDuration(Duration::from_secs(300)),
            mode: RuntimeMode::Production,
            data_dir: None,
            agents_dir: None,
            allocation_strategy: AllocationStrategy::Priority,
            admission: AdmissionPolicy::Queue,
            memory_capacity: ByteSize(16 << 30),
            cpu_capacity: 2.0,
            shutdown_grace: HumanDuration(Duration::from_secs(30)),
        }
    }
}

//! Effective limits of one sandboxed call: the tool's own limits, capped by the agent's
//! [`ResourceBudget`] and the sandbox configuration.

use crate::manifest::ToolLimits;
use serde::Serialize;
use std::time::Duration;
use symbi_types::ResourceBudget;

/// The smallest memory limit a call may have: a gVisor sandbox (sentry and gofer) counts
/// against the container's memory cgroup and needs about this much to start.
pub const MIN_MEMORY_BYTES: u64 = 32 << 20;
/// Memory when neither the tool nor the budget says otherwise.
pub const DEFAULT_MEMORY_BYTES: u64 = 64 << 20;
/// CPU when neither the tool nor the budget says otherwise (one core).
pub const DEFAULT_CPU_MILLICORES: u32 = 1000;
/// Processes when the tool does not say.
pub const DEFAULT_PIDS: u32 = 64;
/// Wall-clock limit when the tool does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// CFS period used for CPU quotas (100 ms).
pub const CPU_PERIOD_US: i64 = 100_000;

/// The limits actually applied to one call (recorded in the outcome and the audit event).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct AppliedLimits {
    /// Memory cgroup limit (swap disabled: memory+swap is the same value).
    pub memory_bytes: u64,
    /// CPU quota in thousandths of a core (CFS quota over a 100 ms period).
    pub cpu_millicores: u32,
    /// Processes/threads the tool may have. In Tier2 this is enforced inside gVisor
    /// (RLIMIT_NPROC); the host pids cgroup gets a larger backstop for gVisor's own threads.
    pub pids: u32,
    /// Block-I/O limit (read and write, bytes/s) on the device holding Docker's data root;
    /// `None` when the device could not be determined (recorded, not silently claimed).
    pub disk_io_bps: Option<u64>,
    /// Wall-clock limit; the container is killed when it passes.
    #[serde(with = "ms")]
    pub timeout: Duration,
    /// Output cap per stream (stdout, stderr).
    pub output_bytes: u64,
    /// Size of the private `/tmp` (tmpfs; counts against the memory limit).
    pub tmpfs_bytes: u64,
}

mod ms {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

/// Computes the applied limits: each is the tool's value (or the default), capped by the
/// budget; the output cap by the configured maximum; the timeout also by `deadline` (time
/// left in the calling block), when given.
///
/// A budget smaller than [`MIN_MEMORY_BYTES`] is raised to it: the call must be able to
/// start. (The runtime's resource manager accounts the budget, not this floor.)
pub fn effective(
    tool: &ToolLimits,
    budget: &ResourceBudget,
    max_output_bytes: u64,
    deadline: Option<Duration>,
    disk_io_known: bool,
) -> AppliedLimits {
    let mut memory = tool.memory_bytes.unwrap_or(DEFAULT_MEMORY_BYTES);
    if budget.memory_bytes > 0 {
        memory = memory.min(budget.memory_bytes);
    }
    let memory = memory.max(MIN_MEMORY_BYTES);
    let mut cpu = tool.cpu_millicores.unwrap_or(DEFAULT_CPU_MILLICORES);
    if budget.cpu_millicores > 0 {
        cpu = cpu.min(budget.cpu_millicores);
    }
    let cpu = cpu.max(10);
    let mut timeout = tool.timeout.unwrap_or(DEFAULT_TIMEOUT);
    if !budget.wall_time.is_zero() {
        timeout = timeout.min(budget.wall_time);
    }
    if let Some(d) = deadline {
        timeout = timeout.min(d);
    }
    let output = tool
        .output_bytes
        .unwrap_or(max_output_bytes)
        .min(max_output_bytes)
        .max(1);
    let disk = (disk_io_known && budget.disk_io_bps > 0).then_some(budget.disk_io_bps);
    AppliedLimits {
        memory_bytes: memory,
        cpu_millicores: cpu,
        pids: tool.pids.unwrap_or(DEFAULT_PIDS),
        disk_io_bps: disk,
        timeout,
        output_bytes: output,
        tmpfs_bytes: (memory / 4).max(4 << 20),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_caps_tool_limits() {
        let tool = ToolLimits {
            timeout: Some(Duration::from_secs(60)),
            memory_bytes: Some(256 << 20),
            cpu_millicores: Some(2000),
            pids: Some(10),
            output_bytes: Some(10 << 20),
        };
        let budget = ResourceBudget::default(); // 64 MiB, 0.5 core, 300 s
        let l = effective(&tool, &budget, 1 << 20, Some(Duration::from_secs(20)), true);
        assert_eq!(l.memory_bytes, 64 << 20);
        assert_eq!(l.cpu_millicores, 500);
        assert_eq!(l.pids, 10);
        assert_eq!(l.timeout, Duration::from_secs(20));
        assert_eq!(l.output_bytes, 1 << 20);
        assert_eq!(l.disk_io_bps, Some(50 << 20));
        assert_eq!(l.tmpfs_bytes, 16 << 20);
    }

    #[test]
    fn defaults_and_floor() {
        let budget = ResourceBudget {
            memory_bytes: 1 << 20,
            ..ResourceBudget::default()
        };
        let l = effective(&ToolLimits::default(), &budget, 4096, None, false);
        assert_eq!(l.memory_bytes, MIN_MEMORY_BYTES);
        assert_eq!(l.pids, DEFAULT_PIDS);
        assert_eq!(l.timeout, DEFAULT_TIMEOUT);
        assert_eq!(l.output_bytes, 4096);
        assert_eq!(l.disk_io_bps, None);
    }
}

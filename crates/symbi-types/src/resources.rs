//! Resource budgets: what an agent (or one task of it) may use. The resource manager
//! accounts them, the interpreter turns the wall time into its timeout, and sandboxes turn
//! the rest into cgroup limits.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Per-agent (or per-task) resource budget (SPEC §5: `memory_mb`, `cpu_cores`,
/// `disk_io_mbps`, `network_io_mbps`, `execution_timeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResourceBudget {
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// CPU in thousandths of a core (500 = half a core).
    pub cpu_millicores: u32,
    /// Block I/O in bytes per second.
    pub disk_io_bps: u64,
    /// Network I/O in bytes per second.
    pub network_io_bps: u64,
    /// Wall-clock limit of one execution.
    #[serde(with = "ms")]
    pub wall_time: Duration,
}

impl ResourceBudget {
    /// Nothing at all (the identity of [`Self::saturating_add`]).
    pub const ZERO: ResourceBudget = ResourceBudget {
        memory_bytes: 0,
        cpu_millicores: 0,
        disk_io_bps: 0,
        network_io_bps: 0,
        wall_time: Duration::ZERO,
    };

    /// Component-wise sum (wall time is not additive and takes the maximum).
    pub fn saturating_add(&self, o: &ResourceBudget) -> ResourceBudget {
        ResourceBudget {
            memory_bytes: self.memory_bytes.saturating_add(o.memory_bytes),
            cpu_millicores: self.cpu_millicores.saturating_add(o.cpu_millicores),
            disk_io_bps: self.disk_io_bps.saturating_add(o.disk_io_bps),
            network_io_bps: self.network_io_bps.saturating_add(o.network_io_bps),
            wall_time: self.wall_time.max(o.wall_time),
        }
    }

    /// Whether every additive component of `self` is ≤ the one of `capacity`.
    pub fn fits_in(&self, capacity: &ResourceBudget) -> bool {
        self.memory_bytes <= capacity.memory_bytes
            && self.cpu_millicores <= capacity.cpu_millicores
            && self.disk_io_bps <= capacity.disk_io_bps
            && self.network_io_bps <= capacity.network_io_bps
    }
}

impl Default for ResourceBudget {
    /// 64 MiB, half a core, 50 MB/s disk, 10 MB/s network, 300 s.
    fn default() -> Self {
        ResourceBudget {
            memory_bytes: 64 << 20,
            cpu_millicores: 500,
            disk_io_bps: 50 << 20,
            network_io_bps: 10 << 20,
            wall_time: Duration::from_secs(300),
        }
    }
}

mod ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

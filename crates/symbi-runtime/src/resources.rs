//! The resource manager: capacity, per-agent reservations, admission and pressure.
//!
//! An agent's [`ResourceBudget`] (memory, CPU, disk I/O, network I/O, wall time) is
//! reserved from the runtime's capacity while one of its tasks runs, and returned exactly
//! when the task ends. Idle agents hold nothing — that is what lets 100,000 agents be
//! registered while only the running ones count against capacity.
//!
//! * **Admission.** A reservation that would take the total over capacity is refused with
//!   [`ResourceError::Insufficient`]; a budget larger than the whole capacity is
//!   [`ResourceError::ExceedsCapacity`] (it could never run). Whether an insufficient
//!   request is queued or refused is the scheduler's `[runtime] admission` policy.
//! * **Suspension.** A suspended task is frozen, not dropped: its future (and whatever heap
//!   it holds) stays alive. So a suspended holder keeps the memory it *reported* as in use
//!   (at most its budget) and returns its CPU, I/O and the unused rest of its memory budget.
//!   Resuming re-reserves the full budget.
//! * **Pressure.** When capacity shrinks below what is allocated
//!   ([`ResourcePool::set_capacity`]), [`ResourcePool::pressure_victims`] names the
//!   lowest-priority running holders whose suspension brings the total back under capacity.
//! * **Wall time** is not a shared capacity; it is enforced per task by the scheduler.
//!
//! Disk and network I/O have no configured capacity (`[runtime]` has none) and are
//! unlimited unless [`ResourcePool::new`] is given a finite capacity; they are still
//! accounted, so a sandbox backend can turn each holder's share into cgroup limits.
//!
//! The pool is a plain struct with no lock of its own: the scheduler keeps it inside its
//! core lock so that a placement decision and its reservation are one atomic step.

use crate::spec::Priority;
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;
use symbi_types::{AgentId, ResourceBudget};

/// A reservation that could not be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    /// The budget is larger than the whole capacity: it can never run.
    #[error("budget {requested} exceeds the runtime's whole capacity {capacity}")]
    ExceedsCapacity {
        /// What was asked for.
        requested: Amount,
        /// The capacity.
        capacity: Amount,
    },
    /// Not enough is free right now.
    #[error("not enough free capacity: requested {requested}, free {free}")]
    Insufficient {
        /// What was asked for.
        requested: Amount,
        /// What is free.
        free: Amount,
    },
    /// The agent already holds a reservation (one running task per agent).
    #[error("agent {0} already holds resources")]
    AlreadyHeld(AgentId),
    /// The agent holds nothing.
    #[error("agent {0} holds no resources")]
    NotHeld(AgentId),
}

/// The additive part of a [`ResourceBudget`] (everything but wall time).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Amount {
    /// Bytes of memory.
    pub memory_bytes: u64,
    /// Thousandths of a core.
    pub cpu_millicores: u64,
    /// Disk I/O, bytes per second.
    pub disk_io_bps: u64,
    /// Network I/O, bytes per second.
    pub network_io_bps: u64,
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let io = |v: u64| {
            if v == u64::MAX {
                "unlimited".to_string()
            } else {
                format!("{v} B/s")
            }
        };
        write!(
            f,
            "{{memory {} B, cpu {} millicores, disk {}, network {}}}",
            self.memory_bytes,
            self.cpu_millicores,
            io(self.disk_io_bps),
            io(self.network_io_bps)
        )
    }
}

impl From<ResourceBudget> for Amount {
    fn from(b: ResourceBudget) -> Self {
        Amount {
            memory_bytes: b.memory_bytes,
            cpu_millicores: b.cpu_millicores as u64,
            disk_io_bps: b.disk_io_bps,
            network_io_bps: b.network_io_bps,
        }
    }
}

impl Amount {
    /// Nothing.
    pub const ZERO: Amount = Amount {
        memory_bytes: 0,
        cpu_millicores: 0,
        disk_io_bps: 0,
        network_io_bps: 0,
    };

    /// Component-wise `self + o`, saturating.
    pub fn plus(&self, o: &Amount) -> Amount {
        Amount {
            memory_bytes: self.memory_bytes.saturating_add(o.memory_bytes),
            cpu_millicores: self.cpu_millicores.saturating_add(o.cpu_millicores),
            disk_io_bps: self.disk_io_bps.saturating_add(o.disk_io_bps),
            network_io_bps: self.network_io_bps.saturating_add(o.network_io_bps),
        }
    }

    /// Component-wise `self - o`, saturating at zero.
    pub fn minus(&self, o: &Amount) -> Amount {
        Amount {
            memory_bytes: self.memory_bytes.saturating_sub(o.memory_bytes),
            cpu_millicores: self.cpu_millicores.saturating_sub(o.cpu_millicores),
            disk_io_bps: self.disk_io_bps.saturating_sub(o.disk_io_bps),
            network_io_bps: self.network_io_bps.saturating_sub(o.network_io_bps),
        }
    }

    /// Whether every component is ≤ that of `o`.
    pub fn fits_in(&self, o: &Amount) -> bool {
        self.memory_bytes <= o.memory_bytes
            && self.cpu_millicores <= o.cpu_millicores
            && self.disk_io_bps <= o.disk_io_bps
            && self.network_io_bps <= o.network_io_bps
    }
}

/// What one agent holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Holding {
    /// The full budget of its running task.
    pub budget: Amount,
    /// What is currently reserved for it (the budget, or the retained part while suspended).
    pub held: Amount,
    /// Priority of the task (pressure suspends the lowest first).
    pub priority: Priority,
    /// Whether the holder is suspended.
    pub suspended: bool,
    /// Order of reservation (among equal priorities, the newest is suspended first).
    pub seq: u64,
}

/// Capacity and reservations.
#[derive(Debug)]
pub struct ResourcePool {
    capacity: Amount,
    allocated: Amount,
    holdings: HashMap<AgentId, Holding>,
    seq: u64,
}

/// Totals for status pages and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PoolUsage {
    /// Capacity.
    pub capacity: Amount,
    /// Sum of all holdings.
    pub allocated: Amount,
    /// Holders (running or suspended tasks).
    pub holders: usize,
}

impl ResourcePool {
    /// A pool with the given capacity.
    pub fn new(capacity: Amount) -> Self {
        ResourcePool {
            capacity,
            allocated: Amount::ZERO,
            holdings: HashMap::new(),
            seq: 0,
        }
    }

    /// Capacity from `[runtime] memory_capacity` and `cpu_capacity`; disk and network
    /// unlimited.
    pub fn from_config(rt: &symbi_config::RuntimeSection) -> Self {
        Self::new(Amount {
            memory_bytes: rt.memory_capacity.0,
            cpu_millicores: (rt.cpu_capacity * 1000.0).round() as u64,
            disk_io_bps: u64::MAX,
            network_io_bps: u64::MAX,
        })
    }

    /// Capacity.
    pub fn capacity(&self) -> Amount {
        self.capacity
    }

    /// Sum of all holdings.
    pub fn allocated(&self) -> Amount {
        self.allocated
    }

    /// Capacity not allocated.
    pub fn free(&self) -> Amount {
        self.capacity.minus(&self.allocated)
    }

    /// Totals.
    pub fn usage(&self) -> PoolUsage {
        PoolUsage {
            capacity: self.capacity,
            allocated: self.allocated,
            holders: self.holdings.len(),
        }
    }

    /// What `agent` holds.
    pub fn holding(&self, agent: AgentId) -> Option<Holding> {
        self.holdings.get(&agent).copied()
    }

    /// Whether a budget could ever run here.
    pub fn admissible(&self, budget: &ResourceBudget) -> Result<(), ResourceError> {
        let want = Amount::from(*budget);
        if !want.fits_in(&self.capacity) {
            return Err(ResourceError::ExceedsCapacity {
                requested: want,
                capacity: self.capacity,
            });
        }
        Ok(())
    }

    /// Whether `budget` fits in the free capacity now.
    pub fn fits(&self, budget: &ResourceBudget) -> bool {
        Amount::from(*budget).fits_in(&self.free())
    }

    /// Reserves `budget` for `agent`.
    pub fn try_reserve(
        &mut self,
        agent: AgentId,
        budget: &ResourceBudget,
        priority: Priority,
    ) -> Result<(), ResourceError> {
        if self.holdings.contains_key(&agent) {
            return Err(ResourceError::AlreadyHeld(agent));
        }
        self.admissible(budget)?;
        let want = Amount::from(*budget);
        let free = self.free();
        if !want.fits_in(&free) {
            return Err(ResourceError::Insufficient {
                requested: want,
                free,
            });
        }
        self.seq += 1;
        self.allocated = self.allocated.plus(&want);
        self.holdings.insert(
            agent,
            Holding {
                budget: want,
                held: want,
                priority,
                suspended: false,
                seq: self.seq,
            },
        );
        Ok(())
    }

    /// Returns everything `agent` holds; the exact amount is given back.
    pub fn release(&mut self, agent: AgentId) -> Option<Amount> {
        let h = self.holdings.remove(&agent)?;
        self.allocated = self.allocated.minus(&h.held);
        Some(h.held)
    }

    /// What suspending `agent` would give back if it retains `retained_memory` bytes.
    pub fn freed_by_suspension(&self, agent: AgentId, retained_memory: u64) -> Amount {
        match self.holdings.get(&agent) {
            Some(h) if !h.suspended => h.held.minus(&Self::retained(h, retained_memory)),
            _ => Amount::ZERO,
        }
    }

    fn retained(h: &Holding, retained_memory: u64) -> Amount {
        Amount {
            memory_bytes: retained_memory.min(h.budget.memory_bytes),
            ..Amount::ZERO
        }
    }

    /// Suspends `agent`'s holding: keeps `retained_memory` (capped at its budget) and gives
    /// the rest back. Returns what was freed.
    pub fn suspend(
        &mut self,
        agent: AgentId,
        retained_memory: u64,
    ) -> Result<Amount, ResourceError> {
        let h = self
            .holdings
            .get_mut(&agent)
            .ok_or(ResourceError::NotHeld(agent))?;
        if h.suspended {
            return Ok(Amount::ZERO);
        }
        let keep = Self::retained(h, retained_memory);
        let freed = h.held.minus(&keep);
        h.held = keep;
        h.suspended = true;
        self.allocated = self.allocated.minus(&freed);
        Ok(freed)
    }

    /// Whether a suspended holder could resume now.
    pub fn can_resume(&self, agent: AgentId) -> bool {
        match self.holdings.get(&agent) {
            Some(h) if h.suspended => h.budget.minus(&h.held).fits_in(&self.free()),
            _ => false,
        }
    }

    /// Re-reserves a suspended holder's full budget.
    pub fn try_resume(&mut self, agent: AgentId) -> Result<(), ResourceError> {
        let free = self.free();
        let h = self
            .holdings
            .get_mut(&agent)
            .ok_or(ResourceError::NotHeld(agent))?;
        if !h.suspended {
            return Ok(());
        }
        let more = h.budget.minus(&h.held);
        if !more.fits_in(&free) {
            return Err(ResourceError::Insufficient {
                requested: more,
                free,
            });
        }
        h.held = h.budget;
        h.suspended = false;
        self.seq += 1;
        h.seq = self.seq;
        self.allocated = self.allocated.plus(&more);
        Ok(())
    }

    /// Changes the capacity. Returns how far the allocation now exceeds it (zero if it
    /// fits); the caller relieves that by suspending [`Self::pressure_victims`].
    pub fn set_capacity(&mut self, capacity: Amount) -> Amount {
        self.capacity = capacity;
        self.allocated.minus(&capacity)
    }

    /// The running holders to suspend, lowest priority (then newest) first, so that the
    /// allocation fits the capacity again; `retained(agent)` says how much memory each would
    /// keep. Empty if it already fits. If suspending every running holder is not enough,
    /// all of them are named (retained memory of frozen tasks cannot be reclaimed without
    /// cancelling them, which is an operator's decision).
    pub fn pressure_victims(&self, retained: impl Fn(AgentId) -> u64) -> Vec<AgentId> {
        let mut over = self.allocated.minus(&self.capacity);
        if over == Amount::ZERO {
            return Vec::new();
        }
        let mut running: Vec<(&AgentId, &Holding)> =
            self.holdings.iter().filter(|(_, h)| !h.suspended).collect();
        running.sort_by_key(|(_, h)| (h.priority, std::cmp::Reverse(h.seq)));
        let mut victims = Vec::new();
        for (id, h) in running {
            if over == Amount::ZERO {
                break;
            }
            let freed = h.held.minus(&Self::retained(h, retained(*id)));
            // Only holders that free something the overflow needs are useful victims.
            let helps = (over.memory_bytes > 0 && freed.memory_bytes > 0)
                || (over.cpu_millicores > 0 && freed.cpu_millicores > 0)
                || (over.disk_io_bps > 0 && freed.disk_io_bps > 0)
                || (over.network_io_bps > 0 && freed.network_io_bps > 0);
            if helps {
                over = over.minus(&freed);
                victims.push(*id);
            }
        }
        victims
    }

    /// Checks the internal invariant (sum of holdings = allocated). For tests.
    pub fn check_invariant(&self) -> bool {
        let sum = self
            .holdings
            .values()
            .fold(Amount::ZERO, |a, h| a.plus(&h.held));
        sum == self.allocated
    }
}

/// Wall time is per task: the remaining part of a budget's `wall_time` after `used`.
pub fn remaining_wall_time(budget: &ResourceBudget, used: Duration) -> Duration {
    budget.wall_time.saturating_sub(used)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn budget(mem: u64, cpu: u32) -> ResourceBudget {
        ResourceBudget {
            memory_bytes: mem,
            cpu_millicores: cpu,
            disk_io_bps: 0,
            network_io_bps: 0,
            wall_time: Duration::from_secs(1),
        }
    }

    fn pool(mem: u64, cpu: u64) -> ResourcePool {
        ResourcePool::new(Amount {
            memory_bytes: mem,
            cpu_millicores: cpu,
            disk_io_bps: u64::MAX,
            network_io_bps: u64::MAX,
        })
    }

    #[test]
    fn admission_errors_are_typed() {
        let mut p = pool(100, 1000);
        let a = AgentId::new();
        assert!(matches!(
            p.try_reserve(a, &budget(200, 1), Priority::NORMAL),
            Err(ResourceError::ExceedsCapacity { .. })
        ));
        p.try_reserve(a, &budget(60, 500), Priority::NORMAL)
            .unwrap();
        assert_eq!(
            p.try_reserve(a, &budget(1, 1), Priority::NORMAL),
            Err(ResourceError::AlreadyHeld(a))
        );
        let b = AgentId::new();
        let e = p
            .try_reserve(b, &budget(60, 100), Priority::NORMAL)
            .unwrap_err();
        assert!(matches!(e, ResourceError::Insufficient { .. }));
        assert!(e.to_string().contains("not enough free capacity"), "{e}");
        assert_eq!(
            p.release(a),
            Some(Amount {
                memory_bytes: 60,
                cpu_millicores: 500,
                ..Amount::ZERO
            })
        );
        assert_eq!(p.allocated(), Amount::ZERO);
    }

    #[test]
    fn suspension_keeps_reported_memory_only() {
        let mut p = pool(100, 1000);
        let a = AgentId::new();
        p.try_reserve(a, &budget(80, 600), Priority::LOW).unwrap();
        assert_eq!(
            p.freed_by_suspension(a, 30),
            Amount {
                memory_bytes: 50,
                cpu_millicores: 600,
                ..Amount::ZERO
            }
        );
        p.suspend(a, 30).unwrap();
        assert_eq!(p.allocated().memory_bytes, 30);
        assert_eq!(p.allocated().cpu_millicores, 0);
        let b = AgentId::new();
        p.try_reserve(b, &budget(70, 1000), Priority::HIGH).unwrap();
        assert!(!p.can_resume(a));
        assert!(p.try_resume(a).is_err());
        p.release(b);
        p.try_resume(a).unwrap();
        assert_eq!(
            p.allocated(),
            Amount {
                memory_bytes: 80,
                cpu_millicores: 600,
                ..Amount::ZERO
            }
        );
    }

    #[test]
    fn pressure_picks_lowest_priority_newest_first() {
        let mut p = pool(1000, 3000);
        let (lo1, lo2, hi) = (AgentId::new(), AgentId::new(), AgentId::new());
        p.try_reserve(lo1, &budget(100, 1000), Priority::LOW)
            .unwrap();
        p.try_reserve(hi, &budget(100, 1000), Priority::HIGH)
            .unwrap();
        p.try_reserve(lo2, &budget(100, 1000), Priority::LOW)
            .unwrap();
        let over = p.set_capacity(Amount {
            memory_bytes: 1000,
            cpu_millicores: 2000,
            disk_io_bps: u64::MAX,
            network_io_bps: u64::MAX,
        });
        assert_eq!(over.cpu_millicores, 1000);
        assert_eq!(p.pressure_victims(|_| 0), vec![lo2]);
        p.set_capacity(Amount {
            memory_bytes: 1000,
            cpu_millicores: 900,
            disk_io_bps: u64::MAX,
            network_io_bps: u64::MAX,
        });
        assert_eq!(p.pressure_victims(|_| 0), vec![lo2, lo1, hi]);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Reserve(usize, u64, u32, u8),
        Release(usize),
        Suspend(usize, u64),
        Resume(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..12usize, 0..600u64, 0..1500u32, 0..4u8)
                .prop_map(|(a, m, c, p)| Op::Reserve(a, m, c, p)),
            (0..12usize).prop_map(Op::Release),
            (0..12usize, 0..600u64).prop_map(|(a, r)| Op::Suspend(a, r)),
            (0..12usize).prop_map(Op::Resume),
        ]
    }

    proptest! {
        /// Allocations never exceed capacity, the books always balance, and after every
        /// agent ends everything is returned exactly.
        #[test]
        fn allocations_never_exceed_capacity_and_all_is_returned(ops in proptest::collection::vec(op(), 1..200)) {
            let agents: Vec<AgentId> = (0..12).map(|_| AgentId::new()).collect();
            let mut p = pool(1000, 2000);
            let mut returned = Amount::ZERO;
            let mut taken = Amount::ZERO;
            for op in ops {
                match op {
                    Op::Reserve(a, m, c, pr) => {
                        let before = p.allocated();
                        match p.try_reserve(agents[a], &budget(m, c), Priority(pr * 25)) {
                            Ok(()) => taken = taken.plus(&p.allocated().minus(&before)),
                            Err(_) => prop_assert_eq!(p.allocated(), before),
                        }
                    }
                    Op::Release(a) => if let Some(r) = p.release(agents[a]) { returned = returned.plus(&r) },
                    Op::Suspend(a, r) => if let Ok(f) = p.suspend(agents[a], r) { returned = returned.plus(&f) },
                    Op::Resume(a) => {
                        let before = p.allocated();
                        if p.try_resume(agents[a]).is_ok() { taken = taken.plus(&p.allocated().minus(&before)) }
                    }
                }
                prop_assert!(p.allocated().fits_in(&p.capacity()), "over capacity: {:?}", p.usage());
                prop_assert!(p.check_invariant());
            }
            for a in &agents {
                if let Some(r) = p.release(*a) { returned = returned.plus(&r) }
            }
            prop_assert_eq!(p.allocated(), Amount::ZERO);
            prop_assert_eq!(p.usage().holders, 0);
            prop_assert_eq!(taken, returned);
        }

        /// Suspending the named victims always brings the allocation back under a shrunken
        /// capacity when running holders alone can achieve it.
        #[test]
        fn pressure_victims_relieve_the_overflow(
            holders in proptest::collection::vec((0..300u64, 0..1000u32, 0..4u8), 1..10),
            new_cpu in 0..3000u64,
        ) {
            let mut p = pool(3000, 10_000);
            let ids: Vec<AgentId> = holders.iter().map(|_| AgentId::new()).collect();
            for (id, (m, c, pr)) in ids.iter().zip(&holders) {
                p.try_reserve(*id, &budget(*m, *c), Priority(*pr)).unwrap();
            }
            p.set_capacity(Amount { memory_bytes: 3000, cpu_millicores: new_cpu, disk_io_bps: u64::MAX, network_io_bps: u64::MAX });
            for v in p.pressure_victims(|_| 0) {
                p.suspend(v, 0).unwrap();
            }
            prop_assert!(p.allocated().fits_in(&p.capacity()));
            prop_assert!(p.check_invariant());
        }
    }
}

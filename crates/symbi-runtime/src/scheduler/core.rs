//! The scheduler's decision core: queue, aging, placement, preemption, resource accounting.
//!
//! It is synchronous and does no I/O: every method runs under the scheduler's one lock and
//! returns [`Action`]s for the caller to carry out (hand a task to a shard, freeze or
//! unfreeze a running task). That keeps a decision a few hundred nanoseconds of pure
//! computation — what the `scheduling_decision` metric measures — and makes the core
//! testable and benchmarkable on its own.
//!
//! **Queue and aging.** The queue holds at most one entry per agent (tasks of one agent run
//! one after another; the rest wait in the agent's own FIFO). Entries are ordered by
//! *effective priority* `priority + waited / aging_step`. Because every waiting entry ages
//! at the same rate, comparing effective priorities never depends on the current time:
//! `e₁ > e₂ ⇔ p₁·step − t₁ > p₂·step − t₂`, where `t` is the enqueue time. So each entry
//! gets a fixed key `t − p·step` and the queue is an ordered map with O(log n) insert and
//! pop; a low-priority entry overtakes fresher high-priority ones after waiting
//! `(Δp)·step` — no starvation.
//!
//! **Strict order.** The head of the queue is started when it fits in the free capacity;
//! if it does not, nothing behind it starts (no backfilling), so a large task is never
//! starved by a stream of small ones.
//!
//! **Preemption** (strategy `priority` only). If the head does not fit, running tasks of
//! *strictly lower base priority* are suspended — lowest priority first, newest first among
//! equals — if, and only if, that frees enough for the head. A suspended task re-enters the
//! queue as a resume entry with its own priority and resumes when it fits again.
//!
//! **Placement** over worker shards: each shard has an equal share of the capacity.
//! `first_fit` takes the lowest-numbered shard whose share still fits the task, `best_fit`
//! the fitting shard with the least room left afterwards, `priority` the least-loaded shard.
//! When no share fits (the global capacity admitted the task, so this is fragmentation),
//! the least-loaded shard takes it.

use crate::resources::{Amount, ResourceError, ResourcePool};
use crate::scheduler::task::{TaskControl, TaskId};
use crate::spec::Priority;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use symbi_config::sections::runtime::{AdmissionPolicy, AllocationStrategy};
use symbi_types::state::TransitionCause;
use symbi_types::{AgentId, ResourceBudget};

/// A task waiting to start.
pub struct QueuedTask<P> {
    /// Its id.
    pub id: TaskId,
    /// Its agent.
    pub agent: AgentId,
    /// Its priority.
    pub priority: Priority,
    /// Its budget.
    pub budget: ResourceBudget,
    /// When it was submitted (queue-wait metric).
    pub submitted: Instant,
    /// Its control block.
    pub control: Arc<TaskControl>,
    /// What the caller needs to run it.
    pub payload: P,
}

/// Something the caller must do after a decision.
pub enum Action<P> {
    /// Start `task` on `shard`.
    Dispatch {
        /// The shard.
        shard: usize,
        /// The task.
        task: QueuedTask<P>,
    },
    /// The task's resources were given to another; freeze it.
    Freeze {
        /// The task.
        control: Arc<TaskControl>,
        /// Preempted or resource pressure.
        cause: TransitionCause,
    },
    /// The task got its resources back; let it run.
    Unfreeze {
        /// The task.
        control: Arc<TaskControl>,
    },
    /// The task was cancelled while queued; report it.
    Dropped {
        /// The task.
        task: QueuedTask<P>,
    },
}

/// Why a submission was refused.
pub enum Rejection<P> {
    /// The budget does not fit in the capacity at all, or (admission `reject`) not now.
    Resources(ResourceError, Box<QueuedTask<P>>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct QueueKey {
    rank: i64,
    seq: u64,
}

enum Entry<P> {
    Start(QueuedTask<P>),
    Resume { agent: AgentId },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Frozen {
    /// By the scheduler; a resume entry is queued.
    Auto,
    /// By an operator or a policy violation; resumes only when asked.
    Manual,
}

struct Running {
    id: TaskId,
    priority: Priority,
    shard: usize,
    budget: Amount,
    seq: u64,
    frozen: Option<Frozen>,
    control: Arc<TaskControl>,
}

struct AgentSched<P> {
    pending: VecDeque<QueuedTask<P>>,
    running: Option<Running>,
    queued: Option<QueueKey>,
    blocked: bool,
}

impl<P> Default for AgentSched<P> {
    fn default() -> Self {
        AgentSched {
            pending: VecDeque::new(),
            running: None,
            queued: None,
            blocked: false,
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct ShardLoad {
    active: u32,
    cpu: u64,
    memory: u64,
}

/// Scheduler settings.
#[derive(Clone, Copy, Debug)]
pub struct CoreConfig {
    /// Worker shards.
    pub shards: usize,
    /// Placement strategy.
    pub strategy: AllocationStrategy,
    /// Queue or refuse work that does not fit now.
    pub admission: AdmissionPolicy,
    /// Waiting this long raises a queued entry's effective priority by one.
    pub aging_step: Duration,
}

/// Counts for status pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CoreCounts {
    /// Entries in the queue (start and resume).
    pub queued: usize,
    /// Tasks waiting behind their agent's current task.
    pub waiting_behind_agent: usize,
    /// Tasks running (not frozen).
    pub running: usize,
    /// Tasks frozen (suspended).
    pub suspended: usize,
}

/// The decision core. See the module documentation.
pub struct SchedCore<P> {
    config: CoreConfig,
    epoch: Instant,
    queue: BTreeMap<QueueKey, Entry<P>>,
    agents: HashMap<AgentId, AgentSched<P>>,
    victims: BTreeSet<(Priority, Reverse<u64>, AgentId)>,
    shards: Vec<ShardLoad>,
    pool: ResourcePool,
    seq: u64,
    running: usize,
    frozen: usize,
    waiting: usize,
}

impl<P> SchedCore<P> {
    /// An empty core over `pool`.
    pub fn new(config: CoreConfig, pool: ResourcePool) -> Self {
        let n = config.shards.max(1);
        SchedCore {
            config: CoreConfig {
                shards: n,
                ..config
            },
            epoch: Instant::now(),
            queue: BTreeMap::new(),
            agents: HashMap::new(),
            victims: BTreeSet::new(),
            shards: vec![ShardLoad::default(); n],
            pool,
            seq: 0,
            running: 0,
            frozen: 0,
            waiting: 0,
        }
    }

    /// The resource pool.
    pub fn pool(&self) -> &ResourcePool {
        &self.pool
    }

    /// Counts.
    pub fn counts(&self) -> CoreCounts {
        CoreCounts {
            queued: self.queue.len(),
            waiting_behind_agent: self.waiting,
            running: self.running,
            suspended: self.frozen,
        }
    }

    /// Tasks of `agent` that are queued, waiting, running or suspended.
    pub fn agent_tasks(&self, agent: AgentId) -> u32 {
        self.agents.get(&agent).map_or(0, |a| {
            a.pending.len() as u32 + a.running.is_some() as u32 + a.queued.is_some() as u32
                - matches!((&a.running, a.queued), (Some(_), Some(_))) as u32
        })
    }

    /// The control block of `agent`'s current task.
    pub fn current_task(&self, agent: AgentId) -> Option<(TaskId, Arc<TaskControl>, bool)> {
        self.agents
            .get(&agent)
            .and_then(|a| a.running.as_ref())
            .map(|r| (r.id, r.control.clone(), r.frozen.is_some()))
    }

    /// Whether no task is running or suspended.
    pub fn is_idle(&self) -> bool {
        self.running == 0 && self.frozen == 0
    }

    fn key(&mut self, now: Instant, priority: Priority) -> QueueKey {
        self.seq += 1;
        let t = now.saturating_duration_since(self.epoch).as_nanos() as i64;
        let step = self
            .config
            .aging_step
            .as_nanos()
            .min(i64::MAX as u128 / 256) as i64;
        QueueKey {
            rank: t - priority.0 as i64 * step,
            seq: self.seq,
        }
    }

    /// Accepts a task: queued (or behind its agent's current task), or refused by admission.
    pub fn submit(&mut self, task: QueuedTask<P>, now: Instant) -> Result<(), Rejection<P>> {
        if let Err(e) = self.pool.admissible(&task.budget) {
            return Err(Rejection::Resources(e, Box::new(task)));
        }
        if self.config.admission == AdmissionPolicy::Reject && !self.pool.fits(&task.budget) {
            let e = ResourceError::Insufficient {
                requested: task.budget.into(),
                free: self.pool.free(),
            };
            return Err(Rejection::Resources(e, Box::new(task)));
        }
        let a = self.agents.entry(task.agent).or_default();
        if a.running.is_some() || a.queued.is_some() || a.blocked {
            a.pending.push_back(task);
            self.waiting += 1;
        } else {
            let prio = task.priority;
            let agent = task.agent;
            let key = self.key(now, prio);
            self.agents.get_mut(&agent).expect("just inserted").queued = Some(key);
            self.queue.insert(key, Entry::Start(task));
        }
        Ok(())
    }

    /// Starts, resumes and preempts as much as capacity allows. Each decision's latency is
    /// passed to `observe`.
    pub fn decide(
        &mut self,
        now: Instant,
        out: &mut Vec<Action<P>>,
        mut observe: impl FnMut(Duration),
    ) {
        loop {
            let t0 = Instant::now();
            let Some(mut slot) = self.queue.first_entry() else {
                break;
            };
            match slot.get_mut() {
                Entry::Start(t) if t.control.is_cancelled() => {
                    let Entry::Start(task) = slot.remove() else {
                        unreachable!()
                    };
                    self.leave_queue(task.agent);
                    out.push(Action::Dropped { task });
                    continue;
                }
                Entry::Start(t) => {
                    let (budget, prio, agent) = (t.budget, t.priority, t.agent);
                    if !(self.pool.fits(&budget)
                        || (self.config.strategy == AllocationStrategy::Priority
                            && self.preempt_for(Amount::from(budget), prio, now, out)))
                    {
                        break;
                    }
                    let Some((_, Entry::Start(task))) = self.queue.pop_first() else {
                        unreachable!()
                    };
                    self.pool
                        .try_reserve(agent, &budget, prio)
                        .expect("checked to fit");
                    let shard = self.place(&Amount::from(budget));
                    self.load(shard, &Amount::from(budget), true);
                    self.seq += 1;
                    let seq = self.seq;
                    let a = self
                        .agents
                        .get_mut(&agent)
                        .expect("queued agent has an entry");
                    a.queued = None;
                    a.running = Some(Running {
                        id: task.id,
                        priority: prio,
                        shard,
                        budget: budget.into(),
                        seq,
                        frozen: None,
                        control: task.control.clone(),
                    });
                    self.victims.insert((prio, Reverse(seq), agent));
                    self.running += 1;
                    out.push(Action::Dispatch { shard, task });
                    observe(t0.elapsed());
                }
                Entry::Resume { agent } => {
                    let agent = *agent;
                    let (prio, budget) = {
                        let r = self.agents[&agent]
                            .running
                            .as_ref()
                            .expect("resume entry has a task");
                        (r.priority, r.budget)
                    };
                    if !self.pool.can_resume(agent) {
                        let held = self.pool.holding(agent).map(|h| h.held).unwrap_or_default();
                        let need = budget.minus(&held);
                        if !(self.config.strategy == AllocationStrategy::Priority
                            && self.preempt_for(need, prio, now, out))
                        {
                            break;
                        }
                    }
                    self.queue.pop_first();
                    self.pool.try_resume(agent).expect("checked to fit");
                    self.seq += 1;
                    let seq = self.seq;
                    let a = self
                        .agents
                        .get_mut(&agent)
                        .expect("resume entry has an agent");
                    a.queued = None;
                    let r = a.running.as_mut().expect("resume entry has a task");
                    r.frozen = None;
                    r.seq = seq;
                    let (shard, control) = (r.shard, r.control.clone());
                    self.load(shard, &budget, true);
                    self.victims.insert((prio, Reverse(seq), agent));
                    self.frozen -= 1;
                    self.running += 1;
                    out.push(Action::Unfreeze { control });
                    observe(t0.elapsed());
                }
            }
        }
    }

    fn leave_queue(&mut self, agent: AgentId) {
        let Some(a) = self.agents.get_mut(&agent) else {
            return;
        };
        a.queued = None;
        self.promote(agent, Instant::now());
    }

    /// Moves the agent's next waiting task into the queue if the agent is free.
    fn promote(&mut self, agent: AgentId, now: Instant) {
        let Some(a) = self.agents.get_mut(&agent) else {
            return;
        };
        if a.running.is_some() || a.queued.is_some() || a.blocked {
            return;
        }
        match a.pending.pop_front() {
            Some(task) => {
                self.waiting -= 1;
                let key = self.key(now, task.priority);
                self.agents.get_mut(&agent).expect("present").queued = Some(key);
                self.queue.insert(key, Entry::Start(task));
            }
            None => {
                self.agents.remove(&agent);
            }
        }
    }

    fn load(&mut self, shard: usize, b: &Amount, add: bool) {
        let s = &mut self.shards[shard];
        if add {
            s.active += 1;
            s.cpu += b.cpu_millicores;
            s.memory += b.memory_bytes;
        } else {
            s.active -= 1;
            s.cpu -= b.cpu_millicores;
            s.memory -= b.memory_bytes;
        }
    }

    fn place(&self, b: &Amount) -> usize {
        let n = self.shards.len() as u64;
        let cap = self.pool.capacity();
        let (cpu_share, mem_share) = (
            (cap.cpu_millicores / n).max(1),
            (cap.memory_bytes / n).max(1),
        );
        let fits = |s: &ShardLoad| {
            s.cpu + b.cpu_millicores <= cpu_share && s.memory + b.memory_bytes <= mem_share
        };
        let least_loaded = || {
            (0..self.shards.len())
                .min_by_key(|&i| (self.shards[i].active, self.shards[i].cpu, i))
                .expect("at least one shard")
        };
        match self.config.strategy {
            AllocationStrategy::FirstFit => self
                .shards
                .iter()
                .position(fits)
                .unwrap_or_else(least_loaded),
            AllocationStrategy::BestFit => (0..self.shards.len())
                .filter(|&i| fits(&self.shards[i]))
                .min_by_key(|&i| {
                    let s = &self.shards[i];
                    (
                        cpu_share - s.cpu - b.cpu_millicores,
                        mem_share - s.memory - b.memory_bytes,
                        i,
                    )
                })
                .unwrap_or_else(least_loaded),
            AllocationStrategy::Priority => least_loaded(),
        }
    }

    /// Suspends strictly-lower-priority running tasks if that frees `need`.
    fn preempt_for(
        &mut self,
        need: Amount,
        prio: Priority,
        now: Instant,
        out: &mut Vec<Action<P>>,
    ) -> bool {
        let free = self.pool.free();
        let mut gained = Amount::ZERO;
        let mut chosen = Vec::new();
        for &(p, _, agent) in &self.victims {
            if p >= prio {
                break;
            }
            let retained = self.agents[&agent]
                .running
                .as_ref()
                .map_or(0, |r| r.control.reported_memory());
            let freed = self.pool.freed_by_suspension(agent, retained);
            gained = gained.plus(&freed);
            chosen.push((agent, retained));
            if need.fits_in(&free.plus(&gained)) {
                for (agent, retained) in chosen {
                    self.freeze(
                        agent,
                        retained,
                        Frozen::Auto,
                        TransitionCause::Preempted,
                        now,
                        out,
                    );
                }
                return true;
            }
        }
        false
    }

    fn freeze(
        &mut self,
        agent: AgentId,
        retained: u64,
        kind: Frozen,
        cause: TransitionCause,
        now: Instant,
        out: &mut Vec<Action<P>>,
    ) {
        self.pool
            .suspend(agent, retained)
            .expect("running task holds resources");
        let a = self.agents.get_mut(&agent).expect("running agent");
        let r = a.running.as_mut().expect("running task");
        let (prio, seq, shard, budget) = (r.priority, r.seq, r.shard, r.budget);
        r.frozen = Some(kind);
        let control = r.control.clone();
        self.victims.remove(&(prio, Reverse(seq), agent));
        self.load(shard, &budget, false);
        self.running -= 1;
        self.frozen += 1;
        if kind == Frozen::Auto {
            let key = self.key(now, prio);
            self.agents.get_mut(&agent).expect("running agent").queued = Some(key);
            self.queue.insert(key, Entry::Resume { agent });
        }
        out.push(Action::Freeze { control, cause });
    }

    /// The task of `agent` finished (any outcome). Its resources are returned; if
    /// `block`, the agent's further tasks wait until [`Self::unblock`].
    pub fn finish(&mut self, agent: AgentId, task: TaskId, block: bool, now: Instant) {
        let Some(a) = self.agents.get_mut(&agent) else {
            return;
        };
        let Some(r) = a.running.take_if(|r| r.id == task) else {
            return;
        };
        a.blocked |= block;
        // A resume entry for a task that finished before it noticed its freeze.
        if let Some(key) = a
            .queued
            .take_if(|k| matches!(self.queue.get(k), Some(Entry::Resume { .. })))
        {
            self.queue.remove(&key);
        }
        self.pool.release(agent);
        match r.frozen {
            None => {
                self.victims.remove(&(r.priority, Reverse(r.seq), agent));
                self.load(r.shard, &r.budget, false);
                self.running -= 1;
            }
            Some(_) => self.frozen -= 1,
        }
        self.promote(agent, now);
    }

    /// Lets a blocked agent (policy violation) run its waiting tasks again.
    pub fn unblock(&mut self, agent: AgentId, now: Instant) {
        if let Some(a) = self.agents.get_mut(&agent) {
            a.blocked = false;
            self.promote(agent, now);
        }
    }

    /// Freezes `agent`'s running task for `cause` until [`Self::resume`]; returns its control.
    pub fn suspend(
        &mut self,
        agent: AgentId,
        cause: TransitionCause,
        now: Instant,
        out: &mut Vec<Action<P>>,
    ) -> bool {
        let Some(r) = self.agents.get(&agent).and_then(|a| a.running.as_ref()) else {
            return false;
        };
        if r.frozen.is_some() {
            return false;
        }
        let retained = r.control.reported_memory();
        self.freeze(agent, retained, Frozen::Manual, cause, now, out);
        true
    }

    /// Queues a manually suspended task for resumption (it resumes when it fits).
    pub fn resume(&mut self, agent: AgentId, now: Instant) -> bool {
        let Some(a) = self.agents.get_mut(&agent) else {
            return false;
        };
        let Some(r) = a.running.as_mut() else {
            return false;
        };
        if r.frozen != Some(Frozen::Manual) {
            return false;
        }
        r.frozen = Some(Frozen::Auto);
        let prio = r.priority;
        let key = self.key(now, prio);
        self.agents.get_mut(&agent).expect("present").queued = Some(key);
        self.queue.insert(key, Entry::Resume { agent });
        true
    }

    /// Removes every task of `agent` that has not started; returns them. The running task,
    /// if any, is left to the caller to cancel.
    pub fn purge_agent(&mut self, agent: AgentId) -> Vec<QueuedTask<P>> {
        let Some(a) = self.agents.get_mut(&agent) else {
            return Vec::new();
        };
        let mut out: Vec<QueuedTask<P>> = a.pending.drain(..).collect();
        self.waiting -= out.len();
        a.blocked = true;
        if let Some(key) = a.queued
            && matches!(self.queue.get(&key), Some(Entry::Start(_)))
        {
            a.queued = None;
            if let Some(Entry::Start(t)) = self.queue.remove(&key) {
                out.push(t);
            }
        }
        if a.running.is_none() && a.queued.is_none() {
            self.agents.remove(&agent);
        }
        out
    }

    /// Drops all scheduler state of an agent that has no running task (after termination).
    pub fn forget(&mut self, agent: AgentId) {
        if self.agents.get(&agent).is_some_and(|a| a.running.is_none()) {
            let a = self.agents.remove(&agent).expect("present");
            self.waiting -= a.pending.len();
            if let Some(k) = a.queued {
                self.queue.remove(&k);
            }
        }
    }

    /// Removes every task that has not started (shutdown); running and suspended tasks stay.
    pub fn purge_all(&mut self) -> Vec<QueuedTask<P>> {
        let agents: Vec<AgentId> = self.agents.keys().copied().collect();
        agents
            .into_iter()
            .flat_map(|a| self.purge_agent(a))
            .collect()
    }

    /// Control blocks of every running or suspended task.
    pub fn all_current(&self) -> Vec<Arc<TaskControl>> {
        self.agents
            .values()
            .filter_map(|a| a.running.as_ref().map(|r| r.control.clone()))
            .collect()
    }

    /// Changes the capacity; if the allocation no longer fits, suspends the lowest-priority
    /// running tasks (cause `resource_pressure`) and queues them for resumption.
    pub fn set_capacity(
        &mut self,
        capacity: Amount,
        now: Instant,
        out: &mut Vec<Action<P>>,
    ) -> usize {
        self.pool.set_capacity(capacity);
        let agents = &self.agents;
        let victims = self.pool.pressure_victims(|a| {
            agents
                .get(&a)
                .and_then(|x| x.running.as_ref())
                .map_or(0, |r| r.control.reported_memory())
        });
        for agent in &victims {
            let retained = self.agents[agent]
                .running
                .as_ref()
                .map_or(0, |r| r.control.reported_memory());
            self.freeze(
                *agent,
                retained,
                Frozen::Auto,
                TransitionCause::ResourcePressure,
                now,
                out,
            );
        }
        victims.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(cpu: u32) -> ResourceBudget {
        ResourceBudget {
            memory_bytes: 1 << 20,
            cpu_millicores: cpu,
            disk_io_bps: 0,
            network_io_bps: 0,
            wall_time: Duration::from_secs(10),
        }
    }

    fn core(strategy: AllocationStrategy, cpu: u64, shards: usize) -> SchedCore<u32> {
        let pool = ResourcePool::new(Amount {
            memory_bytes: 1 << 30,
            cpu_millicores: cpu,
            disk_io_bps: u64::MAX,
            network_io_bps: u64::MAX,
        });
        SchedCore::new(
            CoreConfig {
                shards,
                strategy,
                admission: AdmissionPolicy::Queue,
                aging_step: Duration::from_millis(100),
            },
            pool,
        )
    }

    fn task(id: u64, agent: AgentId, prio: Priority, cpu: u32, at: Instant) -> QueuedTask<u32> {
        QueuedTask {
            id: TaskId(id),
            agent,
            priority: prio,
            budget: budget(cpu),
            submitted: at,
            control: Arc::default(),
            payload: id as u32,
        }
    }

    fn started(out: &mut Vec<Action<u32>>) -> Vec<u32> {
        out.drain(..)
            .filter_map(|a| match a {
                Action::Dispatch { task, .. } => Some(task.payload),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn higher_priority_starts_first_and_one_task_per_agent_runs() {
        let mut c = core(AllocationStrategy::FirstFit, 1000, 2);
        let now = Instant::now();
        let (a, b) = (AgentId::new(), AgentId::new());
        // Fill the capacity so everything queues.
        c.submit(task(1, AgentId::new(), Priority::NORMAL, 1000, now), now)
            .ok();
        let mut out = Vec::new();
        c.decide(now, &mut out, |_| {});
        assert_eq!(started(&mut out), vec![1]);
        c.submit(task(2, a, Priority::LOW, 100, now), now).ok();
        c.submit(task(3, b, Priority::HIGH, 100, now), now).ok();
        c.submit(task(4, b, Priority::CRITICAL, 100, now), now).ok();
        assert_eq!(c.counts().queued, 2);
        assert_eq!(c.counts().waiting_behind_agent, 1);
        assert_eq!(c.agent_tasks(b), 2);
        c.decide(now, &mut out, |_| {});
        assert!(started(&mut out).is_empty());
        let first = c
            .agents
            .keys()
            .find(|k| **k != a && **k != b)
            .copied()
            .unwrap();
        c.finish(first, TaskId(1), false, now);
        c.decide(now, &mut out, |_| {});
        // b's first task, then a's; b's second waits for b's first to finish.
        assert_eq!(started(&mut out), vec![3, 2]);
        c.finish(b, TaskId(3), false, now);
        c.decide(now, &mut out, |_| {});
        assert_eq!(started(&mut out), vec![4]);
    }

    #[test]
    fn aging_lets_old_low_priority_work_overtake_fresh_high_priority_work() {
        let mut c = core(AllocationStrategy::FirstFit, 100, 1);
        let t0 = Instant::now();
        let mut out = Vec::new();
        c.submit(task(1, AgentId::new(), Priority::NORMAL, 100, t0), t0)
            .ok();
        c.decide(t0, &mut out, |_| {});
        let blocker = c.agents.keys().copied().next().unwrap();
        // LOW (25) waits from t0; HIGH (75) arrives 6 s later: 50 levels × 100 ms = 5 s.
        c.submit(task(2, AgentId::new(), Priority::LOW, 100, t0), t0)
            .ok();
        let t1 = t0 + Duration::from_secs(6);
        c.submit(task(3, AgentId::new(), Priority::HIGH, 100, t1), t1)
            .ok();
        c.finish(blocker, TaskId(1), false, t1);
        out.clear();
        c.decide(t1, &mut out, |_| {});
        assert_eq!(started(&mut out), vec![2]);
    }

    #[test]
    fn preemption_suspends_lowest_priority_and_resumes_it_later() {
        let mut c = core(AllocationStrategy::Priority, 1000, 2);
        let now = Instant::now();
        let (lo, mid, hi) = (AgentId::new(), AgentId::new(), AgentId::new());
        let mut out = Vec::new();
        c.submit(task(1, lo, Priority::LOW, 500, now), now).ok();
        c.submit(task(2, mid, Priority::NORMAL, 500, now), now).ok();
        c.decide(now, &mut out, |_| {});
        assert_eq!(started(&mut out).len(), 2);
        c.submit(task(3, hi, Priority::HIGH, 500, now), now).ok();
        c.decide(now, &mut out, |_| {});
        let frozen = out
            .iter()
            .filter(|a| {
                matches!(
                    a,
                    Action::Freeze {
                        cause: TransitionCause::Preempted,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(frozen, 1);
        assert_eq!(started(&mut out), vec![3]);
        assert_eq!(
            c.counts(),
            CoreCounts {
                queued: 1,
                waiting_behind_agent: 0,
                running: 2,
                suspended: 1
            }
        );
        assert!(
            c.current_task(lo).unwrap().2,
            "the LOW task is the one frozen"
        );
        assert!(c.pool().allocated().fits_in(&c.pool().capacity()));
        // An equal-priority task does not preempt.
        c.submit(task(4, AgentId::new(), Priority::NORMAL, 500, now), now)
            .ok();
        c.decide(now, &mut out, |_| {});
        assert!(out.is_empty());
        c.finish(hi, TaskId(3), false, now);
        c.decide(now, &mut out, |_| {});
        // The resume entry of LOW (queued first) wins only after aging; NORMAL (task 4) goes first.
        assert_eq!(started(&mut out), vec![4]);
        c.finish(mid, TaskId(2), false, now);
        c.decide(now, &mut out, |_| {});
        assert!(matches!(out.as_slice(), [Action::Unfreeze { .. }]));
        assert!(!c.current_task(lo).unwrap().2);
    }

    #[test]
    fn strategies_place_on_shards() {
        let now = Instant::now();
        let mut out = Vec::new();
        let shard_of = |out: &mut Vec<Action<u32>>| match out.pop() {
            Some(Action::Dispatch { shard, .. }) => shard,
            _ => panic!(),
        };
        // 4 shards × 250 millicores.
        let mut c = core(AllocationStrategy::FirstFit, 1000, 4);
        for (i, cpu) in [(1, 100), (2, 100), (3, 100)] {
            c.submit(task(i, AgentId::new(), Priority::NORMAL, cpu, now), now)
                .ok();
            c.decide(now, &mut out, |_| {});
            assert_eq!(
                shard_of(&mut out),
                if i < 3 { 0 } else { 1 },
                "first fit, task {i}"
            );
        }
        let mut c = core(AllocationStrategy::BestFit, 1000, 4);
        c.submit(task(1, AgentId::new(), Priority::NORMAL, 200, now), now)
            .ok();
        c.decide(now, &mut out, |_| {});
        assert_eq!(shard_of(&mut out), 0);
        c.submit(task(2, AgentId::new(), Priority::NORMAL, 50, now), now)
            .ok();
        c.decide(now, &mut out, |_| {});
        assert_eq!(
            shard_of(&mut out),
            0,
            "best fit fills the fullest shard that still fits"
        );
        let mut c = core(AllocationStrategy::Priority, 1000, 4);
        for i in 0..4 {
            c.submit(task(i, AgentId::new(), Priority::NORMAL, 10, now), now)
                .ok();
            c.decide(now, &mut out, |_| {});
            assert_eq!(shard_of(&mut out), i as usize, "least loaded");
        }
    }

    #[test]
    fn admission_reject_and_impossible_budgets() {
        let mut c = core(AllocationStrategy::FirstFit, 1000, 1);
        let now = Instant::now();
        assert!(matches!(
            c.submit(task(1, AgentId::new(), Priority::NORMAL, 2000, now), now),
            Err(Rejection::Resources(
                ResourceError::ExceedsCapacity { .. },
                _
            ))
        ));
        c.config.admission = AdmissionPolicy::Reject;
        c.submit(task(2, AgentId::new(), Priority::NORMAL, 800, now), now)
            .ok()
            .unwrap();
        let mut out = Vec::new();
        c.decide(now, &mut out, |_| {});
        assert!(matches!(
            c.submit(task(3, AgentId::new(), Priority::NORMAL, 300, now), now),
            Err(Rejection::Resources(ResourceError::Insufficient { .. }, _))
        ));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Submit(usize, u8, u32),
        Finish(usize),
        Suspend(usize),
        Resume(usize),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            (0..8usize, 0..4u8, 0..1200u32).prop_map(|(a, p, c)| Op::Submit(a, p * 25, c)),
            (0..8usize).prop_map(Op::Finish),
            (0..8usize).prop_map(Op::Suspend),
            (0..8usize).prop_map(Op::Resume),
        ]
    }

    proptest::proptest! {
        /// Whatever the sequence of submissions, completions, preemptions, suspensions and
        /// resumptions: reservations never exceed capacity, the books balance, and once every
        /// task has ended all resources are back and no scheduler state is left.
        #[test]
        fn scheduling_never_overcommits_and_returns_everything(ops in proptest::collection::vec(op(), 1..120)) {
            let mut c = core(AllocationStrategy::Priority, 1000, 3);
            let agents: Vec<AgentId> = (0..8).map(|_| AgentId::new()).collect();
            let mut current: Vec<(AgentId, TaskId)> = Vec::new();
            let mut out = Vec::new();
            let mut next = 0u64;
            let now = Instant::now();
            let collect = |out: &mut Vec<Action<u32>>, current: &mut Vec<(AgentId, TaskId)>| {
                for a in out.drain(..) {
                    if let Action::Dispatch { task, .. } = a { current.push((task.agent, task.id)); }
                }
            };
            for op in ops {
                match op {
                    Op::Submit(a, p, cpu) => {
                        next += 1;
                        let _ = c.submit(task(next, agents[a], Priority(p), cpu, now), now);
                    }
                    Op::Finish(k) => if !current.is_empty() {
                        let (a, t) = current.remove(k % current.len());
                        c.finish(a, t, false, now);
                    },
                    Op::Suspend(a) => { c.suspend(agents[a], TransitionCause::ResourcePressure, now, &mut out); }
                    Op::Resume(a) => { c.resume(agents[a], now); }
                }
                c.decide(now, &mut out, |_| {});
                collect(&mut out, &mut current);
                proptest::prop_assert!(c.pool().allocated().fits_in(&c.pool().capacity()), "{:?}", c.pool().usage());
                proptest::prop_assert!(c.pool().check_invariant());
                let k = c.counts();
                proptest::prop_assert_eq!(k.running + k.suspended, current.len());
            }
            // Let everything finish (manually suspended tasks are resumed first).
            let mut guard = 0;
            while !current.is_empty() || c.counts().queued > 0 || c.counts().waiting_behind_agent > 0 {
                guard += 1;
                proptest::prop_assert!(guard < 10_000, "did not drain: {:?}", c.counts());
                for a in &agents { c.resume(*a, now); }
                if let Some((a, t)) = current.pop() { c.finish(a, t, false, now); }
                c.decide(now, &mut out, |_| {});
                collect(&mut out, &mut current);
            }
            proptest::prop_assert!(c.is_idle());
            proptest::prop_assert_eq!(c.pool().allocated(), Amount::ZERO);
            proptest::prop_assert!(c.agents.is_empty());
            proptest::prop_assert!(c.victims.is_empty());
        }
    }

    #[test]
    fn capacity_shrink_suspends_lowest_priority_for_pressure() {
        let mut c = core(AllocationStrategy::FirstFit, 1000, 1);
        let now = Instant::now();
        let (lo, hi) = (AgentId::new(), AgentId::new());
        let mut out = Vec::new();
        c.submit(task(1, lo, Priority::LOW, 400, now), now).ok();
        c.submit(task(2, hi, Priority::HIGH, 400, now), now).ok();
        c.decide(now, &mut out, |_| {});
        out.clear();
        let n = c.set_capacity(
            Amount {
                memory_bytes: 1 << 30,
                cpu_millicores: 500,
                disk_io_bps: u64::MAX,
                network_io_bps: u64::MAX,
            },
            now,
            &mut out,
        );
        assert_eq!(n, 1);
        assert!(matches!(
            out.as_slice(),
            [Action::Freeze {
                cause: TransitionCause::ResourcePressure,
                ..
            }]
        ));
        assert!(c.current_task(lo).unwrap().2);
        out.clear();
        c.finish(hi, TaskId(2), false, now);
        c.decide(now, &mut out, |_| {});
        assert!(matches!(out.as_slice(), [Action::Unfreeze { .. }]));
        c.finish(lo, TaskId(1), false, now);
        assert!(c.is_idle());
        assert_eq!(c.pool().allocated(), Amount::ZERO);
        assert!(
            c.agents.is_empty(),
            "idle agents leave no trace in the scheduler"
        );
    }
}

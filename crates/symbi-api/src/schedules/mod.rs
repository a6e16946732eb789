//! The schedule engine: DSL `schedule` items and API-created jobs run agents on cron
//! patterns or at one instant (GRAMMAR §4.11.1, API-CONTRACT §6).
//!
//! * Timing: [`timing`] (cron on the wall clock of an IANA zone, daylight-saving rules).
//! * Persistence: [`store`] — one JSON file per job under `<data dir>/schedules/`, written
//!   atomically; jobs, their cursors, counters and history survive a restart.
//! * Missed runs (the runtime was down when a run was due): `skip` (default) records a
//!   `schedule_missed` audit event and waits for the next time; `run_once` runs once at
//!   start-up however many were missed.
//! * Overlap: a run that is due while the previous run of the same job still runs is
//!   skipped, recorded in the history as `Skipped` and audited (`schedule_skipped`). So is a
//!   run that would exceed the global `max_concurrent`.
//! * Each run executes the agent through [`AgentInvoker`] with the trigger
//!   `{kind: "schedule", name, scheduled_at}`; its history record goes
//!   `Running` → `Succeeded` / `Failed` / `TimedOut`.
//! * A recurring job whose runs fail `dead_letter_after` times in a row moves to
//!   `DeadLetter` and stops; `resume` re-activates it. A one-shot job ends `Completed` or
//!   `Failed`.
//!
//! The engine is one tokio task that sleeps until the earliest due time (or until a job
//! changes); an engine without active jobs does nothing.

pub mod store;
pub mod timing;

use crate::invoke::{AgentInvoker, Invocation};
use chrono::{DateTime, NaiveDateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use store::Store;
use symbi_types::{EventDraft, EventSink};
use timing::{Fire, Timing, TimingError};
use tokio::sync::Notify;
use uuid::Uuid;

/// Runs kept per job (the history endpoint's cap is 1000; older runs are dropped).
pub const HISTORY_CAP: usize = 500;

/// Audit event type of a skipped run.
pub const SCHEDULE_SKIPPED: &str = "schedule_skipped";

/// Status of a job (API-CONTRACT §3.3, PascalCase on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum JobStatus {
    /// Runs when due.
    Active,
    /// Paused by an operator.
    Paused,
    /// A one-shot job that ran (or whose time passed).
    Completed,
    /// A one-shot job whose run failed.
    Failed,
    /// Stopped after too many consecutive failures.
    DeadLetter,
}

/// Status of one run (API-CONTRACT §3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum RunStatus {
    /// Executing.
    Running,
    /// Returned a value.
    Succeeded,
    /// Failed.
    Failed,
    /// A time budget ran out.
    TimedOut,
    /// Not run (overlap, concurrency limit, or the agent could not be started).
    Skipped,
}

/// What to do with runs missed while the runtime was down.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissedPolicy {
    /// Record `schedule_missed` and wait for the next time.
    #[default]
    Skip,
    /// Run once at start-up.
    RunOnce,
}

/// Where a job comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobSource {
    /// `POST /api/v1/schedules`.
    Api,
    /// A DSL `schedule` item.
    Dsl {
        /// The program file.
        file: String,
    },
}

/// One run in the history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Run id.
    pub run_id: Uuid,
    /// When the run was due (or triggered).
    pub scheduled_at: DateTime<Utc>,
    /// When it started (for skipped runs: when it was skipped).
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub completed_at: Option<DateTime<Utc>>,
    /// Status.
    pub status: RunStatus,
    /// Error message of a failed or skipped run.
    pub error: Option<String>,
    /// Duration of a finished run.
    pub execution_time_ms: Option<u64>,
    /// The execution it started.
    pub execution_id: Option<Uuid>,
}

/// The wall-clock cursor of a job (the last due time handled).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Wall-clock time in the job's zone.
    pub local: NaiveDateTime,
    /// Instant.
    pub at: DateTime<Utc>,
}

impl From<Fire> for Cursor {
    fn from(f: Fire) -> Self {
        Cursor {
            local: f.local,
            at: f.at,
        }
    }
}

impl From<Cursor> for Fire {
    fn from(c: Cursor) -> Self {
        Fire {
            local: c.local,
            at: c.at,
        }
    }
}

/// A job as stored on disk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Id.
    pub job_id: Uuid,
    /// Name.
    pub name: String,
    /// Origin.
    pub source: JobSource,
    /// Cron pattern (recurring jobs).
    pub cron_expression: Option<String>,
    /// One-shot instant (`at` jobs).
    pub at: Option<DateTime<Utc>>,
    /// IANA zone.
    pub timezone: String,
    /// The agent it runs.
    pub agent_name: String,
    /// Policies named by the API client (kept and reported; DSL programs name theirs).
    pub policy_ids: Vec<String>,
    /// Run once, then complete.
    pub one_shot: bool,
    /// Input of each run.
    pub input: Value,
    /// Missed-run policy.
    pub missed: MissedPolicy,
    /// The DSL schedule's `policy`.
    pub schedule_policy: Option<String>,
    /// The DSL schedule's `deliver`.
    pub deliver: Option<String>,
    /// Status.
    pub status: JobStatus,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Last run start.
    pub last_run: Option<DateTime<Utc>>,
    /// Last due time handled.
    pub cursor: Option<Cursor>,
    /// Next due time.
    pub next_run: Option<DateTime<Utc>>,
    /// Runs started.
    pub run_count: u64,
    /// Runs that failed or timed out.
    pub failure_count: u64,
    /// Runs that succeeded.
    #[serde(default)]
    pub success_count: u64,
    /// Failures in a row.
    #[serde(default)]
    pub consecutive_failures: u32,
    /// Sum of finished runs' durations.
    #[serde(default)]
    pub total_ms: u64,
    /// Longest finished run.
    #[serde(default)]
    pub longest_ms: u64,
    /// Newest last.
    #[serde(default)]
    pub history: VecDeque<RunRecord>,
}

impl JobRecord {
    fn timing(&self) -> Result<Timing, TimingError> {
        match (&self.cron_expression, self.at) {
            (Some(c), _) => Timing::cron(c, &self.timezone),
            (None, Some(t)) => Ok(Timing::At(t)),
            (None, None) => Err(TimingError::Cron {
                expr: String::new(),
                message: "no cron or at".into(),
            }),
        }
    }

    /// `cron_expression` as the API shows it (`at` jobs show their instant, RFC 3339).
    pub fn cron_text(&self) -> String {
        match (&self.cron_expression, self.at) {
            (Some(c), _) => c.clone(),
            (None, Some(t)) => t.to_rfc3339(),
            _ => String::new(),
        }
    }

    fn push_run(&mut self, r: RunRecord) {
        self.history.push_back(r);
        while self.history.len() > HISTORY_CAP {
            self.history.pop_front();
        }
    }
}

/// Why a schedule operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// No job with this id.
    #[error("schedule {0} not found")]
    NotFound(Uuid),
    /// Bad cron expression, time zone or `at` time.
    #[error(transparent)]
    Timing(#[from] TimingError),
    /// The agent is not loaded.
    #[error("agent `{0}` is not loaded (create it or load its program first)")]
    UnknownAgent(String),
    /// Bad request value.
    #[error("{0}")]
    Invalid(String),
    /// The job file could not be written.
    #[error("schedule store {path}: {message}")]
    Store {
        /// Directory.
        path: String,
        /// Error.
        message: String,
    },
}

/// A new job (API `POST /schedules`).
#[derive(Clone, Debug)]
pub struct NewJob {
    /// Name.
    pub name: String,
    /// Cron pattern.
    pub cron_expression: String,
    /// Agent.
    pub agent_name: String,
    /// Zone.
    pub timezone: String,
    /// Policies.
    pub policy_ids: Vec<String>,
    /// One-shot.
    pub one_shot: bool,
}

/// Changes to a job (API `PUT /schedules/{id}`); `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct JobUpdate {
    /// New pattern.
    pub cron_expression: Option<String>,
    /// New zone.
    pub timezone: Option<String>,
    /// New policies (replace).
    pub policy_ids: Option<Vec<String>>,
    /// New one-shot flag.
    pub one_shot: Option<bool>,
}

/// Settings of the engine.
#[derive(Clone, Copy, Debug)]
pub struct ScheduleOptions {
    /// Runs of all jobs at the same time.
    pub max_concurrent: usize,
    /// Consecutive failures before a recurring job moves to `DeadLetter` (0 = never).
    pub dead_letter_after: u32,
}

impl Default for ScheduleOptions {
    fn default() -> Self {
        Self {
            max_concurrent: 10,
            dead_letter_after: 10,
        }
    }
}

/// Numbers for `GET /api/v1/health/scheduler`.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SchedulerHealth {
    /// The engine task runs.
    pub is_running: bool,
    /// The store directory is writable.
    pub store_accessible: bool,
    /// Jobs.
    pub jobs_total: usize,
    /// Active jobs.
    pub jobs_active: usize,
    /// Paused jobs.
    pub jobs_paused: usize,
    /// Dead-lettered jobs.
    pub jobs_dead_letter: usize,
    /// Runs in progress.
    pub global_active_runs: usize,
    /// Limit of runs in progress.
    pub max_concurrent: usize,
    /// Runs started.
    pub runs_total: u64,
    /// Runs that succeeded.
    pub runs_succeeded: u64,
    /// Runs that failed or timed out.
    pub runs_failed: u64,
    /// Mean duration of finished runs.
    pub average_execution_time_ms: f64,
    /// Longest finished run.
    pub longest_run_ms: u64,
}

struct Job {
    rec: JobRecord,
    timing: Timing,
    running: Option<Uuid>,
}

struct Inner {
    store: Store,
    jobs: Mutex<HashMap<Uuid, Job>>,
    invoker: Arc<dyn AgentInvoker>,
    sink: Arc<dyn EventSink>,
    options: ScheduleOptions,
    notify: Notify,
    active_runs: AtomicUsize,
    running: AtomicBool,
    stop: tokio_util::sync::CancellationToken,
}

/// The schedule engine. Cheap to clone.
#[derive(Clone)]
pub struct Schedules {
    inner: Arc<Inner>,
}

fn store_err(dir: &Path, e: impl std::fmt::Display) -> ScheduleError {
    ScheduleError::Store {
        path: dir.display().to_string(),
        message: e.to_string(),
    }
}

impl Schedules {
    /// Opens the store under `dir` (normally `<data dir>/schedules`) and loads the jobs on
    /// disk. Nothing runs until [`Schedules::start`]. Unreadable job files are logged and
    /// left in place.
    pub fn open(
        dir: &Path,
        invoker: Arc<dyn AgentInvoker>,
        sink: Arc<dyn EventSink>,
        options: ScheduleOptions,
    ) -> Result<Schedules, ScheduleError> {
        let store = Store::open(dir).map_err(|e| store_err(dir, e))?;
        let (records, bad) = store.load_all().map_err(|e| store_err(dir, e))?;
        for b in bad {
            tracing::error!(file = %b.path.display(), error = %b.message, "schedule file unreadable; left in place and not run");
        }
        let mut jobs = HashMap::new();
        for rec in records {
            match rec.timing() {
                Ok(timing) => {
                    jobs.insert(
                        rec.job_id,
                        Job {
                            rec,
                            timing,
                            running: None,
                        },
                    );
                }
                Err(e) => {
                    tracing::error!(job = %rec.job_id, name = %rec.name, error = %e, "stored schedule is invalid; not run")
                }
            }
        }
        Ok(Schedules {
            inner: Arc::new(Inner {
                store,
                jobs: Mutex::new(jobs),
                invoker,
                sink,
                options,
                notify: Notify::new(),
                active_runs: AtomicUsize::new(0),
                running: AtomicBool::new(false),
                stop: tokio_util::sync::CancellationToken::new(),
            }),
        })
    }

    /// Registers (or updates) the `schedule` items of a loaded program. A job keeps its id,
    /// cursor, counters and history across restarts (matched by file and name).
    pub async fn register_program(
        &self,
        file: &str,
        program: &symbi_dsl::LoadedProgram,
    ) -> Result<Vec<Uuid>, ScheduleError> {
        let mut ids = Vec::new();
        for s in program.schedules() {
            ids.push(self.register_dsl(file, s).await?);
        }
        Ok(ids)
    }

    /// Registers one DSL schedule.
    pub async fn register_dsl(
        &self,
        file: &str,
        s: &symbi_dsl::program::ScheduleSpec,
    ) -> Result<Uuid, ScheduleError> {
        let now = Utc::now();
        let missed = if s.missed == "run_once" {
            MissedPolicy::RunOnce
        } else {
            MissedPolicy::Skip
        };
        let source = JobSource::Dsl {
            file: file.to_string(),
        };
        let id = {
            let mut jobs = self.inner.jobs.lock();
            let existing = jobs
                .values()
                .find(|j| j.rec.source == source && j.rec.name == s.name)
                .map(|j| j.rec.job_id);
            let id = existing.unwrap_or_else(Uuid::new_v4);
            let mut rec = match existing.and_then(|id| jobs.remove(&id)) {
                Some(j) => j.rec,
                None => JobRecord {
                    job_id: id,
                    name: s.name.clone(),
                    source: source.clone(),
                    cron_expression: None,
                    at: None,
                    timezone: String::new(),
                    agent_name: String::new(),
                    policy_ids: Vec::new(),
                    one_shot: false,
                    input: Value::Null,
                    missed,
                    schedule_policy: None,
                    deliver: None,
                    status: JobStatus::Active,
                    created_at: now,
                    updated_at: now,
                    last_run: None,
                    cursor: None,
                    next_run: None,
                    run_count: 0,
                    failure_count: 0,
                    success_count: 0,
                    consecutive_failures: 0,
                    total_ms: 0,
                    longest_ms: 0,
                    history: VecDeque::new(),
                },
            };
            let changed =
                rec.cron_expression != s.cron || rec.at != s.at || rec.timezone != s.timezone;
            rec.cron_expression = s.cron.clone();
            rec.at = s.at;
            rec.timezone = s.timezone.clone();
            rec.agent_name = s.agent.clone();
            rec.one_shot = s.one_shot || s.at.is_some();
            rec.input = if s.input.is_null() {
                json!({})
            } else {
                s.input.clone()
            };
            rec.missed = missed;
            rec.schedule_policy = s.policy.clone();
            rec.deliver = s.deliver.clone();
            if changed {
                rec.updated_at = now;
                rec.cursor = None;
                if existing.is_some() && rec.status != JobStatus::Paused {
                    rec.status = JobStatus::Active;
                }
            }
            let timing = rec.timing()?;
            if rec.cursor.is_none() {
                // A new (or changed) job starts now; an `at` already past is a missed run.
                let start = match &timing {
                    Timing::At(t) => {
                        (*t).min(rec.created_at).min(now) - chrono::Duration::seconds(1)
                    }
                    Timing::Cron { .. } => now,
                };
                rec.cursor = Some(timing.cursor_at(start).into());
            }
            rec.next_run = if rec.status == JobStatus::Active {
                timing.next_after(&rec.cursor.unwrap().into()).map(|f| f.at)
            } else {
                None
            };
            jobs.insert(
                id,
                Job {
                    rec,
                    timing,
                    running: None,
                },
            );
            id
        };
        self.persist(id).await?;
        Ok(id)
    }

    /// Creates a job (API). Validates the pattern, the zone and that the agent is loaded.
    pub async fn create(
        &self,
        new: NewJob,
    ) -> Result<(Uuid, Option<DateTime<Utc>>), ScheduleError> {
        if new.name.trim().is_empty() {
            return Err(ScheduleError::Invalid("`name` must not be empty".into()));
        }
        let timing = Timing::cron(&new.cron_expression, &new.timezone)?;
        if !self.inner.invoker.agent_exists(&new.agent_name) {
            return Err(ScheduleError::UnknownAgent(new.agent_name));
        }
        let now = Utc::now();
        let cursor: Cursor = timing.cursor_at(now).into();
        let next_run = timing.next_after(&cursor.into()).map(|f| f.at);
        let id = Uuid::new_v4();
        let rec = JobRecord {
            job_id: id,
            name: new.name,
            source: JobSource::Api,
            cron_expression: Some(new.cron_expression),
            at: None,
            timezone: new.timezone,
            agent_name: new.agent_name,
            policy_ids: new.policy_ids,
            one_shot: new.one_shot,
            input: json!({}),
            missed: MissedPolicy::Skip,
            schedule_policy: None,
            deliver: None,
            status: JobStatus::Active,
            created_at: now,
            updated_at: now,
            last_run: None,
            cursor: Some(cursor),
            next_run,
            run_count: 0,
            failure_count: 0,
            success_count: 0,
            consecutive_failures: 0,
            total_ms: 0,
            longest_ms: 0,
            history: VecDeque::new(),
        };
        self.inner.jobs.lock().insert(
            id,
            Job {
                rec,
                timing,
                running: None,
            },
        );
        if let Err(e) = self.persist(id).await {
            self.inner.jobs.lock().remove(&id);
            return Err(e);
        }
        self.inner.notify.notify_one();
        Ok((id, next_run))
    }

    /// Every job, oldest first.
    pub fn list(&self) -> Vec<JobRecord> {
        let mut v: Vec<JobRecord> = self
            .inner
            .jobs
            .lock()
            .values()
            .map(|j| j.rec.clone())
            .collect();
        v.sort_by_key(|r| (r.created_at, r.job_id));
        v
    }

    /// Number of jobs.
    pub fn len(&self) -> usize {
        self.inner.jobs.lock().len()
    }

    /// Whether there are no jobs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One job.
    pub fn get(&self, id: Uuid) -> Result<JobRecord, ScheduleError> {
        self.inner
            .jobs
            .lock()
            .get(&id)
            .map(|j| j.rec.clone())
            .ok_or(ScheduleError::NotFound(id))
    }

    /// Changes a job.
    pub async fn update(&self, id: Uuid, u: JobUpdate) -> Result<JobRecord, ScheduleError> {
        {
            let mut jobs = self.inner.jobs.lock();
            let job = jobs.get_mut(&id).ok_or(ScheduleError::NotFound(id))?;
            let cron = u
                .cron_expression
                .clone()
                .or_else(|| job.rec.cron_expression.clone());
            let tz = u
                .timezone
                .clone()
                .unwrap_or_else(|| job.rec.timezone.clone());
            let timing = match (&cron, job.rec.at) {
                (Some(c), _) => Timing::cron(c, &tz)?,
                (None, Some(t)) => {
                    timing::parse_tz(&tz)?;
                    Timing::At(t)
                }
                (None, None) => return Err(ScheduleError::Invalid("the job has no timing".into())),
            };
            let now = Utc::now();
            if u.cron_expression.is_some() || u.timezone.is_some() {
                job.rec.cron_expression = cron;
                job.rec.timezone = tz;
                job.rec.cursor = Some(timing.cursor_at(now).into());
            }
            if let Some(p) = u.policy_ids {
                job.rec.policy_ids = p;
            }
            if let Some(o) = u.one_shot {
                job.rec.one_shot = o;
            }
            job.timing = timing;
            job.rec.updated_at = now;
            job.rec.next_run = if job.rec.status == JobStatus::Active {
                job.timing
                    .next_after(
                        &job.rec
                            .cursor
                            .unwrap_or_else(|| job.timing.cursor_at(now).into())
                            .into(),
                    )
                    .map(|f| f.at)
            } else {
                None
            };
        }
        self.persist(id).await?;
        self.inner.notify.notify_one();
        self.get(id)
    }

    /// Deletes a job (a run in progress finishes; its result is not recorded).
    pub async fn delete(&self, id: Uuid) -> Result<(), ScheduleError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _w = inner.store.write.lock();
            if inner.jobs.lock().remove(&id).is_none() {
                return Err(ScheduleError::NotFound(id));
            }
            inner
                .store
                .remove_locked(id)
                .map_err(|e| store_err(inner.store.dir(), e))
        })
        .await
        .map_err(|e| ScheduleError::Invalid(e.to_string()))??;
        self.inner.notify.notify_one();
        Ok(())
    }

    /// Pauses a job: nothing runs until it is resumed.
    pub async fn pause(&self, id: Uuid) -> Result<(), ScheduleError> {
        {
            let mut jobs = self.inner.jobs.lock();
            let job = jobs.get_mut(&id).ok_or(ScheduleError::NotFound(id))?;
            job.rec.status = JobStatus::Paused;
            job.rec.next_run = None;
            job.rec.updated_at = Utc::now();
        }
        self.persist(id).await?;
        self.inner.notify.notify_one();
        Ok(())
    }

    /// Resumes a paused, failed or dead-lettered job from now on (runs due while it was
    /// paused are not made up).
    pub async fn resume(&self, id: Uuid) -> Result<(), ScheduleError> {
        {
            let mut jobs = self.inner.jobs.lock();
            let job = jobs.get_mut(&id).ok_or(ScheduleError::NotFound(id))?;
            let now = Utc::now();
            job.rec.status = JobStatus::Active;
            job.rec.consecutive_failures = 0;
            if !job.timing.is_at() {
                job.rec.cursor = Some(job.timing.cursor_at(now).into());
            }
            job.rec.next_run = job
                .rec
                .cursor
                .and_then(|c| job.timing.next_after(&c.into()))
                .map(|f| f.at);
            if job.rec.next_run.is_none() && job.timing.is_at() {
                job.rec.status = JobStatus::Completed;
            }
            job.rec.updated_at = now;
        }
        self.persist(id).await?;
        self.inner.notify.notify_one();
        Ok(())
    }

    /// Runs a job now (whatever its status); its timing is not affected.
    pub async fn trigger(&self, id: Uuid) -> Result<(), ScheduleError> {
        if !self.inner.jobs.lock().contains_key(&id) {
            return Err(ScheduleError::NotFound(id));
        }
        Inner::fire(&self.inner, id, Utc::now(), false).await;
        Ok(())
    }

    /// The newest `limit` runs, newest first.
    pub fn history(&self, id: Uuid, limit: usize) -> Result<Vec<RunRecord>, ScheduleError> {
        let jobs = self.inner.jobs.lock();
        let job = jobs.get(&id).ok_or(ScheduleError::NotFound(id))?;
        Ok(job.rec.history.iter().rev().take(limit).cloned().collect())
    }

    /// The next `count` due times, ascending (for a paused job: as if resumed now).
    pub fn next_runs(&self, id: Uuid, count: usize) -> Result<Vec<DateTime<Utc>>, ScheduleError> {
        let jobs = self.inner.jobs.lock();
        let job = jobs.get(&id).ok_or(ScheduleError::NotFound(id))?;
        if matches!(job.rec.status, JobStatus::Completed) {
            return Ok(Vec::new());
        }
        let now = Utc::now();
        let from = match job.rec.cursor {
            Some(c) if c.at > now || job.timing.is_at() => c.into(),
            _ => job.timing.cursor_at(now),
        };
        let mut out = Vec::new();
        let mut c = from;
        while out.len() < count {
            match job.timing.next_after(&c) {
                Some(f) => {
                    out.push(f.at);
                    c = f;
                }
                None => break,
            }
        }
        Ok(out)
    }

    /// Health numbers.
    pub fn health(&self) -> SchedulerHealth {
        let jobs = self.inner.jobs.lock();
        let mut h = SchedulerHealth {
            is_running: self.inner.running.load(Ordering::Relaxed),
            store_accessible: false,
            jobs_total: jobs.len(),
            jobs_active: 0,
            jobs_paused: 0,
            jobs_dead_letter: 0,
            global_active_runs: self.inner.active_runs.load(Ordering::Relaxed),
            max_concurrent: self.inner.options.max_concurrent,
            runs_total: 0,
            runs_succeeded: 0,
            runs_failed: 0,
            average_execution_time_ms: 0.0,
            longest_run_ms: 0,
        };
        let mut total_ms = 0u64;
        for j in jobs.values() {
            match j.rec.status {
                JobStatus::Active => h.jobs_active += 1,
                JobStatus::Paused => h.jobs_paused += 1,
                JobStatus::DeadLetter => h.jobs_dead_letter += 1,
                _ => {}
            }
            h.runs_total += j.rec.run_count;
            h.runs_succeeded += j.rec.success_count;
            h.runs_failed += j.rec.failure_count;
            total_ms += j.rec.total_ms;
            h.longest_run_ms = h.longest_run_ms.max(j.rec.longest_ms);
        }
        drop(jobs);
        let finished = h.runs_succeeded + h.runs_failed;
        if finished > 0 {
            h.average_execution_time_ms = total_ms as f64 / finished as f64;
        }
        h.store_accessible = self.inner.store.accessible();
        h
    }

    /// Starts the engine task: handles runs missed while the runtime was down (per job's
    /// `missed` policy), then fires jobs when due until [`Schedules::shutdown`].
    pub async fn start(&self) {
        self.catch_up().await;
        let inner = self.inner.clone();
        inner.running.store(true, Ordering::Relaxed);
        tokio::spawn(async move {
            Inner::run_loop(inner.clone()).await;
            inner.running.store(false, Ordering::Relaxed);
        });
    }

    /// Stops firing new runs (runs in progress continue until the runtime shuts down).
    pub fn shutdown(&self) {
        self.inner.stop.cancel();
    }

    async fn catch_up(&self) {
        let now = Utc::now();
        let mut to_run = Vec::new();
        let mut events = Vec::new();
        let mut changed = Vec::new();
        {
            let mut jobs = self.inner.jobs.lock();
            for job in jobs.values_mut() {
                if job.rec.status != JobStatus::Active {
                    continue;
                }
                let Some(cursor) = job.rec.cursor else {
                    continue;
                };
                let mut c: Fire = cursor.into();
                let (mut count, mut first, mut last) = (0u64, None, None);
                while let Some(f) = job.timing.next_after(&c) {
                    if f.at > now || count >= 100_000 {
                        break;
                    }
                    count += 1;
                    first.get_or_insert(f.at);
                    last = Some(f);
                    c = f;
                }
                let Some(last) = last else { continue };
                job.rec.cursor = Some(last.into());
                job.rec.next_run = job.timing.next_after(&last).map(|f| f.at);
                events.push(
                    EventDraft::new(
                        symbi_types::event::types::SCHEDULE_MISSED,
                        json!({
                            "schedule": job.rec.name, "job_id": job.rec.job_id, "agent": job.rec.agent_name,
                            "missed_runs": count, "first_missed": first.map(|t| t.to_rfc3339()),
                            "last_missed": last.at.to_rfc3339(), "policy": job.rec.missed,
                        }),
                    ),
                );
                match job.rec.missed {
                    MissedPolicy::RunOnce => to_run.push((job.rec.job_id, last.at)),
                    MissedPolicy::Skip => {
                        if job.rec.next_run.is_none() {
                            job.rec.status = JobStatus::Completed;
                        }
                    }
                }
                changed.push(job.rec.job_id);
            }
        }
        for e in events {
            if let Err(err) = self.inner.sink.record(e).await {
                tracing::error!(error = %err, "could not audit a missed schedule run");
            }
        }
        for id in changed {
            if let Err(e) = self.persist(id).await {
                tracing::error!(job = %id, error = %e, "could not persist a schedule");
            }
        }
        for (id, at) in to_run {
            Inner::fire(&self.inner, id, at, true).await;
        }
    }

    async fn persist(&self, id: Uuid) -> Result<(), ScheduleError> {
        Inner::persist(&self.inner, id).await
    }
}

impl Inner {
    async fn persist(inner: &Arc<Inner>, id: Uuid) -> Result<(), ScheduleError> {
        let inner = inner.clone();
        tokio::task::spawn_blocking(move || {
            let _w = inner.store.write.lock();
            let rec = match inner.jobs.lock().get(&id) {
                Some(j) => j.rec.clone(),
                None => return Ok(()),
            };
            inner
                .store
                .save_locked(&rec)
                .map_err(|e| store_err(inner.store.dir(), e))
        })
        .await
        .map_err(|e| ScheduleError::Invalid(e.to_string()))?
    }

    async fn run_loop(inner: Arc<Inner>) {
        loop {
            let now = Utc::now();
            let due: Vec<(Uuid, DateTime<Utc>)> = {
                let jobs = inner.jobs.lock();
                jobs.values()
                    .filter(|j| j.rec.status == JobStatus::Active)
                    .filter_map(|j| {
                        j.rec
                            .next_run
                            .filter(|t| *t <= now)
                            .map(|t| (j.rec.job_id, t))
                    })
                    .collect()
            };
            for (id, at) in due {
                Inner::fire(&inner, id, at, true).await;
            }
            let next = inner
                .jobs
                .lock()
                .values()
                .filter(|j| j.rec.status == JobStatus::Active)
                .filter_map(|j| j.rec.next_run)
                .min();
            let wait = match next {
                Some(t) => (t - Utc::now())
                    .to_std()
                    .unwrap_or(std::time::Duration::ZERO),
                None => std::time::Duration::from_secs(3600),
            };
            // Wall-clock jumps are caught by waking at least once a minute.
            let wait = wait.min(std::time::Duration::from_secs(60));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = inner.notify.notified() => {}
                _ = inner.stop.cancelled() => return,
            }
        }
    }

    /// Starts one run of `id` due at `at`. `advance`: this is the due run of the timing (the
    /// cursor moves past it); otherwise a manual trigger.
    async fn fire(inner: &Arc<Inner>, id: Uuid, at: DateTime<Utc>, advance: bool) {
        let now = Utc::now();
        let run_id = Uuid::new_v4();
        let (invocation, skip_reason) = {
            let mut jobs = inner.jobs.lock();
            let Some(job) = jobs.get_mut(&id) else { return };
            if advance {
                let fired = job
                    .rec
                    .cursor
                    .and_then(|c| job.timing.next_after(&c.into()))
                    .filter(|f| f.at <= at)
                    .unwrap_or_else(|| job.timing.cursor_at(at));
                job.rec.cursor = Some(fired.into());
                job.rec.next_run = job.timing.next_after(&fired).map(|f| f.at);
                if job.rec.next_run.is_none() || job.rec.one_shot {
                    job.rec.next_run = None;
                    job.rec.status = JobStatus::Completed;
                }
            }
            let skip = if job.running.is_some() {
                Some("the previous run of this schedule is still running")
            } else if inner.active_runs.load(Ordering::SeqCst) >= inner.options.max_concurrent {
                Some("the limit of concurrent scheduled runs is reached")
            } else {
                None
            };
            let inv = Invocation {
                agent: job.rec.agent_name.clone(),
                input: job.rec.input.clone(),
                trigger: json!({ "kind": "schedule", "name": job.rec.name, "scheduled_at": at.to_rfc3339() }),
                initiator: Some(format!("schedule:{}", job.rec.name)),
                schedule_policy: job.rec.schedule_policy.clone(),
            };
            if skip.is_none() {
                job.running = Some(run_id);
                inner.active_runs.fetch_add(1, Ordering::SeqCst);
                job.rec.last_run = Some(now);
            }
            job.rec.push_run(RunRecord {
                run_id,
                scheduled_at: at,
                started_at: now,
                completed_at: skip.map(|_| now),
                status: if skip.is_some() {
                    RunStatus::Skipped
                } else {
                    RunStatus::Running
                },
                error: skip.map(str::to_string),
                execution_time_ms: None,
                execution_id: None,
            });
            (inv, skip)
        };
        if let Some(reason) = skip_reason {
            let d = EventDraft::new(
                SCHEDULE_SKIPPED,
                json!({ "schedule": invocation.trigger["name"], "job_id": id, "run_id": run_id,
                        "agent": invocation.agent, "scheduled_at": at.to_rfc3339(), "reason": reason }),
            );
            if let Err(e) = inner.sink.record(d).await {
                tracing::error!(error = %e, "could not audit a skipped schedule run");
            }
            tracing::warn!(job = %id, reason, "scheduled run skipped");
            let _ = Inner::persist(inner, id).await;
            return;
        }
        let _ = Inner::persist(inner, id).await;
        let started = inner.invoker.invoke(invocation).await;
        let inner2 = inner.clone();
        let t0 = std::time::Instant::now();
        let task = async move {
            let (execution_id, result) = match started {
                Ok(s) => (Some(s.execution_id), s.completion.await),
                Err(f) => (None, Err(f)),
            };
            Inner::finish(&inner2, id, run_id, execution_id, result, t0.elapsed()).await;
        };
        tokio::spawn(task);
    }

    async fn finish(
        inner: &Arc<Inner>,
        id: Uuid,
        run_id: Uuid,
        execution_id: Option<Uuid>,
        result: Result<Value, crate::invoke::RunFailure>,
        took: std::time::Duration,
    ) {
        inner.active_runs.fetch_sub(1, Ordering::SeqCst);
        let ms = took.as_millis() as u64;
        let mut deliver = None;
        {
            let mut jobs = inner.jobs.lock();
            let Some(job) = jobs.get_mut(&id) else { return };
            if job.running == Some(run_id) {
                job.running = None;
            }
            let rec = &mut job.rec;
            rec.run_count += 1;
            rec.total_ms += ms;
            rec.longest_ms = rec.longest_ms.max(ms);
            let (status, error) = match &result {
                Ok(_) => {
                    rec.success_count += 1;
                    rec.consecutive_failures = 0;
                    (RunStatus::Succeeded, None)
                }
                Err(f) => {
                    rec.failure_count += 1;
                    rec.consecutive_failures += 1;
                    (
                        if f.is_timeout() {
                            RunStatus::TimedOut
                        } else {
                            RunStatus::Failed
                        },
                        Some(f.to_string()),
                    )
                }
            };
            if let Some(r) = rec.history.iter_mut().rev().find(|r| r.run_id == run_id) {
                r.status = status;
                r.error = error.clone();
                r.completed_at = Some(Utc::now());
                r.execution_time_ms = Some(ms);
                r.execution_id = execution_id;
            }
            if result.is_err() {
                if rec.one_shot && rec.status == JobStatus::Completed {
                    rec.status = JobStatus::Failed;
                } else if inner.options.dead_letter_after > 0
                    && rec.consecutive_failures >= inner.options.dead_letter_after
                    && rec.status == JobStatus::Active
                {
                    tracing::error!(job = %id, failures = rec.consecutive_failures, "schedule moved to DeadLetter");
                    rec.status = JobStatus::DeadLetter;
                    rec.next_run = None;
                }
            }
            if let (Some(d), Ok(v)) = (&rec.deliver, &result) {
                deliver = Some((d.clone(), rec.name.clone(), v.clone()));
            }
        }
        if let Some((target, name, value)) = deliver {
            Inner::deliver(inner, &target, &name, &value);
        }
        if let Err(e) = Inner::persist(inner, id).await {
            tracing::error!(job = %id, error = %e, "could not persist a schedule run");
        }
        inner.notify.notify_one();
    }

    /// `deliver` targets handled here: `stdout` (one JSON line) and `log_file`
    /// (`<schedules dir>/<name>.log`, one JSON line per run). Topics and URLs are not
    /// delivered by this engine (logged).
    fn deliver(inner: &Arc<Inner>, target: &str, name: &str, value: &Value) {
        let line =
            json!({ "schedule": name, "at": Utc::now().to_rfc3339(), "result": value }).to_string();
        match target {
            "stdout" => println!("{line}"),
            "log_file" => {
                use std::io::Write;
                let path = inner.store.dir().join(format!("{name}.log"));
                let r = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .and_then(|mut f| writeln!(f, "{line}"));
                if let Err(e) = r {
                    tracing::error!(file = %path.display(), error = %e, "could not deliver a schedule result");
                }
            }
            other => tracing::warn!(
                schedule = name,
                target = other,
                "deliver target not supported by this runtime; result not delivered"
            ),
        }
    }
}

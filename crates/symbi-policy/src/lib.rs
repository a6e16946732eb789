//! The symbi policy engine (SPEC §8).
//!
//! * **Model** — a Cedar schema ([`model::SCHEMA_TEXT`], `policies/symbi.cedarschema`)
//!   with principals `Agent`, `Client`, `Operator`; one resource type per
//!   [`symbi_types::SubjectKind`]; one action per [`symbi_types::ActionCategory`] word and
//!   the group `file_access` ⊇ {file_read, file_write}. Every policy file is validated
//!   against it (strict mode) before it can take effect.
//! * **Decisions** — [`PolicyEngine`] implements [`symbi_types::PolicyDecisionPoint`]:
//!   a DSL `deny` → Deny; else a Cedar `forbid` → Deny; else a DSL `allow` or a Cedar
//!   `permit` → Allow, or AllowWithConditions when DSL `require` rules or the annotations
//!   of applying permits ([`conditions`]) attach conditions; else Deny ("no rule allows …").
//!   Reasons name the deciding policies (`@id` and `file:line:column`).
//! * **Hot reload** — [`PolicyEngine::watch`] (notify), [`PolicyEngine::reload`],
//!   [`PolicyEngine::replace_policies`], [`PolicyEngine::write_policy_file`]: a valid set
//!   replaces the active one atomically (arc-swap); a broken one is rejected with positions
//!   and the previous set stays. Each attempt is a `policy_reload` audit event.
//! * **Speed** — entities and context are built to fit the schema by construction (no
//!   per-request validation); policies are sliced by action at load time, so a decision
//!   evaluates only the policies that can apply to its action, principal and resource. The
//!   Cedar half of each decision is cached per policy snapshot ([`cache`]): the key is the
//!   whole request as Cedar sees it, the cache is dropped with its snapshot on reload, and
//!   the DSL rules are evaluated every time (docs/benchmarks/policy.md).
//! * **Enforcement points** — [`requests`] builds the request of each point.
//!
//! docs/policies.md documents the model, the annotations, the procedure, reloads and the
//! shipped defaults ([`defaults`]).

pub mod cache;
pub mod conditions;
pub mod defaults;
mod engine;
pub mod error;
mod events;
mod load;
pub mod loadtest;
pub mod model;
pub mod requests;
pub mod table;
mod watch;

pub use cache::CacheStats;
pub use engine::{
    CheckReport, DEFAULT_DECISION_CACHE, EngineOptions, PolicyEngine, PolicySnapshot, ReloadCause,
    ReloadReport,
};
pub use error::{Diagnostic, PolicyError, Severity};
pub use load::{PolicyInfo, PolicySource, read_dir_sources};
pub use watch::DEBOUNCE;

//! Requests written as Cedar entity references (`Agent::"a"`, `Action::"x"`, `Tool::"t"`)
//! and tables of expected decisions — the machinery behind `symbi policy eval` and
//! `symbi policy test` (format documented in docs/policies.md "Decision tables").
//!
//! ```
//! use symbi_policy::table::{TestTable, run_table};
//! use symbi_policy::{EngineOptions, PolicyEngine, defaults};
//! let table = TestTable::parse("t.toml", r#"
//!     [[case]]
//!     name = "agents cannot reach the network by default"
//!     principal = 'Agent::"fetcher"'
//!     action = "network_access"
//!     resource = 'Host::"example.com"'
//!     resource_attrs = { scheme = "https" }
//!     expect = "Deny"
//!     reasons_contain = ["no rule allows"]
//! "#).unwrap();
//! let engine = PolicyEngine::from_sources(defaults::default_sources(), EngineOptions::enforcing()).unwrap();
//! let results = run_table(&engine, &table);
//! assert!(results.iter().all(|r| r.passed()));
//! ```

use crate::error::PolicyError;
use crate::model::{EntityKind, PRINCIPAL_TYPE_ATTR};
use cedar_policy::EntityUid;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::str::FromStr;
use symbi_types::{
    ActionCategory, Decision, PolicyDecisionPoint, PolicyRequest, Principal, Subject, SubjectKind,
};

/// A request described the way a Cedar user writes it.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EntityRequest {
    /// `Agent::"name"`, `Client::"name"` or `Operator::"name"`.
    pub principal: String,
    /// `Action::"word"` or just the word (an action category; not the `file_access` group).
    pub action: String,
    /// `Tool::"t"`, `Host::"example.com"`, `File::"/tmp/x"`, … (any resource type of the model).
    pub resource: String,
    /// Principal attributes: `capabilities`, `sandbox`, `id`, `registered`, `suspended`,
    /// `roles`, and any other (an entity tag).
    #[serde(default)]
    pub principal_attrs: Option<Map<String, Value>>,
    /// Resource attributes (the subject map: `domain`, `scheme`, `in_project`, …).
    #[serde(default)]
    pub resource_attrs: Option<Map<String, Value>>,
    /// Request context (`has_human_approval`, `trigger`, `session`, `initiator`, and
    /// `action_name` to set the action's name as called).
    #[serde(default)]
    pub context: Option<Map<String, Value>>,
}

impl EntityRequest {
    /// Builds the [`PolicyRequest`]. Errors say which part is wrong and what is expected.
    pub fn to_request(&self) -> Result<PolicyRequest, String> {
        let p = parse_uid(&self.principal, "principal")?;
        let ptype = p.type_name().to_string();
        let pkind = EntityKind::from_name(&ptype)
            .filter(|k| {
                matches!(
                    k,
                    EntityKind::Agent | EntityKind::Client | EntityKind::Operator
                )
            })
            .ok_or_else(|| {
                format!("principal type `{ptype}` is not one of Agent, Client, Operator")
            })?;
        let mut principal = Principal::agent(p.id().unescaped());
        if pkind != EntityKind::Agent {
            principal
                .attributes
                .insert(PRINCIPAL_TYPE_ATTR.into(), Value::String(ptype.clone()));
        }
        for (k, v) in self.principal_attrs.clone().unwrap_or_default() {
            match (k.as_str(), &v) {
                ("capabilities", Value::Array(items)) if pkind == EntityKind::Agent => {
                    for i in items {
                        match i {
                            Value::String(s) => principal.capabilities.push(s.clone()),
                            other => {
                                return Err(format!(
                                    "principal capability must be a string, got {other}"
                                ));
                            }
                        }
                    }
                }
                ("id", Value::String(s))
                    if pkind == EntityKind::Agent && s.parse::<symbi_types::AgentId>().is_ok() =>
                {
                    principal.agent_id = s.parse().ok();
                }
                _ => {
                    principal.attributes.insert(k, v);
                }
            }
        }

        let word = match self.action.trim() {
            a if a.starts_with("Action::") => parse_uid(a, "action")?.id().unescaped().to_string(),
            a => a.to_string(),
        };
        if word == crate::model::FILE_ACCESS_GROUP {
            return Err(
                "`file_access` is an action group; ask about file_read or file_write".into(),
            );
        }
        let category: ActionCategory = word.parse().map_err(|e: String| {
            format!(
                "{e}; expected one of: {}",
                ActionCategory::ALL.map(|c| c.as_str()).join(", ")
            )
        })?;

        let r = parse_uid(&self.resource, "resource")?;
        let rtype = r.type_name().to_string();
        let kind = match EntityKind::from_name(&rtype) {
            Some(EntityKind::Tool) => SubjectKind::Tool,
            Some(EntityKind::Agent) => SubjectKind::Agent,
            Some(EntityKind::Topic) => SubjectKind::Topic,
            Some(EntityKind::Host) => SubjectKind::Url,
            Some(EntityKind::File) => SubjectKind::File,
            Some(EntityKind::MemoryStore) => SubjectKind::MemoryStore,
            Some(EntityKind::DataSet) => SubjectKind::DataSet,
            Some(EntityKind::Secret) => SubjectKind::Secret,
            Some(EntityKind::Model) => SubjectKind::Llm,
            Some(EntityKind::Resource) => SubjectKind::Resource,
            _ => {
                return Err(format!(
                    "resource type `{rtype}` is not one of Tool, Agent, Topic, Host, File, MemoryStore, DataSet, Secret, Model, Resource"
                ));
            }
        };
        let mut subject = Subject::named(kind, r.id().unescaped());
        for (k, v) in self.resource_attrs.clone().unwrap_or_default() {
            if k != "name" {
                subject.attrs.insert(k, v);
            }
        }
        let mut req = PolicyRequest::new(principal, category, category.as_str(), subject);
        if let Some(ctx) = &self.context {
            for (k, v) in ctx {
                if k == "action_name" {
                    match v {
                        Value::String(s) => req.name = s.clone(),
                        other => {
                            return Err(format!(
                                "context.action_name must be a string, got {other}"
                            ));
                        }
                    }
                } else {
                    req.context.insert(k.clone(), v.clone());
                }
            }
        }
        Ok(req)
    }

    /// Context keys that the Cedar model does not declare (they would be visible to DSL
    /// guards only). `symbi policy eval` warns about them.
    pub fn undeclared_context_keys(&self) -> Vec<String> {
        let declared = crate::model::CONTEXT_FIELDS.map(|(k, _)| k);
        self.context
            .iter()
            .flat_map(|c| c.keys())
            .filter(|k| {
                !declared.contains(&k.as_str()) && !["principal", "user"].contains(&k.as_str())
            })
            .cloned()
            .collect()
    }
}

fn parse_uid(s: &str, what: &str) -> Result<EntityUid, String> {
    EntityUid::from_str(s.trim())
        .map_err(|e| format!("invalid {what} `{s}` (expected Type::\"id\"): {e}"))
}

/// The expected outcome of a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub enum Expected {
    /// `Allow` (no conditions).
    Allow,
    /// `Deny`.
    Deny,
    /// `AllowWithConditions`.
    AllowWithConditions,
}

/// One row of a decision table.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// A name for reports (default: `case N`).
    #[serde(default)]
    pub name: Option<String>,
    /// `Agent::"name"`, `Client::"name"` or `Operator::"name"`.
    pub principal: String,
    /// `Action::"word"` or the word.
    pub action: String,
    /// `Tool::"t"`, `Host::"example.com"`, …
    pub resource: String,
    /// Principal attributes.
    #[serde(default)]
    pub principal_attrs: Option<Map<String, Value>>,
    /// Resource attributes.
    #[serde(default)]
    pub resource_attrs: Option<Map<String, Value>>,
    /// Request context.
    #[serde(default)]
    pub context: Option<Map<String, Value>>,
    /// Expected outcome.
    pub expect: Expected,
    /// Each string must occur in some reason.
    #[serde(default)]
    pub reasons_contain: Vec<String>,
    /// Exactly these condition types (`human_approval`, `rate_limit`, …), in any order.
    #[serde(default)]
    pub condition_types: Option<Vec<String>>,
    /// Exactly these conditions (in their JSON form), in any order.
    #[serde(default)]
    pub conditions: Option<Vec<Value>>,
}

impl TestCase {
    /// The row's request.
    pub fn request(&self) -> EntityRequest {
        EntityRequest {
            principal: self.principal.clone(),
            action: self.action.clone(),
            resource: self.resource.clone(),
            principal_attrs: self.principal_attrs.clone(),
            resource_attrs: self.resource_attrs.clone(),
            context: self.context.clone(),
        }
    }
}

/// A decision table: `[[case]]` rows and, optionally, the policy directory (relative to
/// the table file) to test.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TestTable {
    /// Policy directory, relative to the table file.
    #[serde(default)]
    pub policies: Option<String>,
    /// The rows.
    #[serde(rename = "case", alias = "cases", default)]
    pub cases: Vec<TestCase>,
}

impl TestTable {
    /// Parses TOML, or JSON when `name` ends in `.json`. Errors carry `name:line:column`.
    pub fn parse(name: &str, text: &str) -> Result<TestTable, PolicyError> {
        let table: TestTable = if name.ends_with(".json") {
            serde_json::from_str(text).map_err(|e| {
                PolicyError::TestTable(format!("{name}:{}:{}: error: {e}", e.line(), e.column()))
            })?
        } else {
            toml::from_str(text).map_err(|e| {
                let (l, c) = e
                    .span()
                    .map(|s| crate::error::line_col(text, s.start))
                    .unwrap_or((1, 1));
                PolicyError::TestTable(format!("{name}:{l}:{c}: error: {}", e.message()))
            })?
        };
        if table.cases.is_empty() {
            return Err(PolicyError::TestTable(format!(
                "{name}: error: the table has no [[case]] rows"
            )));
        }
        Ok(table)
    }
}

/// The result of one row.
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    /// Row name.
    pub name: String,
    /// What was expected.
    pub expected: Expected,
    /// What the engine decided (absent when the request was malformed).
    pub decision: Option<Decision>,
    /// Why the row failed (empty when it passed).
    pub problems: Vec<String>,
}

impl CaseResult {
    /// Whether the row passed.
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Runs every row against `pdp` (no agent rules).
pub fn run_table(pdp: &dyn PolicyDecisionPoint, table: &TestTable) -> Vec<CaseResult> {
    table
        .cases
        .iter()
        .enumerate()
        .map(|(i, case)| {
            let name = case.name.clone().unwrap_or_else(|| {
                format!(
                    "case {} ({} {} {})",
                    i + 1,
                    case.principal,
                    case.action,
                    case.resource
                )
            });
            let req = match case.request().to_request() {
                Ok(r) => r,
                Err(e) => {
                    return CaseResult {
                        name,
                        expected: case.expect,
                        decision: None,
                        problems: vec![format!("bad request: {e}")],
                    };
                }
            };
            let d = pdp.decide(&req, None);
            let mut problems = Vec::new();
            let outcome = d.outcome();
            let want = match case.expect {
                Expected::Allow => "Allow",
                Expected::Deny => "Deny",
                Expected::AllowWithConditions => "AllowWithConditions",
            };
            if outcome != want {
                problems.push(format!("expected {want}, got {outcome} ({})", d.reason()));
            }
            let reasons = match &d {
                Decision::Allow { reasons }
                | Decision::Deny { reasons }
                | Decision::AllowWithConditions { reasons, .. } => reasons,
            };
            for needle in &case.reasons_contain {
                if !reasons.iter().any(|r| r.contains(needle)) {
                    problems.push(format!(
                        "no reason contains {needle:?} (reasons: {reasons:?})"
                    ));
                }
            }
            let actual: Vec<Value> = d
                .conditions()
                .iter()
                .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
                .collect();
            if let Some(types) = &case.condition_types {
                let mut got: Vec<String> = actual
                    .iter()
                    .map(|c| c["type"].as_str().unwrap_or("").to_string())
                    .collect();
                let mut want = types.clone();
                got.sort();
                want.sort();
                if got != want {
                    problems.push(format!("expected condition types {want:?}, got {got:?}"));
                }
            }
            if let Some(want) = &case.conditions {
                let same = want.len() == actual.len() && want.iter().all(|w| actual.contains(w));
                if !same {
                    problems.push(format!(
                        "expected conditions {}, got {}",
                        Value::Array(want.clone()),
                        Value::Array(actual.clone())
                    ));
                }
            }
            CaseResult {
                name,
                expected: case.expect,
                decision: Some(d),
                problems,
            }
        })
        .collect()
}

//! Command tools (TOML manifests) as a gateway [`ToolProvider`]: each call runs in a fresh
//! sandbox container of the tier the risk assessment, the block's `sandbox` and the
//! policy's `sandbox_tier` condition choose (only ever raised), and the outcome's audit
//! record carries the tier, the limits, the exit status and the output digest.

use super::core::{ActionOutput, Call, ToolDescriptor, ToolProvider};
use super::error::ActionError;
use super::request::Privacy;
use async_trait::async_trait;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use symbi_sandbox::risk::DataSensitivity;
use symbi_sandbox::{RunRequest, Sandbox, SandboxError, ToolRegistry};
use symbi_types::{ActionCategory, ResourceBudget};

/// The command tools of one tools directory, run through one sandbox.
pub struct CommandTools {
    sandbox: Arc<Sandbox>,
    registry: Arc<ToolRegistry>,
    budget: Option<ResourceBudget>,
}

impl CommandTools {
    /// Tools from `registry`, run in `sandbox`; `budget` caps every tool's limits.
    pub fn new(
        sandbox: Arc<Sandbox>,
        registry: Arc<ToolRegistry>,
        budget: Option<ResourceBudget>,
    ) -> Self {
        Self {
            sandbox,
            registry,
            budget,
        }
    }
}

/// Maps a sandbox failure to the gateway's error (and so to a DSL error kind).
pub fn map_error(e: SandboxError) -> ActionError {
    match e {
        SandboxError::Unavailable { .. } => ActionError::SandboxUnavailable(e.to_string()),
        SandboxError::Timeout { limit, .. } => ActionError::Timeout(limit),
        SandboxError::UnknownTool(name) => ActionError::UnknownAction { name },
        other => {
            let details = other.details();
            ActionError::Failed {
                kind: other.reported_kind().map(str::to_string),
                message: other.to_string(),
                details: (!details.is_null()).then_some(details),
            }
        }
    }
}

#[async_trait]
impl ToolProvider for CommandTools {
    fn lookup(&self, name: &str) -> Option<ToolDescriptor> {
        let m = self.registry.get(name)?;
        Some(ToolDescriptor {
            name: m.name.clone(),
            kind: "command".into(),
            server: None,
            category: m.category,
            schema_verified: None,
            tier: m.min_tier,
            required_capabilities: m.capabilities.clone(),
            input_schema: Some(m.input_schema.clone()),
        })
    }

    fn names(&self) -> Vec<String> {
        self.registry.iter().map(|m| m.name.clone()).collect()
    }

    async fn invoke(
        &self,
        tool: &ToolDescriptor,
        input: Value,
        call: Call<'_>,
    ) -> Result<ActionOutput, ActionError> {
        let manifest = self
            .registry
            .get(&tool.name)
            .ok_or_else(|| ActionError::UnknownAction {
                name: tool.name.clone(),
            })?;
        let mut budget = call.scope.budget.or(self.budget);
        if let (Some(b), Some(cores)) = (budget.as_mut(), call.request.env.max_cpu_cores) {
            b.cpu_millicores = (cores * 1000.0).round().clamp(1.0, u32::MAX as f64) as u32;
        }
        let privacy = match call.request.env.privacy {
            Some(Privacy::Strict) => "strict",
            Some(Privacy::High) | Some(Privacy::Differential) => "high",
            Some(Privacy::Medium) | None => "medium",
            Some(Privacy::Low) => "low",
        };
        let mut labels = BTreeMap::new();
        labels.insert("org.symbi.agent".to_string(), call.scope.agent_name.clone());
        labels.insert(
            "org.symbi.execution".to_string(),
            call.scope.execution.to_string(),
        );
        let req = RunRequest {
            agent_min_tier: call.options.min_tier,
            policy_conditions: Vec::new(),
            budget,
            // Network egress from a sandbox is granted only when the category says so and
            // the decision allowed it; on this host that is still a private loopback.
            network_granted: call.category == ActionCategory::NetworkAccess,
            data_sensitivity: Some(DataSensitivity::from_privacy(privacy)),
            deadline: call.options.timeout,
            labels,
        };
        let outcome = self
            .sandbox
            .run_tool(manifest, &input, &req)
            .await
            .map_err(map_error)?;
        let record = serde_json::to_value(&outcome).ok().map(|mut r| {
            // The output itself is recorded (or not) by the gateway per audit level.
            if let Value::Object(m) = &mut r {
                m.remove("output");
                m.remove("stderr");
            }
            r
        });
        Ok(ActionOutput {
            value: outcome.output.to_json(),
            record,
        })
    }
}

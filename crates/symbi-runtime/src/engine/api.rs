//! Engine operations the HTTP API needs beyond loading program files: one agent from
//! source under a display name (`POST /api/v1/agents`), and updates (`PUT`).

use super::{AgentProgram, Engine, EngineError, diagnostic_views};
use crate::spec::Validation;
use std::collections::BTreeMap;
use std::sync::Arc;
use symbi_dsl::LoadedProgram;
use symbi_types::AgentId;

impl Engine {
    /// Checks a program without registering anything; errors carry positioned diagnostics
    /// (nothing is registered, unlike [`Engine::load_source`], which keeps failed agents).
    pub fn check_source(
        &self,
        file: &str,
        source: &str,
    ) -> Result<Arc<LoadedProgram>, EngineError> {
        symbi_dsl::load(file, source, &self.check_options()).map_err(|e| EngineError::Program {
            rendered: e.render_all(),
            diagnostics: diagnostic_views(&e.source_file, &e.diagnostics),
            failed_agents: Vec::new(),
        })
    }

    /// Which agent of `program` the API means by `display_name`: the one with that name, or
    /// the only one.
    pub fn pick_agent(program: &LoadedProgram, display_name: &str) -> Result<String, EngineError> {
        if program.agent(display_name).is_some() {
            return Ok(display_name.to_string());
        }
        match program.agents() {
            [one] => Ok(one.name().to_string()),
            [] => Err(EngineError::AgentNameNotFound(display_name.to_string())),
            many => Err(EngineError::AmbiguousAgent(
                many.iter()
                    .map(|a| a.name().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            )),
        }
    }

    /// Registers one agent of a program source under `display_name` with `metadata`
    /// (HTTP API create). A program with errors registers nothing.
    pub async fn create_agent_from_source(
        &self,
        file: &str,
        source: &str,
        display_name: &str,
        metadata: BTreeMap<String, String>,
    ) -> Result<AgentId, EngineError> {
        let program = self.check_source(file, source)?;
        let agent = Self::pick_agent(&program, display_name)?;
        let id = self
            .register_as(program, &agent, display_name, Validation::Valid)
            .await?;
        if let Some(e) = self.runtime().get(id) {
            e.merge_metadata(metadata);
        }
        Ok(id)
    }

    /// Renames an agent and/or replaces its program (the new program must check; the agent
    /// keeps its id, state and history; running executions finish with the old program).
    pub fn update_agent(
        &self,
        id: AgentId,
        name: Option<&str>,
        source: Option<(&str, &str)>,
    ) -> Result<(), EngineError> {
        let entry = self
            .runtime()
            .get(id)
            .ok_or(EngineError::AgentNotFound(id))?;
        let new_program = match source {
            Some((file, text)) => {
                let program = self.check_source(file, text)?;
                let display = name
                    .map(str::to_string)
                    .unwrap_or_else(|| entry.name().to_string());
                let agent = Self::pick_agent(&program, &display)?;
                Some(Arc::new(AgentProgram { program, agent }))
            }
            None => None,
        };
        if let Some(p) = new_program {
            entry.set_program(Some(p));
        }
        if let Some(n) = name {
            self.runtime().rename(id, n);
        }
        Ok(())
    }
}

//! A checked, compiled, immutable program: what the runtime loads and executes.
//!
//! [`load`] parses, checks and compiles one file. The result, [`LoadedProgram`], is shared
//! (`Arc`) by every execution of its agents and gives the runtime everything it needs
//! about the file: agents (parameters and types, return type, capabilities, `with`
//! environments, memory mode, audit settings, policy rules), schedules, channels, memory
//! stores, webhooks and metadata.
//!
//! ```
//! use symbi_dsl::{load, CheckOptions};
//! let src = r#"agent hello(name: String) -> String { with timeout = 1s { "hi " + name } }"#;
//! let prog = load("hello.symbi", src, &CheckOptions::default()).unwrap();
//! let agent = prog.agent("hello").unwrap();
//! assert_eq!(agent.params()[0].name, "name");
//! ```

pub mod items;

pub use items::{ChannelSpec, MemorySpec, ScheduleSpec, WebhookSpec};

use crate::ast;
use crate::check::{self, CheckOptions};
use crate::compile::{Compiler, Tables};
use crate::diagnostic::{Diagnostic, SourceFile};
use crate::host::{BlockEnv, MemoryMode};
use crate::interp::ir::{Block, FnCode, ParamCode};
use crate::rules::{self, AuditSettings, ChannelRuleSet, CompiledPolicy};
use crate::types::Ty;
use std::collections::HashMap;
use std::sync::Arc;

/// Why a file could not be loaded: its diagnostics (at least one error).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", render(.source_file.as_ref(), .diagnostics))]
pub struct LoadError {
    /// Every diagnostic of the file (errors, warnings, notes).
    pub diagnostics: Vec<Diagnostic>,
    /// The file, to render the diagnostics.
    pub source_file: Arc<SourceFile>,
}

fn render(f: &SourceFile, d: &[Diagnostic]) -> String {
    d.iter()
        .filter(|d| d.is_error())
        .map(|d| f.render(d))
        .collect::<Vec<_>>()
        .join("")
}

impl LoadError {
    /// All diagnostics rendered in the human form of GRAMMAR 6.1.
    pub fn render_all(&self) -> String {
        self.diagnostics
            .iter()
            .map(|d| self.source_file.render(d))
            .collect()
    }
}

/// A parameter of an agent.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamInfo {
    /// Its name.
    pub name: String,
    /// Its declared type.
    pub ty: Ty,
    /// Option-like: may be left out of the input (binds null).
    pub optional: bool,
}

/// An agent of a loaded program.
#[derive(Debug)]
pub struct AgentDef {
    pub(crate) name: Arc<str>,
    pub(crate) params: Vec<ParamInfo>,
    pub(crate) param_code: Vec<ParamCode>,
    pub(crate) ret: Option<Ty>,
    pub(crate) capabilities: Vec<String>,
    pub(crate) envs: Vec<Arc<BlockEnv>>,
    pub(crate) bodies: Vec<Block>,
    pub(crate) block_spans: Vec<crate::span::Span>,
    pub(crate) n_slots: u32,
    pub(crate) memory: MemoryMode,
    pub(crate) policies: Vec<Arc<CompiledPolicy>>,
    /// Top-level policies compiled for this agent, by name (they all apply).
    pub(crate) file_policies: Vec<Arc<CompiledPolicy>>,
    pub(crate) audit: AuditSettings,
    pub(crate) span: crate::span::Span,
}

impl AgentDef {
    /// The agent's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Parameters in declared order.
    pub fn params(&self) -> &[ParamInfo] {
        &self.params
    }
    /// The declared return type.
    pub fn return_type(&self) -> Option<&Ty> {
        self.ret.as_ref()
    }
    /// Declared capabilities.
    pub fn capabilities(&self) -> &[String] {
        &self.capabilities
    }
    /// The environment of each `with` block, in source order.
    pub fn with_blocks(&self) -> &[Arc<BlockEnv>] {
        &self.envs
    }
    /// The memory mode (the same in every block).
    pub fn memory_mode(&self) -> MemoryMode {
        self.memory
    }
    /// Whether the agent is persistent (stays Ready and keeps its state).
    pub fn is_persistent(&self) -> bool {
        self.memory.is_persistent()
    }
    /// What the audit trail records for this agent (its and the file's `audit` rules).
    pub fn audit_settings(&self) -> &AuditSettings {
        &self.audit
    }
    /// Names of the policies that apply (own, then the file's top-level ones).
    pub fn policy_names(&self) -> Vec<&str> {
        self.policies
            .iter()
            .chain(self.file_policies.iter())
            .map(|p| p.name.as_str())
            .collect()
    }
}

/// A loaded program (one file).
#[derive(Debug)]
pub struct LoadedProgram {
    pub(crate) file_name: Arc<str>,
    pub(crate) source: Arc<SourceFile>,
    pub(crate) functions: Vec<FnCode>,
    pub(crate) agents: Vec<AgentDef>,
    agent_index: HashMap<String, usize>,
    pub(crate) types: HashMap<String, Ty>,
    metadata: serde_json::Map<String, serde_json::Value>,
    schedules: Vec<ScheduleSpec>,
    channels: Vec<(ChannelSpec, Arc<ChannelRuleSet>)>,
    memories: Vec<MemorySpec>,
    webhooks: Vec<WebhookSpec>,
    diagnostics: Vec<Diagnostic>,
}

impl LoadedProgram {
    /// The file name as loaded.
    pub fn file_name(&self) -> &str {
        &self.file_name
    }
    /// The source file (for rendering diagnostics and positions).
    pub fn source(&self) -> &Arc<SourceFile> {
        &self.source
    }
    /// An agent by name.
    pub fn agent(&self, name: &str) -> Option<&AgentDef> {
        self.agent_index.get(name).map(|&i| &self.agents[i])
    }
    /// Every agent, in source order.
    pub fn agents(&self) -> &[AgentDef] {
        &self.agents
    }
    /// Names of the file's functions (top-level ones, then agents' as `agent.fn`).
    pub fn function_names(&self) -> Vec<String> {
        self.functions
            .iter()
            .map(|f| f.display.trim_start_matches("function ").to_string())
            .collect()
    }
    /// A `type` of the file.
    pub fn type_named(&self, name: &str) -> Option<&Ty> {
        self.types.get(name)
    }
    /// Merged metadata.
    pub fn metadata(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.metadata
    }
    /// Schedules.
    pub fn schedules(&self) -> &[ScheduleSpec] {
        &self.schedules
    }
    /// Channels with their compiled channel policies.
    pub fn channels(&self) -> impl Iterator<Item = (&ChannelSpec, &Arc<ChannelRuleSet>)> {
        self.channels.iter().map(|(c, r)| (c, r))
    }
    /// Memory stores.
    pub fn memories(&self) -> &[MemorySpec] {
        &self.memories
    }
    /// Webhooks.
    pub fn webhooks(&self) -> &[WebhookSpec] {
        &self.webhooks
    }
    /// The warnings and notes of the check (errors prevent loading).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }
    /// `file:line:col` of a byte offset.
    pub fn location(&self, offset: u32) -> String {
        self.source.location(offset)
    }
}

/// Parses, checks and compiles a file. Any error diagnostic (syntax or check) fails the
/// load with every diagnostic; warnings and notes are kept in
/// [`LoadedProgram::diagnostics`].
pub fn load(
    file: &str,
    source: &str,
    opts: &CheckOptions,
) -> Result<Arc<LoadedProgram>, LoadError> {
    let parsed = crate::parser::parse(source, file);
    load_parsed(&parsed, opts)
}

/// [`load`] for an already parsed file.
pub fn load_parsed(
    parsed: &crate::parser::Parsed,
    opts: &CheckOptions,
) -> Result<Arc<LoadedProgram>, LoadError> {
    let mut diagnostics = parsed.diagnostics.clone();
    if !parsed.has_errors() {
        diagnostics.extend(check::check(parsed, opts));
    }
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(LoadError {
            diagnostics,
            source_file: parsed.source.clone(),
        });
    }
    Ok(Arc::new(compile_program(
        &parsed.program,
        parsed.source.clone(),
        opts,
        diagnostics,
    )))
}

fn compile_program(
    p: &ast::Program,
    source: Arc<SourceFile>,
    opts: &CheckOptions,
    diagnostics: Vec<Diagnostic>,
) -> LoadedProgram {
    let file_name: Arc<str> = Arc::from(source.name());
    let (tables, fns) = Tables::new(p);
    let mut c = Compiler::new(&tables);
    let functions: Vec<FnCode> = fns
        .iter()
        .map(|(owner, f)| c.function(owner.as_deref(), f))
        .collect();
    let mut scratch = Vec::new();
    let agent_names: Vec<&str> = p
        .items
        .iter()
        .filter_map(|i| match i {
            ast::Item::Agent(a) => Some(a.name.as_str()),
            _ => None,
        })
        .collect();
    let top_policies: Vec<&ast::Policy> = p
        .items
        .iter()
        .filter_map(|i| match i {
            ast::Item::Policy(pol) => Some(pol),
            _ => None,
        })
        .collect();
    let policy_names: Vec<&str> = top_policies.iter().map(|p| p.name.as_str()).collect();
    let mut agents = Vec::new();
    let mut agent_index = HashMap::new();
    for item in &p.items {
        let ast::Item::Agent(a) = item else { continue };
        if agent_index.contains_key(a.name.as_str()) {
            continue;
        }
        let (param_code, bodies, n_slots) = c.agent(a);
        let envs: Vec<Arc<BlockEnv>> = a
            .with_blocks()
            .map(|w| {
                let mut env = items::with_env(&w.attrs, opts.mode, &mut scratch);
                let pos = source.position(w.span.start);
                env.location = Some(crate::host::SourceLocation {
                    file: file_name.clone(),
                    line: pos.line,
                    column: pos.column,
                });
                Arc::new(env)
            })
            .collect();
        let memory = envs
            .iter()
            .map(|e| e.memory)
            .find(|m| *m != MemoryMode::Ephemeral)
            .unwrap_or_default();
        let capabilities = a
            .items
            .iter()
            .filter_map(|i| match i {
                ast::AgentItem::Capabilities(c) => Some(c),
                _ => None,
            })
            .flat_map(|c| c.list.elems.iter())
            .filter_map(|e| match &e.kind {
                ast::ExprKind::Lit(ast::LitKind::Str(s)) => Some(s.to_string()),
                ast::ExprKind::Var(v) => Some(v.to_string()),
                _ => None,
            })
            .collect();
        let params: Vec<ParamInfo> = param_code
            .iter()
            .map(|pc| ParamInfo {
                name: pc.name.to_string(),
                ty: pc.ty.clone(),
                optional: pc.optional,
            })
            .collect();
        let own: Vec<&ast::Policy> = a
            .items
            .iter()
            .filter_map(|i| match i {
                ast::AgentItem::Policy(pol) => Some(pol),
                _ => None,
            })
            .collect();
        let ctx = rules::PolicyContext {
            agent: Some(a.name.as_str()),
            params: &params,
        };
        let policies: Vec<Arc<CompiledPolicy>> = own
            .iter()
            .map(|pol| Arc::new(rules::compile_policy(&mut c, &source, &ctx, pol)))
            .collect();
        let file_policies: Vec<Arc<CompiledPolicy>> = top_policies
            .iter()
            .map(|pol| Arc::new(rules::compile_policy(&mut c, &source, &ctx, pol)))
            .collect();
        let audit = rules::audit_settings(policies.iter().chain(file_policies.iter()));
        agent_index.insert(a.name.to_string(), agents.len());
        agents.push(AgentDef {
            name: Arc::from(a.name.as_str()),
            params,
            param_code,
            ret: a.ret.as_ref().map(|t| c.ty(t)),
            capabilities,
            envs,
            bodies,
            block_spans: a.with_blocks().map(|w| w.span).collect(),
            n_slots,
            memory,
            policies,
            file_policies,
            audit,
            span: a.span,
        });
    }
    let mut schedules = Vec::new();
    let mut channels = Vec::new();
    let mut memories = Vec::new();
    let mut webhooks = Vec::new();
    let mut meta_blocks = Vec::new();
    for item in &p.items {
        match item {
            ast::Item::Schedule(s) => schedules.push(items::schedule(
                s,
                &agent_names,
                &policy_names,
                &mut scratch,
            )),
            ast::Item::Channel(ch) => {
                let spec = items::channel(ch, &opts.channel_platforms, &mut scratch);
                let rs = rules::compile_channel(&mut c, &source, ch);
                channels.push((spec, Arc::new(rs)));
            }
            ast::Item::Memory(m) => memories.push(items::memory(m, &mut scratch)),
            ast::Item::Webhook(w) => webhooks.push(items::webhook(w, &agent_names, &mut scratch)),
            ast::Item::Metadata(m) => meta_blocks.push(m),
            _ => {}
        }
    }
    let metadata = items::metadata(&meta_blocks, &mut scratch);
    let types = tables.types.clone();
    LoadedProgram {
        file_name,
        source,
        functions,
        agents,
        agent_index,
        types,
        metadata,
        schedules,
        channels,
        memories,
        webhooks,
        diagnostics,
    }
}

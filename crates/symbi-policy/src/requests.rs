//! Constructors of [`PolicyRequest`]s for every enforcement point, so the runtime, the
//! bus, the sandbox and the context manager all describe their questions in one model
//! (docs/policies.md "Entity and action model").
//!
//! ```
//! use symbi_policy::requests::{self, DataAccess};
//! let me = requests::agent_principal("ticket_intake", None, ["memory_write"], None);
//! let req = requests::data_access(me, DataAccess::MemoryWrite { store: "ticket_log".into() }, vec![]);
//! assert_eq!(req.category.as_str(), "memory_write");
//! assert_eq!(req.subject.kind.cedar_type(), "MemoryStore");
//! ```

use crate::model::PRINCIPAL_TYPE_ATTR;
use serde_json::{Map, Value, json};
use symbi_types::{
    ActionCategory, AgentId, ExecutionId, PolicyRequest, Principal, SandboxTier, Subject,
    SubjectKind,
};

/// An agent as principal: name, registered id, declared capabilities, and the minimum
/// sandbox tier it runs with.
pub fn agent_principal<S: Into<String>>(
    name: impl Into<String>,
    id: Option<AgentId>,
    capabilities: impl IntoIterator<Item = S>,
    sandbox: Option<SandboxTier>,
) -> Principal {
    let mut p = Principal::agent(name);
    p.agent_id = id;
    p.capabilities = capabilities.into_iter().map(Into::into).collect();
    if let Some(t) = sandbox {
        p.attributes
            .insert("sandbox".into(), Value::String(t.as_str().into()));
    }
    p
}

/// An API client (identified by its token's name) as principal, with its roles.
pub fn client_principal<S: Into<String>>(
    name: impl Into<String>,
    roles: impl IntoIterator<Item = S>,
) -> Principal {
    typed_principal("Client", name, roles)
}

/// An operator (CLI user, scheduler) as principal, with its roles.
pub fn operator_principal<S: Into<String>>(
    name: impl Into<String>,
    roles: impl IntoIterator<Item = S>,
) -> Principal {
    typed_principal("Operator", name, roles)
}

fn typed_principal<S: Into<String>>(
    ty: &str,
    name: impl Into<String>,
    roles: impl IntoIterator<Item = S>,
) -> Principal {
    let mut p = Principal::agent(name);
    p.attributes
        .insert(PRINCIPAL_TYPE_ATTR.into(), Value::String(ty.into()));
    let roles: Vec<Value> = roles.into_iter().map(|r| Value::String(r.into())).collect();
    p.attributes.insert("roles".into(), Value::Array(roles));
    p
}

/// The agent an operation or message targets.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AgentTarget {
    /// Agent name.
    pub name: String,
    /// Registered id, if registered.
    pub id: Option<AgentId>,
    /// Whether the agent is suspended.
    pub suspended: bool,
}

impl AgentTarget {
    /// A target by name only (not registered yet).
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    fn subject(&self) -> Subject {
        Subject::named(SubjectKind::Agent, self.name.clone())
            .with("id", self.id.map(|i| i.to_string()).unwrap_or_default())
            .with("registered", self.id.is_some())
            .with("suspended", self.suspended)
    }
}

fn op(by: Principal, category: ActionCategory, subject: Subject) -> PolicyRequest {
    PolicyRequest::new(by, category, category.as_str(), subject)
}

/// Enforcement point: registering an agent (`create_agent`).
pub fn create_agent(by: Principal, agent: &AgentTarget) -> PolicyRequest {
    op(by, ActionCategory::CreateAgent, agent.subject())
}

/// Enforcement point: changing an agent (`configure_agent`): update, delete, suspend,
/// resume. `change` names what changes (`update`, `delete`, `resume`, …) and is in the
/// named arguments, so it is visible to DSL guards and the audit record.
pub fn configure_agent(by: Principal, agent: &AgentTarget, change: &str) -> PolicyRequest {
    let mut r = op(by, ActionCategory::ConfigureAgent, agent.subject());
    r.named
        .insert("change".into(), Value::String(change.into()));
    r
}

/// Enforcement point: running an agent (`execute_agent`); `trigger` is what started it
/// (`api`, `cli`, `schedule`, `webhook`, `message`, `delegate`).
pub fn execute_agent(by: Principal, agent: &AgentTarget, trigger: &str) -> PolicyRequest {
    let mut r = op(by, ActionCategory::ExecuteAgent, agent.subject());
    r.context
        .insert("trigger".into(), Value::String(trigger.into()));
    r
}

/// The resources the resource manager allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceKind {
    /// Bytes of memory.
    Memory,
    /// Milli-cores of CPU.
    Cpu,
    /// Bytes of disk I/O.
    DiskIo,
    /// Bytes of network I/O.
    NetworkIo,
    /// Milliseconds of wall time.
    WallTime,
}

impl ResourceKind {
    /// The `Resource` entity id: `memory`, `cpu`, `disk_io`, `network_io`, `wall_time`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Cpu => "cpu",
            Self::DiskIo => "disk_io",
            Self::NetworkIo => "network_io",
            Self::WallTime => "wall_time",
        }
    }
}

/// Enforcement point: reserving resources for an agent (`allocate_resource`). `amount` is
/// in the unit of the kind (bytes, milli-cores, ms).
pub fn allocate_resource(agent: Principal, kind: ResourceKind, amount: u64) -> PolicyRequest {
    // Cedar integers are i64; larger requests are clamped (and then surely over any limit).
    let amount = amount.min(i64::MAX as u64);
    op(
        agent,
        ActionCategory::AllocateResource,
        Subject::named(SubjectKind::Resource, kind.as_str()).with("amount", amount),
    )
}

/// Enforcement point: a direct message from `from` to an agent (`message_send`), asked both
/// when sending and when the bus routes it. `size` is the payload size in bytes.
pub fn send_message(from: Principal, to: &AgentTarget, size: usize) -> PolicyRequest {
    let mut r = PolicyRequest::new(from, ActionCategory::MessageSend, "send_to", to.subject());
    r.named.insert("size".into(), json!(size));
    r
}

/// Enforcement point: the bus routing a message to its recipient (`message_send`, with
/// `context.trigger = "route"` so policies can tell routing from sending).
pub fn route_message(from: Principal, to: &AgentTarget, size: usize) -> PolicyRequest {
    let mut r = send_message(from, to, size);
    r.context
        .insert("trigger".into(), Value::String("route".into()));
    r
}

/// Enforcement point: publishing to a topic (`publish`). A `topic://` prefix is removed.
pub fn publish(from: Principal, topic: &str, size: usize) -> PolicyRequest {
    let topic = topic.strip_prefix("topic://").unwrap_or(topic);
    let mut r = PolicyRequest::new(
        from,
        ActionCategory::Publish,
        "publish",
        Subject::named(SubjectKind::Topic, topic),
    );
    r.named.insert("size".into(), json!(size));
    r
}

/// Enforcement point: subscribing to a topic (`subscribe`).
pub fn subscribe(by: Principal, topic: &str) -> PolicyRequest {
    let topic = topic.strip_prefix("topic://").unwrap_or(topic);
    op(
        by,
        ActionCategory::Subscribe,
        Subject::named(SubjectKind::Topic, topic),
    )
}

/// A tool as a policy subject (GRAMMAR.md §4.10: `{name, kind, server, schema_verified, tier}`).
#[derive(Clone, Debug, PartialEq)]
pub struct ToolSubject {
    /// Tool name.
    pub name: String,
    /// `command`, `mcp`, …
    pub kind: String,
    /// MCP server name (empty for command tools).
    pub server: String,
    /// Whether SchemaPin verification passed.
    pub schema_verified: bool,
    /// Tier it will run in, if sandboxed.
    pub tier: Option<SandboxTier>,
    /// The category the tool's manifest declares (default `invoke_tool`).
    pub category: ActionCategory,
}

impl ToolSubject {
    /// A tool known only by name (unverified, category `invoke_tool`).
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind: String::new(),
            server: String::new(),
            schema_verified: false,
            tier: None,
            category: ActionCategory::InvokeTool,
        }
    }
}

/// Enforcement point: a tool call (`invoke_tool`, or the category the manifest declares,
/// e.g. `execute_code`, `network_access`). `args` are the positional arguments.
pub fn invoke_tool(agent: Principal, tool: ToolSubject, args: Vec<Value>) -> PolicyRequest {
    let subject = Subject::named(SubjectKind::Tool, tool.name.clone())
        .with("kind", tool.kind)
        .with("server", tool.server)
        .with("schema_verified", tool.schema_verified)
        .with(
            "tier",
            tool.tier
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
        );
    let mut r = PolicyRequest::new(agent, tool.category, tool.name, subject);
    r.args = args;
    r
}

/// Enforcement point: an MCP tool call with named arguments.
pub fn invoke_mcp_tool(
    agent: Principal,
    tool: ToolSubject,
    named: Map<String, Value>,
) -> PolicyRequest {
    let mut r = invoke_tool(
        agent,
        ToolSubject {
            kind: "mcp".into(),
            ..tool
        },
        Vec::new(),
    );
    r.named = named;
    r
}

/// Data the context manager and the file/secret actions touch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataAccess {
    /// Reading a memory store (`memory_read`).
    MemoryRead {
        /// Store name (the agent's own state: its agent name).
        store: String,
    },
    /// Writing a memory store (`memory_write`).
    MemoryWrite {
        /// Store name.
        store: String,
    },
    /// Reading the shared knowledge base (`knowledge_read`).
    KnowledgeRead {
        /// Data set (collection) name.
        dataset: String,
    },
    /// Writing the shared knowledge base (`knowledge_write`).
    KnowledgeWrite {
        /// Data set name.
        dataset: String,
    },
    /// Reading a file (`file_read`).
    FileRead {
        /// Path.
        path: String,
        /// Inside the agent's project directory.
        in_project: bool,
    },
    /// Writing a file (`file_write`).
    FileWrite {
        /// Path.
        path: String,
        /// Inside the agent's project directory.
        in_project: bool,
    },
    /// Reading a secret (`secret_read`).
    SecretRead {
        /// Secret path (without `vault://`).
        path: String,
    },
}

/// Enforcement point: data access by an agent.
pub fn data_access(agent: Principal, access: DataAccess, args: Vec<Value>) -> PolicyRequest {
    let (category, name, subject) = match access {
        DataAccess::MemoryRead { store } => (
            ActionCategory::MemoryRead,
            "memory_read",
            Subject::named(SubjectKind::MemoryStore, store),
        ),
        DataAccess::MemoryWrite { store } => (
            ActionCategory::MemoryWrite,
            "memory_write",
            Subject::named(SubjectKind::MemoryStore, store),
        ),
        DataAccess::KnowledgeRead { dataset } => (
            ActionCategory::KnowledgeRead,
            "knowledge_search",
            Subject::named(SubjectKind::DataSet, dataset),
        ),
        DataAccess::KnowledgeWrite { dataset } => (
            ActionCategory::KnowledgeWrite,
            "knowledge_add",
            Subject::named(SubjectKind::DataSet, dataset),
        ),
        DataAccess::FileRead { path, in_project } => (
            ActionCategory::FileRead,
            "read_file",
            Subject::named(SubjectKind::File, path.clone())
                .with("path", path)
                .with("local", true)
                .with("in_project", in_project),
        ),
        DataAccess::FileWrite { path, in_project } => (
            ActionCategory::FileWrite,
            "write_file",
            Subject::named(SubjectKind::File, path.clone())
                .with("path", path)
                .with("local", true)
                .with("in_project", in_project),
        ),
        DataAccess::SecretRead { path } => {
            let path = path.strip_prefix("vault://").unwrap_or(&path).to_string();
            (
                ActionCategory::SecretRead,
                "secret",
                Subject::named(SubjectKind::Secret, path.clone()).with("path", path),
            )
        }
    };
    let mut r = PolicyRequest::new(agent, category, name, subject);
    r.args = args;
    r
}

/// Enforcement point: network egress (`network_access`) to `url` with `method`. The
/// subject is the host (`{url, domain, scheme, method}`); an unparsable URL gives a subject
/// with an empty domain, which no host rule matches.
pub fn network_access(agent: Principal, url: &str, method: &str) -> PolicyRequest {
    let (domain, scheme) = match url::Url::parse(url) {
        Ok(u) => (
            u.host_str()
                .map(|h| {
                    h.trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_ascii_lowercase()
                })
                .unwrap_or_default(),
            u.scheme().to_string(),
        ),
        Err(_) => (String::new(), String::new()),
    };
    let subject = Subject::named(SubjectKind::Url, domain.clone())
        .with("url", url)
        .with("domain", domain)
        .with("scheme", scheme)
        .with("method", method.to_ascii_uppercase());
    let name = format!("http.{}", method.to_ascii_lowercase());
    PolicyRequest::new(agent, ActionCategory::NetworkAccess, name, subject)
}

/// Enforcement point: a language-model call (`use_llm`) answered by `model` of `provider`.
pub fn use_llm(agent: Principal, model: &str, provider: &str) -> PolicyRequest {
    let subject = Subject::named(SubjectKind::Llm, model)
        .with("model", model)
        .with("provider", provider);
    PolicyRequest::new(agent, ActionCategory::UseLlm, "llm_call", subject)
}

/// Enforcement point: running another agent from agent code (`invoke_agent`: delegate,
/// ask, parallel, race). `call` is the callee as written (`delegate`, `ask`, …).
pub fn invoke_agent(agent: Principal, call: &str, target: &AgentTarget) -> PolicyRequest {
    PolicyRequest::new(agent, ActionCategory::InvokeAgent, call, target.subject())
}

/// Enforcement point: creating an agent from agent code (`spawn_agent`).
pub fn spawn_agent(agent: Principal, new_agent: &str) -> PolicyRequest {
    PolicyRequest::new(
        agent,
        ActionCategory::SpawnAgent,
        "spawn_agent",
        AgentTarget::named(new_agent).subject(),
    )
}

/// Enforcement point: asking a human for approval (`approval`, `request_approval(…)`).
pub fn request_approval(agent: Principal) -> PolicyRequest {
    PolicyRequest::new(
        agent,
        ActionCategory::Approval,
        "request_approval",
        Subject::named(SubjectKind::Other, "request_approval"),
    )
}

/// What the runtime knows about the execution an action belongs to; fills the request
/// context (`trigger`, `session`, `initiator`, `has_human_approval`) and `execution`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExecutionContext {
    /// The execution.
    pub execution: Option<ExecutionId>,
    /// What started it (`api`, `schedule`, …).
    pub trigger: Option<String>,
    /// Session id.
    pub session: Option<String>,
    /// Who started it.
    pub initiator: Option<String>,
    /// Whether a human approval for this action is on record.
    pub has_human_approval: bool,
}

/// Adds the execution context to a request (builder style).
pub fn in_execution(mut req: PolicyRequest, ctx: &ExecutionContext) -> PolicyRequest {
    req.execution = ctx.execution.or(req.execution);
    if let Some(t) = &ctx.trigger {
        req.context
            .insert("trigger".into(), Value::String(t.clone()));
    }
    if let Some(s) = &ctx.session {
        req.context
            .insert("session".into(), Value::String(s.clone()));
    }
    if let Some(i) = &ctx.initiator {
        req.context
            .insert("initiator".into(), Value::String(i.clone()));
    }
    req.context.insert(
        "has_human_approval".into(),
        Value::Bool(ctx.has_human_approval),
    );
    req
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model;

    /// Every builder produces a request that fits the Cedar model.
    #[test]
    fn every_builder_fits_the_model() {
        let m = model::model().unwrap();
        let agent = agent_principal("a", Some(AgentId::new()), ["x"], Some(SandboxTier::Tier2));
        let client = client_principal("ci", ["admin"]);
        let target = AgentTarget {
            name: "b".into(),
            id: Some(AgentId::new()),
            suspended: false,
        };
        let reqs = vec![
            create_agent(client.clone(), &target),
            configure_agent(
                operator_principal("op", Vec::<String>::new()),
                &target,
                "resume",
            ),
            execute_agent(agent.clone(), &target, "delegate"),
            allocate_resource(agent.clone(), ResourceKind::Memory, u64::MAX),
            send_message(agent.clone(), &target, 10),
            route_message(client.clone(), &target, 10),
            publish(agent.clone(), "topic://support/urgent", 3),
            subscribe(client.clone(), "support/urgent"),
            invoke_tool(
                agent.clone(),
                ToolSubject::named("search"),
                vec![json!("q")],
            ),
            invoke_tool(
                agent.clone(),
                ToolSubject {
                    category: ActionCategory::ExecuteCode,
                    ..ToolSubject::named("py")
                },
                vec![],
            ),
            invoke_mcp_tool(agent.clone(), ToolSubject::named("fs.read"), Map::new()),
            data_access(
                agent.clone(),
                DataAccess::MemoryRead { store: "m".into() },
                vec![],
            ),
            data_access(
                agent.clone(),
                DataAccess::MemoryWrite { store: "m".into() },
                vec![],
            ),
            data_access(
                agent.clone(),
                DataAccess::KnowledgeRead {
                    dataset: "d".into(),
                },
                vec![],
            ),
            data_access(
                agent.clone(),
                DataAccess::KnowledgeWrite {
                    dataset: "d".into(),
                },
                vec![],
            ),
            data_access(
                agent.clone(),
                DataAccess::FileRead {
                    path: "/p".into(),
                    in_project: true,
                },
                vec![],
            ),
            data_access(
                agent.clone(),
                DataAccess::FileWrite {
                    path: "/p".into(),
                    in_project: false,
                },
                vec![],
            ),
            data_access(
                agent.clone(),
                DataAccess::SecretRead {
                    path: "vault://k".into(),
                },
                vec![],
            ),
            network_access(agent.clone(), "https://Example.com:8443/x?y", "get"),
            network_access(agent.clone(), "not a url", "get"),
            use_llm(agent.clone(), "gpt-4o", "openai"),
            invoke_agent(agent.clone(), "delegate", &target),
            spawn_agent(agent.clone(), "child"),
            request_approval(agent.clone()),
        ];
        for r in &reqs {
            m.cedar_request(r)
                .unwrap_or_else(|e| panic!("{} does not fit: {e}", r.category));
        }
        let covered: std::collections::HashSet<_> = reqs.iter().map(|r| r.category).collect();
        for c in ActionCategory::ALL {
            assert!(covered.contains(&c), "no builder for {c}");
        }
        let net = &reqs[18];
        assert_eq!(net.subject.name, "example.com");
        assert_eq!(net.subject.attrs["scheme"], "https");
        assert_eq!(net.subject.attrs["method"], "GET");
    }
}

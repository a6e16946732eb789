//! Actions: the one vocabulary shared by DSL policy patterns, Cedar policies and audit
//! event types (GRAMMAR.md §5.3), and the request the policy engine decides on.

use crate::ids::{AgentId, ExecutionId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;

/// What kind of thing an action does. The snake_case spelling ([`ActionCategory::as_str`])
/// is the Cedar action id and the audit event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionCategory {
    /// A tool (command tool, MCP tool) call.
    InvokeTool,
    /// A command tool whose manifest marks it as running code.
    ExecuteCode,
    /// A language-model call (`llm_call`, `reason`, …).
    UseLlm,
    /// Running another agent (`delegate`, `ask`, `parallel`, calling an agent by name).
    InvokeAgent,
    /// Creating an agent at run time.
    SpawnAgent,
    /// A direct message to another agent.
    MessageSend,
    /// A message to a topic.
    Publish,
    /// Asking a human for approval.
    Approval,
    /// Reading an agent's memory.
    MemoryRead,
    /// Writing an agent's memory.
    MemoryWrite,
    /// Reading the shared knowledge base.
    KnowledgeRead,
    /// Writing the shared knowledge base.
    KnowledgeWrite,
    /// Any network egress.
    NetworkAccess,
    /// Reading a file.
    FileRead,
    /// Writing a file.
    FileWrite,
    /// Reading a secret (`vault://…`).
    SecretRead,
    /// Runtime operation: registering an agent.
    CreateAgent,
    /// Runtime operation: changing an agent's configuration or program.
    ConfigureAgent,
    /// Runtime operation: starting an execution of an agent.
    ExecuteAgent,
    /// Runtime operation: subscribing to a topic.
    Subscribe,
    /// Runtime operation: reserving resources for an agent.
    AllocateResource,
}

impl ActionCategory {
    /// Every category, in declaration order.
    pub const ALL: [ActionCategory; 21] = [
        Self::InvokeTool,
        Self::ExecuteCode,
        Self::UseLlm,
        Self::InvokeAgent,
        Self::SpawnAgent,
        Self::MessageSend,
        Self::Publish,
        Self::Approval,
        Self::MemoryRead,
        Self::MemoryWrite,
        Self::KnowledgeRead,
        Self::KnowledgeWrite,
        Self::NetworkAccess,
        Self::FileRead,
        Self::FileWrite,
        Self::SecretRead,
        Self::CreateAgent,
        Self::ConfigureAgent,
        Self::ExecuteAgent,
        Self::Subscribe,
        Self::AllocateResource,
    ];

    /// The snake_case word: Cedar action id, audit event type, DSL pattern word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvokeTool => "invoke_tool",
            Self::ExecuteCode => "execute_code",
            Self::UseLlm => "use_llm",
            Self::InvokeAgent => "invoke_agent",
            Self::SpawnAgent => "spawn_agent",
            Self::MessageSend => "message_send",
            Self::Publish => "publish",
            Self::Approval => "approval",
            Self::MemoryRead => "memory_read",
            Self::MemoryWrite => "memory_write",
            Self::KnowledgeRead => "knowledge_read",
            Self::KnowledgeWrite => "knowledge_write",
            Self::NetworkAccess => "network_access",
            Self::FileRead => "file_read",
            Self::FileWrite => "file_write",
            Self::SecretRead => "secret_read",
            Self::CreateAgent => "create_agent",
            Self::ConfigureAgent => "configure_agent",
            Self::ExecuteAgent => "execute_agent",
            Self::Subscribe => "subscribe",
            Self::AllocateResource => "allocate_resource",
        }
    }

    /// The runtime's own operations are not calls of agent code.
    pub fn is_runtime_operation(self) -> bool {
        matches!(
            self,
            Self::CreateAgent
                | Self::ConfigureAgent
                | Self::ExecuteAgent
                | Self::Subscribe
                | Self::AllocateResource
        )
    }

    /// Whether a pattern word names this category. Besides the category's own word,
    /// `file_access` matches both file categories (GRAMMAR.md §5.3).
    ///
    /// ```
    /// use symbi_types::ActionCategory;
    /// assert!(ActionCategory::FileWrite.matches_word("file_access"));
    /// assert!(ActionCategory::Publish.matches_word("publish"));
    /// assert!(!ActionCategory::Publish.matches_word("file_access"));
    /// ```
    pub fn matches_word(self, word: &str) -> bool {
        word == self.as_str()
            || (word == "file_access" && matches!(self, Self::FileRead | Self::FileWrite))
    }
}

impl fmt::Display for ActionCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ActionCategory {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ActionCategory::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown action category `{s}`"))
    }
}

/// Who performs an action: an agent (with the principal that started its execution) or
/// an operator/API client acting on the runtime.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Principal {
    /// Registered agent id, when the principal is an agent.
    pub agent_id: Option<AgentId>,
    /// Agent name (or client name for runtime operations).
    pub name: String,
    /// Capabilities the agent declares (`capabilities = [...]`).
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Further attributes (sandbox tier, who started the execution, clearances, …).
    #[serde(default)]
    pub attributes: Map<String, Value>,
}

impl Principal {
    /// A principal for agent `name`.
    pub fn agent(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }
}

/// The kind of thing an action acts on. Each kind is a Cedar entity type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// A tool: `{name, kind, server, schema_verified, tier}`.
    Tool,
    /// An agent: `{name, id, registered, suspended}`.
    Agent,
    /// A bus topic: `{name}`.
    Topic,
    /// A URL / host: `{url, domain, scheme, method}`.
    Url,
    /// A file: `{path, local, in_project}`.
    File,
    /// A memory store: `{name}`.
    MemoryStore,
    /// A knowledge data set: `{name}`.
    DataSet,
    /// A secret: `{path}`.
    Secret,
    /// A language model: `{model, provider}`.
    Llm,
    /// A runtime resource (memory, CPU, …): `{name, amount}`.
    Resource,
    /// Anything else: `{name}`.
    Other,
}

impl SubjectKind {
    /// The Cedar entity type name for this kind (see `policies/symbi.cedarschema`).
    pub fn cedar_type(self) -> &'static str {
        match self {
            Self::Tool => "Tool",
            Self::Agent => "Agent",
            Self::Topic => "Topic",
            Self::Url => "Host",
            Self::File => "File",
            Self::MemoryStore => "MemoryStore",
            Self::DataSet => "DataSet",
            Self::Secret => "Secret",
            Self::Llm => "Model",
            Self::Resource => "Resource",
            Self::Other => "Resource",
        }
    }
}

/// What an action acts on (GRAMMAR.md §4.10 "subject").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    /// Entity kind.
    pub kind: SubjectKind,
    /// The entity's name (tool name, topic without `topic://`, domain for URLs, path …).
    pub name: String,
    /// All attributes of the subject map, `name` included.
    #[serde(default)]
    pub attrs: Map<String, Value>,
}

impl Subject {
    /// A subject with just a name; `attrs` gets `{name}`.
    pub fn named(kind: SubjectKind, name: impl Into<String>) -> Self {
        let name = name.into();
        let mut attrs = Map::new();
        attrs.insert("name".into(), Value::String(name.clone()));
        Self { kind, name, attrs }
    }

    /// Adds an attribute (builder style).
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.attrs.insert(key.to_string(), value.into());
        self
    }
}

/// One question for the policy engine: may `principal` perform `category`/`name` on
/// `subject` with these arguments in this context?
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyRequest {
    /// Who acts.
    pub principal: Principal,
    /// The action category.
    pub category: ActionCategory,
    /// The action's name as called (`http.get`, `publish`, a tool name); equal to the
    /// category word for runtime operations.
    pub name: String,
    /// What is acted on.
    pub subject: Subject,
    /// Positional arguments (JSON snapshots).
    #[serde(default)]
    pub args: Vec<Value>,
    /// Named arguments.
    #[serde(default)]
    pub named: Map<String, Value>,
    /// Context: `{has_human_approval, principal, trigger, session, …}`.
    #[serde(default)]
    pub context: Map<String, Value>,
    /// The execution this action belongs to, if any.
    #[serde(default)]
    pub execution: Option<ExecutionId>,
}

impl PolicyRequest {
    /// A request with no arguments and an empty context.
    pub fn new(
        principal: Principal,
        category: ActionCategory,
        name: impl Into<String>,
        subject: Subject,
    ) -> Self {
        Self {
            principal,
            category,
            name: name.into(),
            subject,
            args: Vec::new(),
            named: Map::new(),
            context: Map::new(),
            execution: None,
        }
    }
}

//! The OpenAI chat-completions and embeddings wire types (the subset symbi uses), plus
//! the per-call record the runtime's gateway writes to the audit log.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions.
    System,
    /// The user's turn.
    User,
    /// The model's turn.
    Assistant,
    /// The result of a tool call the model asked for.
    Tool,
}

/// One chat message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Author.
    pub role: Role,
    /// Text (null for an assistant turn that only calls tools).
    #[serde(default)]
    pub content: Option<String>,
    /// Tool calls the assistant asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For `Role::Tool`: the call this answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    /// A system message.
    pub fn system(text: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: Some(text.into()),
            tool_calls: vec![],
            tool_call_id: None,
        }
    }
    /// A user message.
    pub fn user(text: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: Some(text.into()),
            tool_calls: vec![],
            tool_call_id: None,
        }
    }
    /// An assistant message.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: Some(text.into()),
            tool_calls: vec![],
            tool_call_id: None,
        }
    }
    /// A tool result answering `call_id`.
    pub fn tool_result(call_id: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            role: Role::Tool,
            content: Some(text.into()),
            tool_calls: vec![],
            tool_call_id: Some(call_id.into()),
        }
    }
}

/// A tool the model may call (`{"type": "function", "function": {...}}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    /// Always `"function"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The function.
    pub function: FunctionDefinition,
}

impl ToolDefinition {
    /// A function tool with a JSON-schema `parameters` object.
    pub fn function(
        name: impl Into<String>,
        description: impl Into<String>,
        parameters: Value,
    ) -> Self {
        Self {
            kind: "function".into(),
            function: FunctionDefinition {
                name: name.into(),
                description: Some(description.into()),
                parameters,
            },
        }
    }
}

/// A callable function's description.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionDefinition {
    /// Name the model uses.
    pub name: String,
    /// What it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON schema of the arguments.
    pub parameters: Value,
}

/// A tool call requested by the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Call id (echoed in the tool result).
    pub id: String,
    /// Always `"function"`.
    #[serde(rename = "type", default = "function_word")]
    pub kind: String,
    /// Function name and JSON-text arguments.
    pub function: FunctionCall,
}

fn function_word() -> String {
    "function".into()
}

/// Function name and arguments of a tool call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// Function name.
    pub name: String,
    /// Arguments as JSON text (as the model wrote them; may be invalid JSON).
    pub arguments: String,
}

/// A chat-completions request.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ChatRequest {
    /// Model; empty means the client's default model.
    pub model: String,
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Sampling temperature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Completion token limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Tools the model may call.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolDefinition>,
}

impl ChatRequest {
    /// A request with one optional system message and one user message.
    pub fn simple(system: Option<&str>, user: &str) -> Self {
        let mut messages = Vec::new();
        if let Some(s) = system {
            messages.push(ChatMessage::system(s));
        }
        messages.push(ChatMessage::user(user));
        Self {
            messages,
            ..Self::default()
        }
    }
}

/// Token counts of one call (`usage` of the response).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Completion tokens.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Sum.
    #[serde(default)]
    pub total_tokens: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, o: Self) {
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
        self.total_tokens += o.total_tokens;
    }
}

/// What one chat call produced.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatOutcome {
    /// The assistant's message (text and/or tool calls).
    pub message: ChatMessage,
    /// `stop`, `length`, `tool_calls`, `content_filter`, …
    pub finish_reason: Option<String>,
    /// Token counts.
    pub usage: Usage,
    /// The audit record of the call.
    pub record: CallRecord,
}

impl ChatOutcome {
    /// The text of the answer (empty when the model only called tools).
    pub fn text(&self) -> &str {
        self.message.content.as_deref().unwrap_or("")
    }
}

/// Everything the gateway needs to audit one model call: which model, how many tokens,
/// how long, and SHA-256 digests of what went in and what came out (never the text
/// itself, which may be private).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// `chat` or `embeddings`.
    pub operation: String,
    /// The model asked for.
    pub model: String,
    /// Token counts reported by the server.
    pub usage: Usage,
    /// Wall time of the whole call including retries, in milliseconds.
    pub latency_ms: u64,
    /// HTTP attempts made (1 = no retry).
    pub attempts: u32,
    /// Lower-case hex SHA-256 of the canonical JSON of the request's messages (or inputs).
    pub prompt_sha256: String,
    /// Lower-case hex SHA-256 of the canonical JSON of the answer message (or vectors).
    pub answer_sha256: String,
    /// Whether the answer was streamed.
    pub streamed: bool,
}

/// One piece of a streamed answer.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamEvent {
    /// More answer text.
    Text(String),
    /// A tool call became complete (arguments fully received) — emitted at the end.
    ToolCall(ToolCall),
    /// The stream finished; the full outcome (text, tool calls, usage, record).
    Done(Box<ChatOutcome>),
}

/// Response body of `/chat/completions` (non-streaming).
#[derive(Debug, Deserialize)]
pub(crate) struct ChatCompletionResponse {
    #[serde(default)]
    pub choices: Vec<Choice>,
    #[serde(default)]
    pub usage: Option<Usage>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Choice {
    pub message: ChatMessage,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// One `data:` chunk of a streamed chat completion.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatChunk {
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    #[serde(default)]
    pub usage: Option<Usage>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChunkChoice {
    #[serde(default)]
    pub delta: Delta,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Delta {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub tool_calls: Vec<ToolCallDelta>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ToolCallDelta {
    #[serde(default)]
    pub index: usize,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub function: Option<FunctionDelta>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct FunctionDelta {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arguments: Option<String>,
}

/// Response body of `/embeddings`.
#[derive(Debug, Deserialize)]
pub(crate) struct EmbeddingResponse {
    pub data: Vec<EmbeddingItem>,
    #[serde(default)]
    pub usage: Option<Usage>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct EmbeddingItem {
    #[serde(default)]
    pub index: usize,
    pub embedding: Vec<f32>,
}

/// An OpenAI error body: `{"error": {"message", "type", "code"}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ErrorDetail {
    #[serde(default)]
    pub message: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub code: Option<Value>,
}

//! The DSL's model builtins (GRAMMAR.md §5.3) as functions over [`LlmClient`]:
//! `llm_call`, `reason`, `chain`, `debate`, `map_reduce` and `director`.
//!
//! Each returns the JSON value the DSL expects plus the [`CallRecord`]s of the model calls
//! it made, so the runtime's gateway can audit every one (the policy decision for the
//! builtin itself is the gateway's, taken before it calls in here). Tool calls the model
//! makes inside `reason` go back out through [`ToolHost`], which the gateway implements so
//! that each is an action of the agent (decided and audited like any other).

use crate::client::LlmClient;
use crate::error::LlmError;
use crate::types::*;
use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{Value, json};

/// Most rounds `debate` accepts (GRAMMAR.md §5.3).
pub const MAX_DEBATE_ROUNDS: u32 = 20;
/// Parallel model calls in `map_reduce` and `director`.
const FANOUT: usize = 4;

/// The value of a builtin and the model calls that produced it.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineOutput {
    /// The DSL result (string for `llm_call`, a map for the others).
    pub value: Value,
    /// One record per model call, in call order.
    pub records: Vec<CallRecord>,
}

impl EngineOutput {
    /// Tokens used by all calls.
    pub fn total_tokens(&self) -> u64 {
        self.records.iter().map(|r| r.usage.total_tokens).sum()
    }
}

/// Executes the tools a model calls during `reason`. The runtime implements it so each call
/// is a policy-checked, audited action of the agent.
#[async_trait]
pub trait ToolHost: Send + Sync {
    /// The tools offered to the model.
    fn tools(&self) -> Vec<ToolDefinition>;
    /// Runs tool `name` with `arguments` (parsed JSON). `Err` carries a message that is
    /// shown to the model as the tool's result (a denial, a failure), so it can adapt;
    /// [`ToolFailure::Fatal`] stops the loop (e.g. a policy violation the agent must see).
    async fn call(&self, name: &str, arguments: Value) -> Result<Value, ToolFailure>;
}

/// Why a tool call in `reason` failed.
#[derive(Clone, Debug, PartialEq)]
pub enum ToolFailure {
    /// Reported to the model as the tool's result; the loop goes on.
    Recoverable(String),
    /// Ends the loop with this error.
    Fatal(String),
}

/// A host that offers no tools.
pub struct NoTools;

#[async_trait]
impl ToolHost for NoTools {
    fn tools(&self) -> Vec<ToolDefinition> {
        Vec::new()
    }
    async fn call(&self, name: &str, _: Value) -> Result<Value, ToolFailure> {
        Err(ToolFailure::Recoverable(format!(
            "no tool named `{name}` is available"
        )))
    }
}

/// Arguments of `llm_call(prompt, system:, model:, temperature:, max_tokens:)`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LlmCallArgs {
    /// The user prompt.
    pub prompt: String,
    /// Optional system message.
    pub system: Option<String>,
    /// Model (default: the client's).
    pub model: Option<String>,
    /// Temperature.
    pub temperature: Option<f64>,
    /// Completion token limit.
    pub max_tokens: Option<u32>,
}

/// The builtins over one client.
#[derive(Clone, Debug)]
pub struct Engines {
    client: LlmClient,
}

impl Engines {
    /// Builtins that call `client`.
    pub fn new(client: LlmClient) -> Self {
        Self { client }
    }

    /// The client.
    pub fn client(&self) -> &LlmClient {
        &self.client
    }

    async fn ask(
        &self,
        system: Option<&str>,
        user: &str,
        records: &mut Vec<CallRecord>,
    ) -> Result<String, LlmError> {
        let out = self.client.chat(ChatRequest::simple(system, user)).await?;
        records.push(out.record.clone());
        Ok(out.text().to_string())
    }

    /// `llm_call`: one completion; the value is the answer text.
    pub async fn llm_call(&self, args: LlmCallArgs) -> Result<EngineOutput, LlmError> {
        let mut req = ChatRequest::simple(args.system.as_deref(), &args.prompt);
        req.model = args.model.unwrap_or_default();
        req.temperature = args.temperature;
        req.max_tokens = args.max_tokens;
        let out = self.client.chat(req).await?;
        Ok(EngineOutput {
            value: Value::String(out.text().to_string()),
            records: vec![out.record],
        })
    }

    /// `llm_call` streamed: `on_text` sees the answer as it arrives (for `symbi run`'s live
    /// output); the result is the same as [`Self::llm_call`].
    pub async fn llm_call_streaming(
        &self,
        args: LlmCallArgs,
        on_text: impl FnMut(&str),
    ) -> Result<EngineOutput, LlmError> {
        let mut req = ChatRequest::simple(args.system.as_deref(), &args.prompt);
        req.model = args.model.unwrap_or_default();
        req.temperature = args.temperature;
        req.max_tokens = args.max_tokens;
        let out = self
            .client
            .chat_stream(req)
            .await?
            .collect_with(on_text)
            .await?;
        Ok(EngineOutput {
            value: Value::String(out.text().to_string()),
            records: vec![out.record],
        })
    }

    /// `reason(system, user, max_iterations, max_tokens)`: a tool-using loop. Each iteration
    /// is one model call; when the model asks for tools, each is run through `host` and its
    /// result fed back. Ends when the model answers without tool calls (`completed`), after
    /// `max_iterations` calls (`max_iterations`), or once the tokens used reach `max_tokens`
    /// (`max_tokens`). Value: `{response, iterations, total_tokens, termination_reason}`.
    pub async fn reason(
        &self,
        system: &str,
        user: &str,
        max_iterations: u32,
        max_tokens: u64,
        host: &dyn ToolHost,
    ) -> Result<EngineOutput, LlmError> {
        if max_iterations == 0 {
            return Err(LlmError::InvalidArgument(
                "reason: max_iterations must be at least 1".into(),
            ));
        }
        let mut messages = vec![ChatMessage::system(system), ChatMessage::user(user)];
        let tools = host.tools();
        let mut records = Vec::new();
        let mut total = 0u64;
        let mut iterations = 0u32;
        let mut response = String::new();
        let reason = loop {
            if iterations >= max_iterations {
                break "max_iterations";
            }
            if total >= max_tokens {
                break "max_tokens";
            }
            iterations += 1;
            let req = ChatRequest {
                messages: messages.clone(),
                tools: tools.clone(),
                ..ChatRequest::default()
            };
            let out = self.client.chat(req).await?;
            total += out.usage.total_tokens;
            records.push(out.record.clone());
            response = out.text().to_string();
            let calls = out.message.tool_calls.clone();
            messages.push(out.message);
            if calls.is_empty() {
                break "completed";
            }
            for call in calls {
                let args: Value = match serde_json::from_str(&call.function.arguments) {
                    Ok(v) => v,
                    Err(e) => {
                        messages.push(ChatMessage::tool_result(
                            &call.id,
                            format!("error: arguments are not valid JSON: {e}"),
                        ));
                        continue;
                    }
                };
                let result = match host.call(&call.function.name, args).await {
                    Ok(v) => v.to_string(),
                    Err(ToolFailure::Recoverable(m)) => format!("error: {m}"),
                    Err(ToolFailure::Fatal(m)) => {
                        return Err(LlmError::Tool {
                            tool: call.function.name.clone(),
                            message: m,
                        });
                    }
                };
                messages.push(ChatMessage::tool_result(&call.id, result));
            }
        };
        Ok(EngineOutput {
            value: json!({
                "response": response,
                "iterations": iterations,
                "total_tokens": total,
                "termination_reason": reason,
            }),
            records,
        })
    }

    /// `chain(steps)`: runs the steps in order; each step's prompt is followed by the
    /// previous step's output. A step is a prompt string or a `{system, prompt}` map.
    /// Value: `{output, steps}` where `steps` lists `{prompt, output}` per step.
    pub async fn chain(&self, steps: &[Value]) -> Result<EngineOutput, LlmError> {
        if steps.is_empty() {
            return Err(LlmError::InvalidArgument(
                "chain: steps must not be empty".into(),
            ));
        }
        let mut records = Vec::new();
        let mut previous: Option<String> = None;
        let mut trace = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            let (system, prompt) = match step {
                Value::String(p) => (None, p.clone()),
                Value::Object(m) => (
                    m.get("system").and_then(Value::as_str).map(str::to_string),
                    m.get("prompt")
                        .and_then(Value::as_str)
                        .ok_or_else(|| {
                            LlmError::InvalidArgument(format!(
                                "chain: step {} has no `prompt` string",
                                i + 1
                            ))
                        })?
                        .to_string(),
                ),
                other => {
                    return Err(LlmError::InvalidArgument(format!(
                        "chain: step {} must be a string or a {{system, prompt}} map, found {other}",
                        i + 1
                    )));
                }
            };
            let user = match &previous {
                Some(p) => format!("{prompt}\n\nPrevious step output:\n{p}"),
                None => prompt.clone(),
            };
            let out = self.ask(system.as_deref(), &user, &mut records).await?;
            trace.push(json!({"prompt": prompt, "output": out}));
            previous = Some(out);
        }
        Ok(EngineOutput {
            value: json!({"output": previous.unwrap_or_default(), "steps": trace}),
            records,
        })
    }

    /// `debate(writer_prompt:, critic_prompt:, topic:, rounds:)`: each round the writer
    /// drafts (seeing the last critique) and the critic critiques the draft. A critique
    /// that starts with `APPROVED` ends the debate early. Value:
    /// `{final_answer, rounds_completed, history}` with `history` a list of
    /// `{round, draft, critique}`.
    pub async fn debate(
        &self,
        writer_prompt: &str,
        critic_prompt: &str,
        topic: &str,
        rounds: u32,
    ) -> Result<EngineOutput, LlmError> {
        if rounds == 0 || rounds > MAX_DEBATE_ROUNDS {
            return Err(LlmError::InvalidArgument(format!(
                "debate: rounds must be between 1 and {MAX_DEBATE_ROUNDS}, found {rounds}"
            )));
        }
        let mut records = Vec::new();
        let mut history = Vec::new();
        let mut draft = String::new();
        let mut critique: Option<String> = None;
        let mut completed = 0;
        for round in 1..=rounds {
            let user = match &critique {
                None => format!("Topic: {topic}"),
                Some(c) => format!(
                    "Topic: {topic}\n\nYour previous draft:\n{draft}\n\nCritique to address:\n{c}"
                ),
            };
            draft = self.ask(Some(writer_prompt), &user, &mut records).await?;
            let c = self
                .ask(
                    Some(critic_prompt),
                    &format!("Topic: {topic}\n\nDraft:\n{draft}"),
                    &mut records,
                )
                .await?;
            completed = round;
            let approved = c.trim_start().to_ascii_uppercase().starts_with("APPROVED");
            history.push(json!({"round": round, "draft": draft, "critique": c}));
            critique = Some(c);
            if approved {
                break;
            }
        }
        Ok(EngineOutput {
            value: json!({"final_answer": draft, "rounds_completed": completed, "history": history}),
            records,
        })
    }

    /// `map_reduce(inputs:, mapper:, reducer:)`: the mapper prompt (as system message) is
    /// applied to each input (up to 4 calls at a time), then the reducer combines the
    /// numbered results. Value: `{result, mapped_results}`.
    pub async fn map_reduce(
        &self,
        inputs: &[Value],
        mapper: &str,
        reducer: &str,
    ) -> Result<EngineOutput, LlmError> {
        if inputs.is_empty() {
            return Err(LlmError::InvalidArgument(
                "map_reduce: inputs must not be empty".into(),
            ));
        }
        // Owned inputs: a stream of futures built by a closure over borrowed items is not
        // `Send` for every lifetime, which the gateway's `Send` executors require.
        let texts: Vec<String> = inputs.iter().map(text_of).collect();
        let calls = futures::stream::iter(texts.into_iter().map(|text| async move {
            self.client
                .chat(ChatRequest::simple(Some(mapper), &text))
                .await
        }))
        .buffered(FANOUT)
        .collect::<Vec<_>>()
        .await;
        let mut records = Vec::new();
        let mut mapped = Vec::new();
        for c in calls {
            let out = c?;
            records.push(out.record.clone());
            mapped.push(out.text().to_string());
        }
        let joined = mapped
            .iter()
            .enumerate()
            .map(|(i, m)| format!("[{}] {m}", i + 1))
            .collect::<Vec<_>>()
            .join("\n");
        let result = self.ask(Some(reducer), &joined, &mut records).await?;
        Ok(EngineOutput {
            value: json!({"result": result, "mapped_results": mapped}),
            records,
        })
    }

    /// `director(orchestrator_prompt:, workers:, task:)`: the orchestrator plans which
    /// worker does what (asked for a JSON list `[{"worker": name, "instruction": text}]`),
    /// the workers run (up to 4 at a time), and the orchestrator writes the result from
    /// their answers. Workers are prompt strings (named `worker1`, …) or `{name, prompt}`
    /// maps. A plan that is not valid JSON naming known workers gives every worker the whole
    /// task (recorded as such in `plan`). Value: `{result, plan, worker_results}`.
    pub async fn director(
        &self,
        orchestrator_prompt: &str,
        workers: &[Value],
        task: &str,
    ) -> Result<EngineOutput, LlmError> {
        if workers.is_empty() {
            return Err(LlmError::InvalidArgument(
                "director: workers must not be empty".into(),
            ));
        }
        let mut named = Vec::new();
        for (i, w) in workers.iter().enumerate() {
            match w {
                Value::String(p) => named.push((format!("worker{}", i + 1), p.clone())),
                Value::Object(m) => {
                    let prompt = m.get("prompt").and_then(Value::as_str).ok_or_else(|| {
                        LlmError::InvalidArgument(format!(
                            "director: worker {} has no `prompt` string",
                            i + 1
                        ))
                    })?;
                    let name = m
                        .get("name")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .unwrap_or(format!("worker{}", i + 1));
                    named.push((name, prompt.to_string()));
                }
                other => {
                    return Err(LlmError::InvalidArgument(format!(
                        "director: worker {} must be a prompt string or a {{name, prompt}} map, found {other}",
                        i + 1
                    )));
                }
            }
        }
        let mut records = Vec::new();
        let roster: String = named.iter().map(|(n, p)| format!("- {n}: {p}\n")).collect();
        let planning = format!(
            "Task: {task}\n\nWorkers:\n{roster}\nReply with only a JSON array of assignments, each \
             {{\"worker\": <worker name>, \"instruction\": <what that worker should do>}}."
        );
        let plan_text = self
            .ask(Some(orchestrator_prompt), &planning, &mut records)
            .await?;
        let plan: Vec<(String, String)> = parse_plan(&plan_text)
            .filter(|p| !p.is_empty() && p.iter().all(|(w, _)| named.iter().any(|(n, _)| n == w)))
            .unwrap_or_else(|| {
                named
                    .iter()
                    .map(|(n, _)| (n.clone(), task.to_string()))
                    .collect()
            });
        let jobs: Vec<(String, String)> = plan
            .iter()
            .map(|(worker, instruction)| {
                let prompt = named
                    .iter()
                    .find(|(n, _)| n == worker)
                    .map(|(_, p)| p.clone())
                    .unwrap_or_default();
                (
                    prompt,
                    format!("Overall task: {task}\n\nYour assignment: {instruction}"),
                )
            })
            .collect();
        let runs = futures::stream::iter(jobs.into_iter().map(|(prompt, user)| async move {
            self.client
                .chat(ChatRequest::simple(Some(&prompt), &user))
                .await
        }))
        .buffered(FANOUT)
        .collect::<Vec<_>>()
        .await;
        let mut worker_results = Vec::new();
        let mut summary = String::new();
        for ((worker, instruction), r) in plan.iter().zip(runs) {
            let out = r?;
            records.push(out.record.clone());
            summary.push_str(&format!("## {worker} ({instruction})\n{}\n\n", out.text()));
            worker_results
                .push(json!({"worker": worker, "instruction": instruction, "output": out.text()}));
        }
        let result = self
            .ask(
                Some(orchestrator_prompt),
                &format!("Task: {task}\n\nWorker results:\n{summary}Write the final result."),
                &mut records,
            )
            .await?;
        let plan_json: Vec<Value> = plan
            .iter()
            .map(|(w, i)| json!({"worker": w, "instruction": i}))
            .collect();
        Ok(EngineOutput {
            value: json!({"result": result, "plan": plan_json, "worker_results": worker_results}),
            records,
        })
    }
}

/// A value as prompt text: strings as they are, anything else as compact JSON.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Extracts `[{"worker", "instruction"}]` from an answer that may wrap it in prose or a
/// code fence.
fn parse_plan(text: &str) -> Option<Vec<(String, String)>> {
    let start = text.find('[')?;
    let end = text.rfind(']')?;
    let arr: Vec<Value> = serde_json::from_str(text.get(start..=end)?).ok()?;
    arr.into_iter()
        .map(|v| {
            Some((
                v.get("worker")?.as_str()?.to_string(),
                v.get("instruction")?.as_str()?.to_string(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_parsing_tolerates_fences() {
        let p = parse_plan("Here:\n```json\n[{\"worker\":\"a\",\"instruction\":\"do x\"}]\n```")
            .unwrap();
        assert_eq!(p, vec![("a".to_string(), "do x".to_string())]);
        assert!(parse_plan("no plan").is_none());
        assert!(parse_plan("[{\"worker\": 1}]").is_none());
    }
}

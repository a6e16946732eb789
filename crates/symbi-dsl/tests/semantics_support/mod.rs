//! A test action host: records every call, decides with the agent's DSL rules (the real
//! `DslRuleSet`, as the runtime's gateway does before consulting Cedar), and answers with
//! canned results for the services the examples use. Delegation runs a second execution
//! of the same program, as the runtime does.
#![allow(dead_code)]

use async_trait::async_trait;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use symbi_dsl::host::{
    ActionError, ActionHost, ActionRequest, ExecutionInfo, LogLevel, SourceLocation,
};
use symbi_dsl::{ExecutionContext, LoadedProgram, Value};
use symbi_types::{
    ActionCategory, AgentRuleSet, Condition, PolicyRequest, Principal, Subject, SubjectKind,
};

#[derive(Default)]
pub struct Recorded {
    pub actions: Vec<(String, Vec<serde_json::Value>)>,
    pub decisions: Vec<(String, String)>,
    pub logs: Vec<(LogLevel, String)>,
    pub audits: Vec<(String, serde_json::Value)>,
}

pub struct TestHost {
    pub program: Arc<LoadedProgram>,
    pub rec: Mutex<Recorded>,
    pub state: Mutex<HashMap<String, serde_json::Value>>,
    /// Answer to human-approval conditions.
    pub approve: bool,
    /// Delay of every action (for timeout tests).
    pub delay: Option<std::time::Duration>,
    /// Skip policy decisions (allow everything) for tests of the interpreter alone.
    pub allow_all: bool,
    /// Canned tool results by name.
    pub tools: HashMap<String, Result<serde_json::Value, ActionError>>,
}

impl TestHost {
    pub fn new(program: Arc<LoadedProgram>) -> TestHost {
        TestHost {
            program,
            rec: Mutex::new(Recorded::default()),
            state: Mutex::new(HashMap::new()),
            approve: true,
            delay: None,
            allow_all: false,
            tools: HashMap::new(),
        }
    }

    pub fn names(&self) -> Vec<String> {
        self.rec
            .lock()
            .unwrap()
            .actions
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    }
}

fn policy_request(req: &ActionRequest) -> PolicyRequest {
    let category = req.category.unwrap_or(ActionCategory::InvokeTool);
    let first = req
        .args
        .first()
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    let subject = match category {
        ActionCategory::NetworkAccess => {
            let url = if req.name == "http.request" {
                req.args
                    .get(1)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string()
            } else {
                first.clone()
            };
            let (scheme, rest) = url.split_once("://").unwrap_or(("", url.as_str()));
            let domain = rest.split(['/', ':', '?']).next().unwrap_or("").to_string();
            let method = match req.name.as_str() {
                "http.post" => "POST".to_string(),
                "http.request" => first.clone(),
                _ => "GET".to_string(),
            };
            Subject::named(SubjectKind::Url, domain.clone())
                .with("url", url.clone())
                .with("domain", domain)
                .with("scheme", scheme.to_string())
                .with("method", method)
        }
        ActionCategory::InvokeAgent => {
            Subject::named(SubjectKind::Agent, first.clone()).with("registered", true)
        }
        ActionCategory::Publish => Subject::named(
            SubjectKind::Topic,
            first.trim_start_matches("topic://").to_string(),
        ),
        ActionCategory::MemoryRead | ActionCategory::MemoryWrite => {
            Subject::named(SubjectKind::MemoryStore, first.clone())
        }
        ActionCategory::UseLlm => {
            Subject::named(SubjectKind::Llm, "test-model").with("provider", "test")
        }
        ActionCategory::SecretRead => {
            Subject::named(SubjectKind::Secret, first.clone()).with("path", first.clone())
        }
        _ => Subject::named(SubjectKind::Tool, req.name.clone()),
    };
    let mut pr = PolicyRequest::new(
        Principal::agent(&*req.agent),
        category,
        req.name.clone(),
        subject,
    );
    pr.args = req.args_json();
    pr.named = req.named_json();
    pr
}

#[async_trait(?Send)]
impl ActionHost for TestHost {
    async fn perform(&self, req: ActionRequest) -> Result<Value, ActionError> {
        self.rec
            .lock()
            .unwrap()
            .actions
            .push((req.name.clone(), req.args_json()));
        if let Some(d) = self.delay {
            tokio::time::sleep(d).await;
        }
        if !self.allow_all {
            let pr = policy_request(&req);
            let out = req
                .rules
                .as_ref()
                .map(|r| r.evaluate(&pr))
                .unwrap_or_default();
            if let Some(reason) = out.denied_by {
                self.rec
                    .lock()
                    .unwrap()
                    .decisions
                    .push((req.name.clone(), "Deny".into()));
                return Err(ActionError::PolicyDenied { reason });
            }
            if out.allowed_by.is_empty() {
                self.rec
                    .lock()
                    .unwrap()
                    .decisions
                    .push((req.name.clone(), "Deny".into()));
                return Err(ActionError::PolicyDenied {
                    reason: format!("no rule allows action {}", req.name),
                });
            }
            let outcome = if out.conditions.is_empty() {
                "Allow"
            } else {
                "AllowWithConditions"
            };
            self.rec
                .lock()
                .unwrap()
                .decisions
                .push((req.name.clone(), outcome.into()));
            if out
                .conditions
                .iter()
                .any(|c| matches!(c, Condition::HumanApproval { .. }))
                && !self.approve
            {
                return Err(ActionError::ApprovalDenied {
                    reason: "the approval was refused".into(),
                });
            }
        }
        let arg = |i: usize| req.args.get(i).cloned().unwrap_or(Value::Null);
        let json = |j: serde_json::Value| Ok(symbi_dsl::value::from_json(&j).unwrap());
        match req.name.as_str() {
            "http.get" | "http.post" | "http.request" => {
                json(serde_json::json!({"status": 200, "headers": {}, "body": "ok", "json": null}))
            }
            "publish" => json(serde_json::json!(format!("msg-{}", self.names().len()))),
            "remember" => {
                let k = arg(0).as_str().unwrap_or("").to_string();
                self.state
                    .lock()
                    .unwrap()
                    .insert(k, symbi_dsl::value::to_json(&arg(1)).unwrap());
                Ok(Value::Null)
            }
            "recall" => {
                let k = arg(0).as_str().unwrap_or("").to_string();
                let v = self
                    .state
                    .lock()
                    .unwrap()
                    .get(&k)
                    .cloned()
                    .unwrap_or(serde_json::Value::Null);
                json(v)
            }
            "forget" => {
                let k = arg(0).as_str().unwrap_or("").to_string();
                Ok(Value::Bool(self.state.lock().unwrap().remove(&k).is_some()))
            }
            "memory_search" => json(serde_json::json!([])),
            "memory_write" => json(serde_json::json!("entry-1")),
            "llm_call" => json(serde_json::json!("- notes")),
            "secret" => Ok(Value::secret(Value::str("s3cr3t"))),
            "delegate" => {
                let agent = arg(0).as_str().unwrap_or("").to_string();
                let input = symbi_dsl::value::to_json(&arg(1)).unwrap_or_default();
                let ctx = ExecutionContext {
                    delegation_depth: req.delegation_depth + 1,
                    ..Default::default()
                };
                let me: Arc<dyn ActionHost> = Arc::new(TestHost {
                    program: self.program.clone(),
                    rec: Mutex::new(Recorded::default()),
                    state: Mutex::new(HashMap::new()),
                    approve: self.approve,
                    delay: self.delay,
                    allow_all: self.allow_all,
                    tools: HashMap::new(),
                });
                match Box::pin(symbi_dsl::execute(
                    self.program.clone(),
                    &agent,
                    input,
                    ctx,
                    me,
                ))
                .await
                {
                    Ok(o) => json(o.result),
                    Err(f) => Err(ActionError::Failed {
                        kind: Some(f.kind.as_str().to_string()),
                        message: f.message,
                        details: None,
                    }),
                }
            }
            other => match self.tools.get(other) {
                Some(Ok(j)) => json(j.clone()),
                Some(Err(e)) => Err(e.clone()),
                None => Err(ActionError::UnknownAction {
                    name: other.to_string(),
                }),
            },
        }
    }

    fn log(&self, _: &ExecutionInfo, level: LogLevel, message: &str, _: &SourceLocation) {
        self.rec
            .lock()
            .unwrap()
            .logs
            .push((level, message.to_string()));
    }

    async fn audit_log(
        &self,
        _: &ExecutionInfo,
        event: &str,
        details: &serde_json::Value,
        _: &SourceLocation,
    ) -> Result<(), String> {
        self.rec
            .lock()
            .unwrap()
            .audits
            .push((event.to_string(), details.clone()));
        Ok(())
    }
}

thread_local! {
    static RT: RefCell<Option<tokio::runtime::Runtime>> = const { RefCell::new(None) };
}

/// Runs a future on a current-thread runtime (executions are not `Send`).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(f)
}

pub fn example(name: &str) -> String {
    let path = format!("{}/tests/data/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn dev_opts() -> symbi_dsl::CheckOptions {
    symbi_dsl::CheckOptions {
        mode: symbi_dsl::Mode::Development,
        ..Default::default()
    }
}

pub fn load(name: &str, src: &str) -> Arc<LoadedProgram> {
    match symbi_dsl::load(name, src, &dev_opts()) {
        Ok(p) => p,
        Err(e) => panic!("load failed:\n{}", e.render_all()),
    }
}

pub fn run_with(
    host: Arc<TestHost>,
    agent: &str,
    input: serde_json::Value,
) -> Result<symbi_dsl::ExecutionOutcome, symbi_dsl::ExecutionFailure> {
    let prog = host.program.clone();
    let h: Arc<dyn ActionHost> = host;
    block_on(symbi_dsl::execute(
        prog,
        agent,
        input,
        ExecutionContext::default(),
        h,
    ))
}

/// Runs an agent of a source text whose actions are all allowed.
pub fn run_src(
    src: &str,
    agent: &str,
    input: serde_json::Value,
) -> Result<symbi_dsl::ExecutionOutcome, symbi_dsl::ExecutionFailure> {
    let prog = load("t.symbi", src);
    let mut host = TestHost::new(prog);
    host.allow_all = true;
    run_with(Arc::new(host), agent, input)
}

/// The result as JSON text with GRAMMAR 4.2 float text.
pub fn text(o: &symbi_dsl::ExecutionOutcome) -> String {
    symbi_dsl::value::json_to_string(&o.result, false)
}

//! The builtin services of GRAMMAR.md §5.3: for each name, its action category, the
//! component that implements it, and how its subject (what the action acts on, §4.10) is
//! derived from the arguments. One table, so policy, audit and execution agree.

use super::request::ActionRequest;
use serde_json::{Value, json};
use symbi_types::{ActionCategory, Subject, SubjectKind};

/// The component that implements a service; named in "component missing" errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Component {
    /// Outbound HTTP from the runtime.
    Network,
    /// Agent workspace files.
    Files,
    /// Secrets (`vault://`).
    Vault,
    /// The model provider.
    Llm,
    /// Other agents of the runtime.
    Agents,
    /// The communication bus.
    Bus,
    /// Human approvals.
    Approvals,
    /// Agent memory and memory stores.
    Memory,
    /// The shared knowledge base / RAG.
    Knowledge,
    /// Tools (command tools, MCP tools).
    Tools,
}

impl Component {
    /// Name used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Network => "network (http)",
            Self::Files => "files",
            Self::Vault => "vault (secrets)",
            Self::Llm => "model provider (llm)",
            Self::Agents => "agents",
            Self::Bus => "communication bus",
            Self::Approvals => "approvals",
            Self::Memory => "memory (context manager)",
            Self::Knowledge => "knowledge base",
            Self::Tools => "tools",
        }
    }
}

/// A builtin service.
#[derive(Clone, Copy, Debug)]
pub struct ServiceSpec {
    /// Name as called.
    pub name: &'static str,
    /// Category.
    pub category: ActionCategory,
    /// Implementing component.
    pub component: Component,
}

use ActionCategory as C;
use Component as K;

/// Every builtin service.
pub const SERVICES: &[ServiceSpec] = &[
    ServiceSpec {
        name: "tool_call",
        category: C::InvokeTool,
        component: K::Tools,
    },
    ServiceSpec {
        name: "llm_call",
        category: C::UseLlm,
        component: K::Llm,
    },
    ServiceSpec {
        name: "reason",
        category: C::UseLlm,
        component: K::Llm,
    },
    ServiceSpec {
        name: "chain",
        category: C::UseLlm,
        component: K::Llm,
    },
    ServiceSpec {
        name: "debate",
        category: C::UseLlm,
        component: K::Llm,
    },
    ServiceSpec {
        name: "map_reduce",
        category: C::UseLlm,
        component: K::Llm,
    },
    ServiceSpec {
        name: "director",
        category: C::UseLlm,
        component: K::Llm,
    },
    ServiceSpec {
        name: "delegate",
        category: C::InvokeAgent,
        component: K::Agents,
    },
    ServiceSpec {
        name: "ask",
        category: C::InvokeAgent,
        component: K::Agents,
    },
    ServiceSpec {
        name: "parallel",
        category: C::InvokeAgent,
        component: K::Agents,
    },
    ServiceSpec {
        name: "race",
        category: C::InvokeAgent,
        component: K::Agents,
    },
    ServiceSpec {
        name: "send_to",
        category: C::MessageSend,
        component: K::Bus,
    },
    ServiceSpec {
        name: "spawn_agent",
        category: C::SpawnAgent,
        component: K::Agents,
    },
    ServiceSpec {
        name: "publish",
        category: C::Publish,
        component: K::Bus,
    },
    ServiceSpec {
        name: "request_approval",
        category: C::Approval,
        component: K::Approvals,
    },
    ServiceSpec {
        name: "memory_write",
        category: C::MemoryWrite,
        component: K::Memory,
    },
    ServiceSpec {
        name: "memory_search",
        category: C::MemoryRead,
        component: K::Memory,
    },
    ServiceSpec {
        name: "memory_delete",
        category: C::MemoryWrite,
        component: K::Memory,
    },
    ServiceSpec {
        name: "remember",
        category: C::MemoryWrite,
        component: K::Memory,
    },
    ServiceSpec {
        name: "forget",
        category: C::MemoryWrite,
        component: K::Memory,
    },
    ServiceSpec {
        name: "recall",
        category: C::MemoryRead,
        component: K::Memory,
    },
    ServiceSpec {
        name: "knowledge_search",
        category: C::KnowledgeRead,
        component: K::Knowledge,
    },
    ServiceSpec {
        name: "knowledge_add",
        category: C::KnowledgeWrite,
        component: K::Knowledge,
    },
    ServiceSpec {
        name: "rag_query",
        category: C::KnowledgeRead,
        component: K::Knowledge,
    },
    ServiceSpec {
        name: "http.get",
        category: C::NetworkAccess,
        component: K::Network,
    },
    ServiceSpec {
        name: "http.post",
        category: C::NetworkAccess,
        component: K::Network,
    },
    ServiceSpec {
        name: "http.request",
        category: C::NetworkAccess,
        component: K::Network,
    },
    ServiceSpec {
        name: "read_file",
        category: C::FileRead,
        component: K::Files,
    },
    ServiceSpec {
        name: "list_dir",
        category: C::FileRead,
        component: K::Files,
    },
    ServiceSpec {
        name: "write_file",
        category: C::FileWrite,
        component: K::Files,
    },
    ServiceSpec {
        name: "secret",
        category: C::SecretRead,
        component: K::Vault,
    },
];

/// The service called `name`, if it is one.
pub fn service(name: &str) -> Option<&'static ServiceSpec> {
    // `vault://path` references arrive under their scheme name.
    let name = if name.starts_with("vault://") {
        "secret"
    } else {
        name
    };
    SERVICES.iter().find(|s| s.name == name)
}

/// URL subject `{url, domain, scheme, method}`; `domain` is the host without port.
pub fn url_subject(url: &str, method: &str) -> Subject {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let domain = if let Some(stripped) = host_port.strip_prefix('[') {
        stripped.split(']').next().unwrap_or("").to_string()
    } else {
        host_port
            .split(':')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    Subject::named(SubjectKind::Url, domain.clone())
        .with("url", url)
        .with("domain", domain)
        .with("scheme", scheme.to_ascii_lowercase())
        .with("method", method.to_ascii_uppercase())
}

fn first_str(req: &ActionRequest, name: &str) -> String {
    req.arg(0, name)
        .map(|a| match &a.value {
            Value::String(s) => s.clone(),
            Value::Object(m) => m
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            other => other.to_string(),
        })
        .unwrap_or_default()
}

/// The subject of a builtin service call. Agent subjects are completed by the gateway
/// (registration, id, suspension) since only the runtime knows them.
pub fn subject_for(spec: &ServiceSpec, req: &ActionRequest) -> Subject {
    match spec.name {
        "http.get" => url_subject(&first_str(req, "url"), "GET"),
        "http.post" => url_subject(&first_str(req, "url"), "POST"),
        "http.request" => {
            let method = req.arg_str(0, "method").unwrap_or("GET").to_string();
            let url = req.arg_str(1, "url").unwrap_or("").to_string();
            url_subject(&url, &method)
        }
        "read_file" | "list_dir" | "write_file" => {
            let path = first_str(req, "path");
            let local = !path.contains("://");
            let in_project = local && !path.starts_with('/') && !path.split('/').any(|c| c == "..");
            Subject::named(SubjectKind::File, path.clone())
                .with("path", path)
                .with("local", local)
                .with("in_project", in_project)
        }
        "secret" => {
            let path = req
                .arg_str(0, "path")
                .map(str::to_string)
                .unwrap_or_else(|| req.name.trim_start_matches("vault://").to_string());
            Subject::named(SubjectKind::Secret, path.clone()).with("path", path)
        }
        "delegate" | "ask" | "send_to" => {
            Subject::named(SubjectKind::Agent, first_str(req, "agent"))
        }
        "spawn_agent" => Subject::named(SubjectKind::Agent, first_str(req, "name")),
        "publish" => {
            let t = first_str(req, "topic");
            Subject::named(SubjectKind::Topic, t.strip_prefix("topic://").unwrap_or(&t))
        }
        "memory_write" | "memory_search" | "memory_delete" => {
            Subject::named(SubjectKind::MemoryStore, first_str(req, "store"))
        }
        "knowledge_search" | "knowledge_add" | "rag_query" => {
            Subject::named(SubjectKind::DataSet, "shared")
        }
        "llm_call" | "reason" | "chain" | "debate" | "map_reduce" | "director" => {
            // Completed with the model that will actually answer by the LLM component.
            let model = req
                .named
                .iter()
                .find(|(n, _)| n == "model")
                .and_then(|(_, a)| a.value.as_str());
            Subject::named(SubjectKind::Llm, model.unwrap_or(""))
                .with("model", json!(model))
                .with("provider", Value::Null)
        }
        other => Subject::named(SubjectKind::Other, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_subjects() {
        let s = url_subject("https://User@Example.org:8443/a?b#c", "get");
        assert_eq!(s.attrs["domain"], "example.org");
        assert_eq!(s.attrs["scheme"], "https");
        assert_eq!(s.attrs["method"], "GET");
        assert_eq!(
            url_subject("http://[::1]:80/", "GET").attrs["domain"],
            "::1"
        );
        assert_eq!(url_subject("not a url", "GET").attrs["domain"], "not a url");
    }

    #[test]
    fn every_service_has_a_category_word() {
        for s in SERVICES {
            assert!(!s.category.is_runtime_operation(), "{}", s.name);
        }
        assert_eq!(
            service("vault://api/keys").unwrap().category,
            ActionCategory::SecretRead
        );
        assert!(service("no_such_thing").is_none());
    }
}

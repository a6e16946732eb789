//! Built-in functions (GRAMMAR 5): the pure functions of 5.1, the runtime intrinsics of
//! 5.2, the mutating methods, and the table of builtin services (actions) of 5.3.
//!
//! Each entry has a signature: positional parameters (required or optional, `?` in the
//! grammar) and named-only parameters (`name:`). The checker uses the signatures for
//! E110/E111 and the compiler binds arguments to parameter positions once, at load time.

mod pure;

use crate::interp::{Flow, Interp};
use crate::value::Value;
use symbi_types::ActionCategory;

/// How a parameter may be given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// Positional (or by name), required.
    Required,
    /// Positional (or by name), optional.
    Optional,
    /// Only by name, optional.
    Named,
}

/// One parameter of a builtin.
#[derive(Clone, Copy, Debug)]
pub struct ParamSig {
    /// Its name (usable as a named argument).
    pub name: &'static str,
    /// How it may be given.
    pub kind: ParamKind,
}

const fn req(name: &'static str) -> ParamSig {
    ParamSig {
        name,
        kind: ParamKind::Required,
    }
}
const fn opt(name: &'static str) -> ParamSig {
    ParamSig {
        name,
        kind: ParamKind::Optional,
    }
}
const fn named(name: &'static str) -> ParamSig {
    ParamSig {
        name,
        kind: ParamKind::Named,
    }
}

/// Arguments of a builtin call, in parameter order (`None` = not given). Variadic
/// builtins receive every positional argument in `rest`.
#[derive(Default)]
pub struct Args {
    /// Parameters in declared order.
    pub fixed: smallvec::SmallVec<[Option<Value>; 4]>,
    /// Positional arguments of variadic builtins.
    pub rest: Vec<Value>,
}

impl Args {
    /// Takes parameter `i`.
    #[inline]
    pub fn take(&mut self, i: usize) -> Option<Value> {
        self.fixed.get_mut(i).and_then(Option::take)
    }
    /// Takes parameter `i`, null if absent.
    #[inline]
    pub fn take_or_null(&mut self, i: usize) -> Value {
        self.take(i).unwrap_or(Value::Null)
    }
}

/// Implementation of a builtin.
pub(crate) type BuiltinFn = fn(&mut Interp<'_>, &mut Args) -> Result<Value, Flow>;

/// What a builtin is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuiltinClass {
    /// Pure: allowed in guards, no effect outside the execution.
    Pure,
    /// Pure but non-deterministic: its results are recorded in the execution log
    /// (`now`, `time_since`, `generate_id`).
    Recorded,
    /// A runtime intrinsic (`log`, `print`, `audit_log`, `trigger`): not an action, not pure
    /// (E118 in guards).
    Intrinsic,
    /// A method that modifies its receiver (`push`, `pop`, …): needs a place (E108).
    Mutating,
}

/// A builtin function.
pub struct Builtin {
    /// Its name.
    pub name: &'static str,
    /// Parameters.
    pub params: &'static [ParamSig],
    /// Takes any number of positional arguments (`format`, `min`, `max`, `print`).
    pub variadic: bool,
    /// What it is.
    pub class: BuiltinClass,
    /// Whether it can be called as a method on its first argument (`s.trim()`).
    pub method: bool,
    pub(crate) f: BuiltinFn,
}

impl std::fmt::Debug for Builtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "builtin {}", self.name)
    }
}

/// A builtin service: an action with a known category (GRAMMAR 5.3).
#[derive(Debug)]
pub struct Service {
    /// Name as called (`http.get`, `publish`).
    pub name: &'static str,
    /// The action category.
    pub category: ActionCategory,
    /// Parameters.
    pub params: &'static [ParamSig],
}

/// Looks up a pure builtin or intrinsic by name.
pub fn builtin(name: &str) -> Option<&'static Builtin> {
    pure::BUILTINS.iter().find(|b| b.name == name)
}

/// Looks up a builtin usable as a method named `name`.
pub fn method(name: &str) -> Option<&'static Builtin> {
    pure::BUILTINS
        .iter()
        .find(|b| b.name == name && (b.method || b.class == BuiltinClass::Mutating))
}

/// Whether `name` is a mutating method (`push`, `append`, `pop`, `insert`, `remove`,
/// `extend`, `clear`, `set`).
pub fn is_mutating(name: &str) -> bool {
    matches!(
        name,
        "push" | "append" | "pop" | "insert" | "remove" | "extend" | "clear" | "set"
    )
}

/// Every pure builtin and intrinsic.
pub fn all() -> &'static [Builtin] {
    pure::BUILTINS
}

/// Looks up a builtin service by the name as called (`http.get`).
pub fn service(name: &str) -> Option<&'static Service> {
    SERVICES.iter().find(|s| s.name == name)
}

/// Every builtin service.
pub fn services() -> &'static [Service] {
    SERVICES
}

const HTTP_OPTS: [ParamSig; 4] = [
    named("headers"),
    named("query"),
    named("timeout"),
    named("verify_tls"),
];

macro_rules! svc {
    ($name:expr, $cat:ident, [$($p:expr),* $(,)?]) => {
        Service { name: $name, category: ActionCategory::$cat, params: &[$($p),*] }
    };
}

static SERVICES: &[Service] = &[
    svc!("tool_call", InvokeTool, [req("name"), opt("args")]),
    svc!(
        "llm_call",
        UseLlm,
        [
            req("prompt"),
            named("system"),
            named("model"),
            named("temperature"),
            named("max_tokens")
        ]
    ),
    svc!(
        "reason",
        UseLlm,
        [
            req("system"),
            req("user"),
            named("max_iterations"),
            named("max_tokens")
        ]
    ),
    svc!("chain", UseLlm, [req("steps")]),
    svc!(
        "debate",
        UseLlm,
        [
            named("writer_prompt"),
            named("critic_prompt"),
            named("topic"),
            named("rounds")
        ]
    ),
    svc!(
        "map_reduce",
        UseLlm,
        [named("inputs"), named("mapper"), named("reducer")]
    ),
    svc!(
        "director",
        UseLlm,
        [
            named("orchestrator_prompt"),
            named("workers"),
            named("task")
        ]
    ),
    svc!(
        "delegate",
        InvokeAgent,
        [req("agent"), opt("input"), named("timeout")]
    ),
    svc!("ask", InvokeAgent, [req("agent"), req("message")]),
    svc!("send_to", MessageSend, [req("agent"), req("message")]),
    svc!("parallel", InvokeAgent, [req("tasks")]),
    svc!("race", InvokeAgent, [req("tasks")]),
    svc!(
        "spawn_agent",
        SpawnAgent,
        [req("name"), named("system"), named("tools")]
    ),
    svc!("publish", Publish, [req("topic"), opt("payload")]),
    svc!(
        "request_approval",
        Approval,
        [req("details"), named("expiry")]
    ),
    svc!("memory_write", MemoryWrite, [req("store"), req("record")]),
    svc!(
        "memory_search",
        MemoryRead,
        [req("store"), req("query"), named("limit")]
    ),
    svc!("memory_delete", MemoryWrite, [req("store"), req("id")]),
    svc!("remember", MemoryWrite, [req("key"), req("value")]),
    svc!("forget", MemoryWrite, [req("key")]),
    svc!("recall", MemoryRead, [req("key")]),
    svc!(
        "knowledge_search",
        KnowledgeRead,
        [req("query"), named("limit")]
    ),
    svc!("knowledge_add", KnowledgeWrite, [req("document")]),
    svc!(
        "rag_query",
        KnowledgeRead,
        [req("question"), named("limit")]
    ),
    Service {
        name: "http.get",
        category: ActionCategory::NetworkAccess,
        params: &[
            req("url"),
            opt("options"),
            HTTP_OPTS[0],
            HTTP_OPTS[1],
            HTTP_OPTS[2],
            HTTP_OPTS[3],
        ],
    },
    Service {
        name: "http.post",
        category: ActionCategory::NetworkAccess,
        params: &[
            req("url"),
            opt("body"),
            opt("options"),
            HTTP_OPTS[0],
            HTTP_OPTS[1],
            HTTP_OPTS[2],
            HTTP_OPTS[3],
        ],
    },
    Service {
        name: "http.request",
        category: ActionCategory::NetworkAccess,
        params: &[
            req("method"),
            req("url"),
            opt("options"),
            HTTP_OPTS[0],
            HTTP_OPTS[1],
            HTTP_OPTS[2],
            HTTP_OPTS[3],
        ],
    },
    svc!("read_file", FileRead, [req("path")]),
    svc!("list_dir", FileRead, [req("path")]),
    svc!("write_file", FileWrite, [req("path"), req("content")]),
    svc!("secret", SecretRead, [req("path")]),
];

/// Binds written arguments to parameters of a signature: for each written argument the
/// parameter index, or the E110/E111 message. `variadic` signatures put positional
/// arguments past the fixed ones into the rest (index 255).
pub fn bind_signature(
    callee: &str,
    params: &[ParamSig],
    variadic: bool,
    names: &[Option<&str>],
) -> Result<Vec<u8>, (&'static str, String)> {
    let ps: Vec<(&str, ParamKind)> = params.iter().map(|p| (p.name, p.kind)).collect();
    bind_generic(callee, &ps, variadic, names)
}

/// [`bind_signature`] over `(name, kind)` pairs (user functions).
pub fn bind_generic(
    callee: &str,
    params: &[(&str, ParamKind)],
    variadic: bool,
    names: &[Option<&str>],
) -> Result<Vec<u8>, (&'static str, String)> {
    let mut perm = Vec::with_capacity(names.len());
    let mut given = vec![false; params.len()];
    let positional: Vec<usize> = params
        .iter()
        .enumerate()
        .filter(|(_, p)| p.1 != ParamKind::Named)
        .map(|(i, _)| i)
        .collect();
    let mut next_pos = 0;
    let mut n_pos = 0;
    for name in names {
        match name {
            None => {
                n_pos += 1;
                if next_pos < positional.len() {
                    let i = positional[next_pos];
                    next_pos += 1;
                    given[i] = true;
                    perm.push(i as u8);
                } else if variadic {
                    perm.push(255);
                } else {
                    let max = positional.len();
                    return Err((
                        "E110",
                        format!(
                            "`{callee}` takes {} but {n_pos} were given",
                            plural(max, "positional argument")
                        ),
                    ));
                }
            }
            Some(n) => match params.iter().position(|p| p.0 == *n) {
                Some(i) if given[i] => {
                    return Err((
                        "E111",
                        format!("argument `{n}` of `{callee}` is given twice"),
                    ));
                }
                Some(i) => {
                    given[i] = true;
                    perm.push(i as u8);
                }
                None => {
                    return Err(("E111", format!("`{callee}` has no parameter named `{n}`")));
                }
            },
        }
    }
    for (i, p) in params.iter().enumerate() {
        if p.1 == ParamKind::Required && !given[i] {
            let required = params.iter().filter(|p| p.1 == ParamKind::Required).count();
            return Err((
                "E110",
                format!(
                    "`{callee}` takes {} but {} were given (missing `{}`)",
                    plural(required, "argument"),
                    names.len(),
                    p.0
                ),
            ));
        }
    }
    Ok(perm)
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding() {
        let b = builtin("substring").unwrap();
        assert_eq!(
            bind_signature("substring", b.params, false, &[None, Some("start")]).unwrap(),
            vec![0, 1]
        );
        assert_eq!(
            bind_signature("substring", b.params, false, &[None, None, None, None])
                .unwrap_err()
                .0,
            "E110"
        );
        assert_eq!(
            bind_signature("substring", b.params, false, &[None, Some("x")])
                .unwrap_err()
                .0,
            "E111"
        );
        let e = builtin("error").unwrap();
        assert_eq!(
            bind_signature("error", e.params, false, &[None, Some("kind")]).unwrap(),
            vec![0, 1]
        );
        assert_eq!(
            bind_signature("error", e.params, false, &[None, None])
                .unwrap_err()
                .0,
            "E110"
        );
        let f = builtin("format").unwrap();
        assert_eq!(
            bind_signature("format", f.params, true, &[None, None, None]).unwrap(),
            vec![0, 255, 255]
        );
    }

    #[test]
    fn services_have_categories() {
        assert_eq!(
            service("http.get").unwrap().category,
            ActionCategory::NetworkAccess
        );
        assert_eq!(
            service("delegate").unwrap().category,
            ActionCategory::InvokeAgent
        );
        assert!(service("nope").is_none());
    }
}

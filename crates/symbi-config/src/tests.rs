use super::*;
use std::io::Write;

fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("symbi.toml");
    std::fs::File::create(&p)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    (dir, p)
}

fn load_file(
    text: &str,
    env: &[(&str, &str)],
) -> (
    Result<LoadedConfig, ConfigError>,
    PathBuf,
    tempfile::TempDir,
) {
    let (dir, p) = write(text);
    let opts = LoadOptions {
        config_path: Some(p.clone()),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..LoadOptions::default()
    };
    (load(&opts), p, dir)
}

fn file_error(text: &str) -> (usize, usize, String) {
    match load_file(text, &[]).0 {
        Err(ConfigError::File {
            line,
            column,
            message,
            ..
        }) => (line, column, message),
        other => panic!("expected a file error, got {other:?}"),
    }
}

#[test]
fn defaults_match_the_spec() {
    let c = load(&LoadOptions::default()).unwrap().config;
    assert_eq!(c.runtime.max_concurrent_agents, 10_000);
    assert_eq!(c.runtime.scheduler_threads, 8);
    assert_eq!(c.runtime.message_buffer_size, 1_048_576);
    assert_eq!(c.runtime.gc_interval_ms, 100);
    assert_eq!(c.runtime.default_execution_timeout.0.as_secs(), 300);
    assert_eq!(
        c.security.default_sandbox_tier,
        symbi_types::SandboxTier::Tier2
    );
    assert!(c.security.enforce_policies && c.security.audit_enabled);
    assert_eq!(c.context.embedding_dimension, 1536);
    assert_eq!(c.context.context_cache_size.0, 1 << 30);
    assert_eq!(c.context.knowledge_retention_days, 365);
    assert!(c.mcp.discovery_enabled);
    assert_eq!(c.mcp.connection_timeout_s, 30);
    assert_eq!(c.mcp.max_concurrent_connections, 100);
    assert_eq!(c.api.listen, "127.0.0.1:8080");
    assert!(
        c.runtime.data_dir.is_some(),
        "the default data dir is resolved"
    );
}

#[test]
fn the_spec_example_file_loads() {
    let text = r#"
[runtime]
max_concurrent_agents = 10000
scheduler_threads = 8
message_buffer_size = 1048576
gc_interval_ms = 100
default_execution_timeout = "300s"
[security]
default_sandbox_tier = "gvisor"
enforce_policies = true
audit_enabled = true
crypto_provider = "ring"
[context]
vector_db_url = "http://localhost:6333"
embedding_dimension = 1536
context_cache_size = "1GB"
knowledge_retention_days = 365
[mcp]
discovery_enabled = true
tool_verification = "strict"
connection_timeout_s = 30
max_concurrent_connections = 100
"#;
    let (r, p, _d) = load_file(text, &[]);
    let l = r.unwrap();
    assert_eq!(
        l.config.context.vector_db_url.as_deref(),
        Some("http://localhost:6333")
    );
    assert_eq!(
        l.source_of("runtime.scheduler_threads"),
        Source::File {
            path: p,
            line: 4,
            column: 1
        }
    );
    assert_eq!(l.source_of("api.listen"), Source::Default);
}

#[test]
fn unknown_key_names_file_line_and_column() {
    let (line, col, msg) =
        file_error("[runtime]\nscheduler_threads = 4\n  shceduler_threads = 4\n");
    assert_eq!((line, col), (3, 3), "{msg}");
    assert!(msg.contains("shceduler_threads"), "{msg}");
}

#[test]
fn unknown_section_is_an_error() {
    let (line, col, msg) = file_error("[runtime]\n\n[sekurity]\nx = 1\n");
    assert_eq!((line, col), (3, 2), "{msg}");
    assert!(msg.contains("sekurity"), "{msg}");
}

#[test]
fn out_of_range_value_points_at_the_value() {
    let (line, col, msg) = file_error("[runtime]\nscheduler_threads = 0\n");
    assert_eq!((line, col), (2, 21));
    assert!(msg.contains("between 1 and 1024"), "{msg}");
}

#[test]
fn bad_size_and_duration_and_enum() {
    let (line, col, msg) = file_error("[context]\ncontext_cache_size = \"1 parsec\"\n");
    assert_eq!((line, col), (2, 22));
    assert!(msg.contains("invalid size"), "{msg}");
    let (line, _, msg) = file_error("[runtime]\n\ndefault_execution_timeout = \"soon\"\n");
    assert_eq!(line, 3);
    assert!(msg.contains("invalid duration"), "{msg}");
    let (line, col, msg) = file_error("[mcp]\ntool_verification = \"lenient\"\n");
    assert_eq!((line, col), (2, 21));
    assert!(msg.contains("strict"), "{msg}");
    let (_, _, msg) = file_error("[security]\ndefault_sandbox_tier = \"none\"\n");
    assert!(msg.contains("never runs on the host"), "{msg}");
}

#[test]
fn wrong_type_and_syntax_error() {
    let (line, col, _) = file_error("[runtime]\ngc_interval_ms = \"fast\"\n");
    assert_eq!((line, col), (2, 18));
    let (line, _, _) = file_error("[runtime\n");
    assert_eq!(line, 1);
}

#[test]
fn columns_count_characters_not_bytes() {
    let (line, col, _) = file_error("[api]\nlisten = \"127.0.0.1:8080\" # é\nflisten = 1\n");
    assert_eq!((line, col), (3, 1));
    assert_eq!(line_col("é x", 3), (1, 3));
}

#[test]
fn cross_field_errors_use_the_key_position() {
    let (line, col, msg) = file_error("[api]\n\nlisten = \"localhost\"\n");
    assert_eq!((line, col), (3, 1));
    assert!(msg.contains("IP:PORT"), "{msg}");
    let (_, _, msg) = file_error("[[mcp.servers]]\nname = \"fs\"\n");
    assert!(msg.contains("no `command`"), "{msg}");
}

#[test]
fn env_overrides_file_and_records_source() {
    let (r, _, _d) = load_file(
        "[runtime]\nscheduler_threads = 4\nmode = \"production\"\n",
        &[
            ("SYMBI_RUNTIME__SCHEDULER_THREADS", "6"),
            ("SYMBI_RUNTIME_MODE", "development"),
            ("QDRANT_URL", "http://127.0.0.1:6333"),
        ],
    );
    let l = r.unwrap();
    assert_eq!(l.config.runtime.scheduler_threads, 6);
    assert_eq!(l.config.runtime.mode, RuntimeMode::Development);
    assert_eq!(
        l.config.context.vector_db_url.as_deref(),
        Some("http://127.0.0.1:6333")
    );
    assert_eq!(
        l.source_of("runtime.scheduler_threads"),
        Source::Env {
            var: "SYMBI_RUNTIME__SCHEDULER_THREADS".into()
        }
    );
}

#[test]
fn bad_env_value_names_the_variable() {
    let (r, _, _d) = load_file("", &[("SYMBI_RUNTIME__SCHEDULER_THREADS", "0")]);
    match r {
        Err(ConfigError::Env { var, message }) => {
            assert_eq!(var, "SYMBI_RUNTIME__SCHEDULER_THREADS");
            assert!(message.contains("between 1 and 1024"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let (r, _, _d) = load_file("", &[("SYMBI_RUNTIME__NO_SUCH_KEY", "1")]);
    assert!(matches!(r, Err(ConfigError::Env { .. })), "{r:?}");
    let (r, _, _d) = load_file("", &[("SYMBI_CRYPTO_PROVIDER", "openssl")]);
    assert!(matches!(r, Err(ConfigError::Env { .. })), "{r:?}");
}

#[test]
fn string_keys_accept_numeric_looking_env_values() {
    let (r, _, _d) = load_file("", &[("SYMBI_LOG_LEVEL", "1")]);
    assert_eq!(r.unwrap().config.log.level, "1");
}

#[test]
fn conflicting_token_aliases_are_refused() {
    let (r, _, _d) = load_file("", &[("SYMBI_API_TOKEN", "a"), ("SYMBIONT_API_TOKEN", "b")]);
    assert!(matches!(r, Err(ConfigError::Env { .. })));
    let (r, _, _d) = load_file("", &[("SYMBI_API_TOKEN", "a"), ("SYMBIONT_API_TOKEN", "a")]);
    assert_eq!(r.unwrap().config.api.token.as_deref(), Some("a"));
}

#[test]
fn cli_wins_over_env() {
    let opts = LoadOptions {
        listen: Some("127.0.0.1:9999".into()),
        data_dir: Some("/tmp/x".into()),
        env: [("SYMBI_API__LISTEN".to_string(), "127.0.0.1:1".to_string())].into(),
        ..LoadOptions::default()
    };
    let l = load(&opts).unwrap();
    assert_eq!(l.config.api.listen, "127.0.0.1:9999");
    assert_eq!(l.data_dir(), PathBuf::from("/tmp/x"));
    assert_eq!(
        l.source_of("api.listen"),
        Source::Cli {
            option: "--listen".into()
        }
    );
}

#[test]
fn secrets_are_redacted_in_entries() {
    let opts = LoadOptions {
        env: [("OPENAI_API_KEY".to_string(), "sk-secret".to_string())].into(),
        ..LoadOptions::default()
    };
    let l = load(&opts).unwrap();
    let e = l.entries();
    let (_, v, s) = e.iter().find(|(k, _, _)| k == "llm.api_key").unwrap();
    assert_eq!(v, "[REDACTED]");
    assert_eq!(
        s,
        &Source::Env {
            var: "OPENAI_API_KEY".into()
        }
    );
    assert!(!format!("{e:?}").contains("sk-secret"));
}

#[test]
fn missing_file_is_an_io_error() {
    let opts = LoadOptions {
        config_path: Some("/nonexistent/symbi.toml".into()),
        ..LoadOptions::default()
    };
    assert!(matches!(load(&opts), Err(ConfigError::Io { .. })));
}

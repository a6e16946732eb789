//! The official Python client `symbiont-sdk` (installed unmodified by
//! scripts/setup-test-deps.sh into the API virtualenv) drives a live server: health,
//! agents, status, metrics, execute with Idempotency-Key, the schedule client, and a 401.

mod common;

use common::{ECHO, Options, start, venv_tool};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_client_works_unmodified() {
    let python = venv_tool("python");
    let mut s = start(Options::default()).await;
    let id = s.create_agent("echo", ECHO).await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/sdk_client.py");
    let (base, token) = (s.base.clone(), s.token.clone());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .env("SYMBI_BASE", base)
            .env("SYMBI_TOKEN", token)
            .env("AGENT_ID", id)
            .env_remove("SYMBIONT_API_KEY")
            .env_remove("SYMBIONT_BASE_URL")
            // The SDK's own client-side setting, required by every user of this SDK: it
            // refuses to construct a Client without a local JWT secret. The server sees only
            // the bearer token.
            .env(
                "SYMBIONT_AUTH_JWT_SECRET_KEY",
                "sdk-local-secret-not-used-by-symbi",
            )
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "the Python client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("sdk ok"), "{stdout}");
    s.stop().await;
}

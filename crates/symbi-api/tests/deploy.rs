//! The deployment files: the Kubernetes manifests validate against the Kubernetes 1.37
//! schemas (`kubernetes-validate --strict`, installed by scripts/setup-test-deps.sh), the
//! ConfigMap's config.toml is a valid symbi configuration, and the Dockerfile has the
//! stages, user, port and default command the issue asks for. (Images cannot be built
//! here: base images cannot be pulled.)

mod common;

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn kubernetes_manifests_validate_strictly() {
    let tool = common::venv_tool("kubernetes-validate");
    let k8s = repo().join("deploy/k8s");
    let files: Vec<PathBuf> = [
        "configmap.yaml",
        "deployment.yaml",
        "secret.yaml",
        "service.yaml",
    ]
    .iter()
    .map(|f| k8s.join(f))
    .collect();
    let out = std::process::Command::new(tool)
        .arg("--strict")
        .args(&files)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches("passed").count(), 4, "{text}");

    let dep = std::fs::read_to_string(k8s.join("deployment.yaml")).unwrap();
    for want in [
        "replicas: 3",
        "memory: 1Gi",
        "cpu: 500m",
        "memory: 4Gi",
        "cpu: \"2\"",
        "runAsNonRoot: true",
        "readOnlyRootFilesystem: true",
        "path: /api/v1/health/live",
        "path: /api/v1/health/ready",
    ] {
        assert!(dep.contains(want), "deployment.yaml lacks `{want}`");
    }
}

#[test]
fn configmap_holds_a_valid_symbi_configuration() {
    let cm = std::fs::read_to_string(repo().join("deploy/k8s/configmap.yaml")).unwrap();
    let start = cm.find("config.toml: |").expect("config.toml key") + "config.toml: |".len();
    let toml: String = cm[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, toml).unwrap();
    let opts = symbi_config::LoadOptions {
        config_path: Some(file),
        data_dir: Some(dir.path().into()),
        ..Default::default()
    };
    let loaded = symbi_config::load(&opts)
        .unwrap_or_else(|e| panic!("the ConfigMap's config.toml is invalid: {e}"));
    assert_eq!(loaded.config.api.listen, "0.0.0.0:8080");
    assert!(
        loaded.config.api.token_file.is_some(),
        "a public listener needs the token file"
    );
}

#[test]
fn dockerfile_is_multi_stage_non_root_on_8080_with_the_mcp_default_command() {
    let d = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(
        d.contains("AS build") && d.contains("AS runtime"),
        "two stages"
    );
    assert!(d.contains("cargo build --release --locked -p symbi"));
    assert!(d.contains("USER 10001"));
    assert!(d.contains("EXPOSE 8080"));
    assert!(d.contains(r#"CMD ["symbi", "mcp", "--config", "/etc/symbi/config.toml"]"#));
}

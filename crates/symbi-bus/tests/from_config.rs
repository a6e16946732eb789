//! Construction from the configuration file's values.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use symbi_bus::{Bus, BusError, SendOptions};
use symbi_config::Config;
use symbi_config::sections::bus::{BusBackend, BusSecurityMode};
use symbi_types::policy::DenyAll;
use symbi_types::{AgentId, MemoryEventLog, Principal};

#[tokio::test]
async fn memory_bus_from_config_creates_a_private_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.bus.security = BusSecurityMode::Session;
    let audit = MemoryEventLog::default();
    let bus = Bus::from_config(&cfg, dir.path(), Arc::new(DenyAll), Arc::new(audit.clone()))
        .await
        .unwrap();
    assert_eq!(bus.backend(), "memory");
    assert_eq!(bus.settings().security, BusSecurityMode::Session);
    assert_eq!(
        bus.settings().queue_capacity,
        cfg.runtime.message_buffer_size
    );
    let key = dir.path().join("keys/bus-master.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the master secret is private");
    // The fail-closed default decision point denies, with its reason, and the denial is audited.
    let a = AgentId::new();
    bus.register_agent(a, "a").await.unwrap();
    let p = Principal {
        agent_id: Some(a),
        ..Principal::agent("a")
    };
    let err = bus
        .send(&p, a, "x", SendOptions::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("no policy engine is loaded"),
        "{err}"
    );
    assert_eq!(audit.of_type("policy_decision").len(), 1);
}

#[tokio::test]
async fn unreachable_nats_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = Config::default();
    cfg.bus.backend = BusBackend::Nats;
    cfg.bus.nats_url = format!("nats://127.0.0.1:{port}");
    let err = Bus::from_config(
        &cfg,
        dir.path(),
        Arc::new(DenyAll),
        Arc::new(MemoryEventLog::default()),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, BusError::Backend(_)));
    assert!(err.to_string().contains("cannot connect to NATS"), "{err}");
}

#[tokio::test]
async fn inconsistent_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.bus.retry_backoff_initial = symbi_types::HumanDuration(std::time::Duration::from_secs(60));
    cfg.bus.retry_backoff_max = symbi_types::HumanDuration(std::time::Duration::from_secs(1));
    let err = Bus::from_config(
        &cfg,
        dir.path(),
        Arc::new(DenyAll),
        Arc::new(MemoryEventLog::default()),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("retry_backoff_initial"), "{err}");
}

//! Test support: a real nats-server per test, a tiny rule-table policy decision point (the
//! `PolicyDecisionPoint` trait is the contract; the Cedar engine lives in another crate),
//! and bus construction for either backend.

#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use symbi_bus::{Bus, BusSecurityMode, BusSettings, KeyRing};
use symbi_types::{
    ActionCategory, AgentId, AgentRuleSet, Decision, MemoryEventLog, PolicyDecisionPoint,
    PolicyRequest, Principal,
};

/// A nats-server with JetStream on a free loopback port and a temporary store; killed on drop.
pub struct NatsServer {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    pub fn start() -> Self {
        let bin = std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(&bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start `{bin}` ({e}): the NATS backend tests need nats-server \
                     (Debian package `nats-server`; scripts/setup-host.sh installs it)"
                )
            });
        let url = format!("nats://127.0.0.1:{port}");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Self {
                    child,
                    url,
                    _dir: dir,
                };
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("nats-server did not listen on port {port} within 5 s");
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Policy rules for tests: allow by default, deny the listed (sender, recipient) pairs,
/// topics with the listed prefixes, and subscriptions of the listed agents.
#[derive(Default)]
pub struct RulePdp {
    pub deny_send: Vec<(String, String)>,
    pub deny_topic_prefix: Vec<String>,
    pub deny_subscribe: Vec<String>,
}

impl PolicyDecisionPoint for RulePdp {
    fn decide(&self, r: &PolicyRequest, _: Option<&dyn AgentRuleSet>) -> Decision {
        let who = &r.principal.name;
        let what = &r.subject.name;
        let denied = match r.category {
            ActionCategory::MessageSend => {
                self.deny_send.iter().any(|(a, b)| a == who && b == what)
            }
            ActionCategory::Publish => self
                .deny_topic_prefix
                .iter()
                .any(|p| what.starts_with(p.as_str())),
            ActionCategory::Subscribe => self.deny_subscribe.iter().any(|a| a == who),
            _ => false,
        };
        if denied {
            Decision::deny(format!(
                "test rule forbids {} by {who} on {what}",
                r.category
            ))
        } else {
            Decision::Allow {
                reasons: vec!["test rule".into()],
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Nats,
}

pub struct Env {
    pub bus: Bus,
    pub audit: MemoryEventLog,
    pub keys: Arc<KeyRing>,
    pub server: Option<NatsServer>,
}

pub fn test_settings(mode: BusSecurityMode) -> BusSettings {
    BusSettings {
        security: mode,
        queue_capacity: 1024,
        ack_wait: Duration::from_millis(500),
        retry_backoff_initial: Duration::from_millis(20),
        retry_backoff_max: Duration::from_millis(100),
        send_timeout: Duration::from_millis(300),
        rate_limit_per_agent: 0,
        max_delivery_attempts: 3,
        nats_prefix: format!("t{}", &AgentId::new().to_string()[..8]),
        ..BusSettings::default()
    }
}

pub async fn env_with(backend: Backend, mut settings: BusSettings, pdp: RulePdp) -> Env {
    let keys = Arc::new(KeyRing::new(
        symbi_crypto::provider("ring").unwrap(),
        [42; 32],
    ));
    let audit = MemoryEventLog::default();
    let (bus, server) = match backend {
        Backend::Memory => (
            Bus::memory(
                settings,
                keys.clone(),
                Arc::new(pdp),
                Arc::new(audit.clone()),
            )
            .unwrap(),
            None,
        ),
        Backend::Nats => {
            let server = NatsServer::start();
            settings.nats_url = server.url.clone();
            let bus = Bus::nats(
                settings,
                keys.clone(),
                Arc::new(pdp),
                Arc::new(audit.clone()),
            )
            .await
            .unwrap();
            (bus, Some(server))
        }
    };
    Env {
        bus,
        audit,
        keys,
        server,
    }
}

pub async fn env(backend: Backend) -> Env {
    env_with(
        backend,
        test_settings(BusSecurityMode::SignedEveryMessage),
        RulePdp::default(),
    )
    .await
}

/// Registers an agent and returns its principal.
pub async fn agent(bus: &Bus, name: &str) -> Principal {
    let id = AgentId::new();
    bus.register_agent(id, name).await.unwrap();
    Principal {
        agent_id: Some(id),
        ..Principal::agent(name)
    }
}

pub fn id(p: &Principal) -> AgentId {
    p.agent_id.unwrap()
}

/// Waits (bounded) until the audit log has a `security_violation` with `check`.
pub async fn violation(audit: &MemoryEventLog, check: &str) -> serde_json::Value {
    for _ in 0..100 {
        if let Some(e) = audit
            .of_type("security_violation")
            .into_iter()
            .find(|e| e.event.details["check"] == check)
        {
            return e.event.details;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "no security_violation with check `{check}` was audited; events: {:?}",
        audit.events()
    );
}

//! Host diagnostics: does each tier actually work here?

use crate::limits;
use crate::manifest::ToolLimits;
use crate::sandbox::{ContainerSpec, ExitStatus, Sandbox};
use serde::Serialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use symbi_types::{ResourceBudget, SandboxTier};

/// The result of probing one tier.
#[derive(Clone, Debug, Serialize)]
pub struct TierCheck {
    /// The tier.
    pub tier: SandboxTier,
    /// Whether a trivial container ran and exited 0.
    pub ok: bool,
    /// What was found (the probe's time on success, the reason otherwise).
    pub detail: String,
    /// What to run or install when it does not work.
    pub fix: Option<String>,
}

/// Probes Tier1, Tier2 and Tier3 by running `/bin/true` in the busybox image with every
/// hardening measure (Tier3 is reported as not built).
pub async fn tier_checks(sandbox: &Sandbox) -> Vec<TierCheck> {
    let mut out = Vec::new();
    for tier in [SandboxTier::Tier1, SandboxTier::Tier2] {
        out.push(probe(sandbox, tier).await);
    }
    out.push(TierCheck {
        tier: SandboxTier::Tier3,
        ok: false,
        detail: "Firecracker micro-VMs are not built into this symbi; Tier3 demands fail closed"
            .into(),
        fix: Some("demand Tier2 (gVisor) instead".into()),
    });
    out
}

async fn probe(sandbox: &Sandbox, tier: SandboxTier) -> TierCheck {
    let fail = |e: crate::SandboxError| {
        let (detail, fix) = match e {
            crate::SandboxError::Unavailable { reason, fix, .. } => (reason, Some(fix)),
            other => (other.to_string(), None),
        };
        TierCheck {
            tier,
            ok: false,
            detail,
            fix,
        }
    };
    if let Err(e) = sandbox.ensure_tier(tier).await {
        return fail(e);
    }
    let image = match sandbox.image("busybox", tier).await {
        Ok(i) => i,
        Err(e) => return fail(e),
    };
    let limits = limits::effective(
        &ToolLimits {
            timeout: Some(Duration::from_secs(30)),
            ..Default::default()
        },
        &ResourceBudget::ZERO,
        4096,
        None,
        false,
    );
    let spec = ContainerSpec {
        tier,
        image_id: image.image_id.clone(),
        argv: vec!["/bin/true".into()],
        stdin: None,
        limits,
        labels: HashMap::from([("org.symbi.doctor".to_string(), "1".to_string())]),
    };
    let t = Instant::now();
    match sandbox.run_container(&spec).await {
        Ok(r) if r.exit == Some(ExitStatus::Exited { code: 0 }) => TierCheck {
            tier,
            ok: true,
            detail: format!(
                "ran a hardened container (runtime {}, image {}) in {:.0} ms",
                if tier == SandboxTier::Tier1 {
                    &sandbox.config().tier1_runtime
                } else {
                    &sandbox.config().tier2_runtime
                },
                &image.reference,
                t.elapsed().as_secs_f64() * 1000.0
            ),
            fix: None,
        },
        Ok(r) => TierCheck {
            tier,
            ok: false,
            detail: format!(
                "the probe container did not succeed: {:?}, stderr: {}",
                r.exit,
                String::from_utf8_lossy(&r.stderr).trim()
            ),
            fix: Some("sudo ./scripts/setup-host.sh".into()),
        },
        Err(e) => fail(e),
    }
}

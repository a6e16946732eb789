//! Policy decisions and the conditions an allowing decision can carry.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The outcome of a policy evaluation (SPEC §8).
///
/// The JSON form is the one `symbi policy eval --format json` prints:
/// `{"decision": "Allow" | "Deny" | "AllowWithConditions", "reasons": [...], "conditions": [...]}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision")]
pub enum Decision {
    /// The action may proceed. `reasons` names the deciding policies.
    Allow {
        /// Ids / positions of the policies that allowed it.
        #[serde(default)]
        reasons: Vec<String>,
    },
    /// The action must not proceed.
    Deny {
        /// Why: the deciding policies (ids, annotations, DSL rule positions), or the default
        /// ("no rule allows action X").
        #[serde(default)]
        reasons: Vec<String>,
    },
    /// The action may proceed once the caller has satisfied every condition.
    AllowWithConditions {
        /// Conditions the caller must honour.
        conditions: Vec<Condition>,
        /// Ids / positions of the policies that allowed it and attached conditions.
        #[serde(default)]
        reasons: Vec<String>,
    },
}

impl Decision {
    /// A denial with one reason.
    pub fn deny(reason: impl Into<String>) -> Self {
        Decision::Deny {
            reasons: vec![reason.into()],
        }
    }

    /// Whether the action may proceed (possibly under conditions).
    pub fn is_allowed(&self) -> bool {
        !matches!(self, Decision::Deny { .. })
    }

    /// The outcome word: `Allow`, `Deny` or `AllowWithConditions`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Decision::Allow { .. } => "Allow",
            Decision::Deny { .. } => "Deny",
            Decision::AllowWithConditions { .. } => "AllowWithConditions",
        }
    }

    /// The reasons, joined for messages (`PolicyDenied` errors print this).
    pub fn reason(&self) -> String {
        let reasons = match self {
            Decision::Allow { reasons }
            | Decision::Deny { reasons }
            | Decision::AllowWithConditions { reasons, .. } => reasons,
        };
        reasons.join("; ")
    }

    /// Conditions to honour (empty unless `AllowWithConditions`).
    pub fn conditions(&self) -> &[Condition] {
        match self {
            Decision::AllowWithConditions { conditions, .. } => conditions,
            _ => &[],
        }
    }
}

/// Isolation tiers, ordered from weakest to strongest. A demand can only raise the tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SandboxTier {
    /// No isolation: in process / on the host. Refused in production mode.
    None,
    /// Container (Docker, runtime runc).
    Tier1,
    /// gVisor user-space kernel (Docker with runtime runsc, or runsc directly).
    Tier2,
    /// Micro-VM (Firecracker). Not provided by this build.
    Tier3,
}

impl SandboxTier {
    /// Canonical spelling (`Tier1`, …; `none` for no isolation).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Tier1 => "Tier1",
            Self::Tier2 => "Tier2",
            Self::Tier3 => "Tier3",
        }
    }
}

impl fmt::Display for SandboxTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SandboxTier {
    type Err = String;
    /// Accepts the spellings of GRAMMAR.md §4.8 (any case): `Tier1`/`docker`/`runc`,
    /// `Tier2`/`gvisor`/`runsc`, `Tier3`/`firecracker`, `none`/`native`.
    ///
    /// ```
    /// use symbi_types::SandboxTier;
    /// assert_eq!("gvisor".parse::<SandboxTier>().unwrap(), SandboxTier::Tier2);
    /// assert!(SandboxTier::Tier2 > SandboxTier::Tier1);
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "native" => Ok(Self::None),
            "tier1" | "docker" | "runc" => Ok(Self::Tier1),
            "tier2" | "gvisor" | "runsc" => Ok(Self::Tier2),
            "tier3" | "firecracker" => Ok(Self::Tier3),
            _ => Err(format!(
                "unknown sandbox tier `{s}` (expected Tier1/docker, Tier2/gvisor, Tier3/firecracker or none)"
            )),
        }
    }
}

/// Scope of a human approval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalScope {
    /// One approval per action (default).
    #[default]
    SingleAction,
    /// One approval covers the rest of the session.
    Session,
}

/// Tool-schema verification mode (SchemaPin).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum VerificationMode {
    /// Unsigned or invalid tools are refused.
    #[default]
    Strict,
    /// Unsigned or invalid tools are allowed with a warning event.
    Warn,
    /// No verification.
    Disabled,
}

impl FromStr for VerificationMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "strict" => Ok(Self::Strict),
            "warn" => Ok(Self::Warn),
            "disabled" => Ok(Self::Disabled),
            _ => Err(format!(
                "unknown verification mode `{s}` (expected strict, warn or disabled)"
            )),
        }
    }
}

/// Time unit of a rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RatePeriod {
    /// Per second.
    Second,
    /// Per minute.
    Minute,
    /// Per hour.
    Hour,
    /// Per day.
    Day,
}

impl RatePeriod {
    /// Length of the period.
    pub fn duration(self) -> Duration {
        Duration::from_secs(match self {
            Self::Second => 1,
            Self::Minute => 60,
            Self::Hour => 3600,
            Self::Day => 86_400,
        })
    }
}

/// A condition attached to an allowing decision. The vocabulary is the understood
/// `require` keys of GRAMMAR.md §4.10; Cedar `permit` policies express the same conditions
/// with annotations (docs/policies.md). The caller must honour every condition or not act.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Condition {
    /// Wait for a human approval before acting.
    HumanApproval {
        /// How long the hold lasts before it resolves as deny.
        #[serde(default, with = "opt_duration_ms")]
        expiry: Option<Duration>,
        /// Single action or session.
        #[serde(default)]
        scope: ApprovalScope,
        /// The approver must give a reason.
        #[serde(default)]
        require_reason: bool,
        /// Role the approver must hold (`approval("role")`).
        #[serde(default)]
        role: Option<String>,
    },
    /// At most `max` actions per `period` (per subject when `per` is set).
    RateLimit {
        /// Allowed count per period.
        max: u32,
        /// Period.
        period: RatePeriod,
        /// Optional key the limit is per (`recipient`, `subject`, …).
        #[serde(default)]
        per: Option<String>,
    },
    /// Run at least in this sandbox tier.
    MinSandboxTier {
        /// Minimum tier.
        tier: SandboxTier,
    },
    /// Scrub control characters and invisible Unicode from string arguments.
    InputSanitization,
    /// Validate arguments against the tool's schema before the call.
    InputValidation,
    /// Scrub control characters and invisible Unicode from string results.
    OutputSanitization,
    /// TLS certificate verification on (true) or explicitly off (false).
    TlsVerification {
        /// Whether to verify.
        verify: bool,
    },
    /// Arguments larger than this are denied.
    MaxDataSize {
        /// Maximum serialized argument size in bytes.
        bytes: u64,
    },
    /// Per-request timeout.
    TimeoutPerRequest {
        /// The timeout in milliseconds.
        #[serde(with = "duration_ms")]
        timeout: Duration,
    },
    /// Tool-schema verification requirements.
    SchemaVerification {
        /// Required SchemaPin mode.
        #[serde(default)]
        mode: Option<VerificationMode>,
        /// Pin keys on first use.
        #[serde(default)]
        pin_on_first_use: Option<bool>,
    },
    /// A condition the runtime does not understand. Never enforceable: in production mode
    /// it makes the agent fail to load; in development mode it is recorded only.
    Opaque {
        /// Name or key.
        name: String,
        /// Value as written.
        #[serde(default)]
        value: serde_json::Value,
    },
}

mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

mod opt_duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_json_shape() {
        let d = Decision::AllowWithConditions {
            conditions: vec![Condition::MinSandboxTier {
                tier: SandboxTier::Tier2,
            }],
            reasons: vec!["policy0".into()],
        };
        let j = serde_json::to_value(&d).unwrap();
        assert_eq!(j["decision"], "AllowWithConditions");
        assert_eq!(j["conditions"][0]["type"], "min_sandbox_tier");
        let back: Decision = serde_json::from_value(j).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn tiers_only_rise() {
        assert!(SandboxTier::None < SandboxTier::Tier1);
        assert!(SandboxTier::Tier1 < SandboxTier::Tier2);
        assert_eq!(
            SandboxTier::Tier1.max(SandboxTier::Tier2),
            SandboxTier::Tier2
        );
    }
}

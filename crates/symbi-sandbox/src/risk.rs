//! Risk assessment and tier selection (SPEC §5).
//!
//! A score in `[0, 1]` is the weighted sum of five factors, each in `[0, 1]`:
//!
//! | factor | weight | values |
//! |---|---|---|
//! | code trust | 0.50 | trusted 0, reviewed 0.5, untrusted 1 |
//! | data sensitivity | 0.20 | public 0, internal 1/3, confidential 2/3, restricted 1 |
//! | network access | 0.15 | none 0, loopback 0.5, egress 1 |
//! | file-system access | 0.10 | none 0, read 0.5, write 1 |
//! | external integrations | 0.05 | 0 → 0, 1 → 1/3, 2 → 2/3, ≥ 3 → 1 |
//!
//! A score below 0.5 gives Tier1, otherwise Tier2: untrusted code alone reaches Tier2,
//! trusted tools reach it only when every other factor is at its worst. The weights are
//! documented in `docs/sandbox.md`.
//!
//! The chosen tier is then only ever raised: [`select_tier`] takes the maximum of the
//! risk tier, the configured floor (`[security] default_sandbox_tier`), the manifest's
//! minimum, the agent's `with sandbox = …` and every `MinSandboxTier` condition of the
//! policy decision.

use serde::{Deserialize, Serialize};
use symbi_types::{Condition, SandboxTier};

/// How sensitive the data a call handles is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DataSensitivity {
    /// Public data.
    Public,
    /// Internal data (the default when nothing says otherwise).
    #[default]
    Internal,
    /// Confidential data.
    Confidential,
    /// Restricted data (PII, health, secrets).
    Restricted,
}

impl DataSensitivity {
    /// Maps the agent's `with privacy = …` (GRAMMAR.md §4.8) onto a sensitivity:
    /// strict → restricted, high/differential → confidential, medium → internal,
    /// low → public. Unknown values are treated as restricted (fail safe).
    pub fn from_privacy(privacy: &str) -> Self {
        match privacy.to_ascii_lowercase().as_str() {
            "low" => Self::Public,
            "medium" => Self::Internal,
            "high" | "differential" => Self::Confidential,
            _ => Self::Restricted,
        }
    }

    fn factor(self) -> f64 {
        match self {
            Self::Public => 0.0,
            Self::Internal => 1.0 / 3.0,
            Self::Confidential => 2.0 / 3.0,
            Self::Restricted => 1.0,
        }
    }
}

/// How far the code that runs is trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CodeTrust {
    /// A fixed, operator-installed program; only its arguments vary.
    Trusted,
    /// Reviewed third-party code.
    #[default]
    Reviewed,
    /// Code supplied at run time (by an agent, a model, a user): always the case for
    /// tools of category `execute_code`.
    Untrusted,
}

impl CodeTrust {
    fn factor(self) -> f64 {
        match self {
            Self::Trusted => 0.0,
            Self::Reviewed => 0.5,
            Self::Untrusted => 1.0,
        }
    }
}

/// What network the call gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NetworkAccess {
    /// No network (a private loopback only).
    #[default]
    None,
    /// Loopback services reached on purpose.
    Loopback,
    /// Egress beyond the host.
    Egress,
}

impl NetworkAccess {
    fn factor(self) -> f64 {
        match self {
            Self::None => 0.0,
            Self::Loopback => 0.5,
            Self::Egress => 1.0,
        }
    }
}

/// What file-system access the call needs beyond its private `/tmp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FileSystemAccess {
    /// None.
    #[default]
    None,
    /// Reads host data.
    Read,
    /// Writes host data.
    Write,
}

impl FileSystemAccess {
    fn factor(self) -> f64 {
        match self {
            Self::None => 0.0,
            Self::Read => 0.5,
            Self::Write => 1.0,
        }
    }
}

/// The five inputs of the assessment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RiskInputs {
    /// Data sensitivity (from the agent's `privacy`, or the manifest).
    pub data_sensitivity: DataSensitivity,
    /// Code trust (from the manifest; `execute_code` tools are untrusted).
    pub code_trust: CodeTrust,
    /// Network access (from the manifest's need and the policy's grant).
    pub network: NetworkAccess,
    /// File-system access (from the manifest).
    pub filesystem: FileSystemAccess,
    /// Number of external services the call talks to (from the manifest).
    pub external_integrations: u32,
}

/// Weights of the factors, in the order of the table in the module docs.
pub const WEIGHTS: Weights = Weights {
    code_trust: 0.50,
    data_sensitivity: 0.20,
    network: 0.15,
    filesystem: 0.10,
    external_integrations: 0.05,
};

/// Factor weights (they sum to 1).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Weights {
    /// Code trust.
    pub code_trust: f64,
    /// Data sensitivity.
    pub data_sensitivity: f64,
    /// Network access.
    pub network: f64,
    /// File-system access.
    pub filesystem: f64,
    /// External integrations.
    pub external_integrations: f64,
}

/// The threshold: a score below it gives Tier1, at or above it Tier2.
pub const TIER2_THRESHOLD: f64 = 0.5;

/// The result of an assessment.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RiskAssessment {
    /// The inputs assessed.
    pub inputs: RiskInputs,
    /// The score in `[0, 1]`.
    pub score: f64,
    /// Tier1 when `score < 0.5`, otherwise Tier2.
    pub tier: SandboxTier,
}

impl RiskInputs {
    /// Scores these inputs.
    ///
    /// ```
    /// use symbi_sandbox::risk::{CodeTrust, RiskInputs};
    /// use symbi_types::SandboxTier;
    /// let trusted = RiskInputs { code_trust: CodeTrust::Trusted, ..Default::default() };
    /// assert_eq!(trusted.assess().tier, SandboxTier::Tier1);
    /// let untrusted = RiskInputs { code_trust: CodeTrust::Untrusted, ..Default::default() };
    /// assert_eq!(untrusted.assess().tier, SandboxTier::Tier2);
    /// ```
    pub fn assess(&self) -> RiskAssessment {
        let w = WEIGHTS;
        let integrations = (self.external_integrations.min(3) as f64) / 3.0;
        let raw = w.code_trust * self.code_trust.factor()
            + w.data_sensitivity * self.data_sensitivity.factor()
            + w.network * self.network.factor()
            + w.filesystem * self.filesystem.factor()
            + w.external_integrations * integrations;
        // Round to 1e-9 so that sums of thirds that are 0.5 on paper compare as 0.5.
        let score = ((raw * 1e9).round() / 1e9).clamp(0.0, 1.0);
        let tier = if score < TIER2_THRESHOLD {
            SandboxTier::Tier1
        } else {
            SandboxTier::Tier2
        };
        RiskAssessment {
            inputs: *self,
            score,
            tier,
        }
    }
}

/// Everything that may raise the tier of one call.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TierDemands {
    /// `[security] default_sandbox_tier`: a floor for every sandboxed call.
    pub default_floor: Option<SandboxTier>,
    /// The tool manifest's `tier` (its minimum).
    pub manifest_min: Option<SandboxTier>,
    /// The agent's `with sandbox = …` for the running block.
    pub agent_min: Option<SandboxTier>,
    /// Minimum tiers from the policy decision (`Condition::MinSandboxTier`).
    pub policy_min: Vec<SandboxTier>,
}

impl TierDemands {
    /// Adds every `MinSandboxTier` among a decision's conditions.
    pub fn with_conditions(mut self, conditions: &[Condition]) -> Self {
        for c in conditions {
            if let Condition::MinSandboxTier { tier } = c {
                self.policy_min.push(*tier);
            }
        }
        self
    }
}

/// Why a tier was chosen: the winning demand (for the audit record).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TierSource {
    /// The risk assessment.
    Risk,
    /// The configured floor.
    DefaultFloor,
    /// The manifest's minimum.
    Manifest,
    /// The agent's `with sandbox`.
    Agent,
    /// A policy condition.
    Policy,
}

/// The selected tier and why.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct TierSelection {
    /// The tier the call must run in.
    pub tier: SandboxTier,
    /// The demand that decided it (the first of the strongest demands, in the order
    /// risk, floor, manifest, agent, policy).
    pub source: TierSource,
    /// The underlying assessment.
    pub risk: RiskAssessment,
}

/// Picks the tier: the maximum of the risk tier and every demand. Demands only raise it;
/// `SandboxTier::None` as a demand is ignored (it can never lower a tier).
///
/// ```
/// use symbi_sandbox::risk::{select_tier, CodeTrust, RiskInputs, TierDemands};
/// use symbi_types::SandboxTier;
/// let low = RiskInputs { code_trust: CodeTrust::Trusted, ..Default::default() }.assess();
/// let d = TierDemands { agent_min: Some(SandboxTier::Tier2), ..Default::default() };
/// assert_eq!(select_tier(&low, &d).tier, SandboxTier::Tier2);
/// ```
pub fn select_tier(risk: &RiskAssessment, demands: &TierDemands) -> TierSelection {
    let mut tier = risk.tier;
    let mut source = TierSource::Risk;
    let mut raise = |t: Option<SandboxTier>, s: TierSource| {
        if let Some(t) = t
            && t > tier
        {
            tier = t;
            source = s;
        }
    };
    raise(demands.default_floor, TierSource::DefaultFloor);
    raise(demands.manifest_min, TierSource::Manifest);
    raise(demands.agent_min, TierSource::Agent);
    for t in &demands.policy_min {
        raise(Some(*t), TierSource::Policy);
    }
    TierSelection {
        tier,
        source,
        risk: *risk,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const TIER1: SandboxTier = SandboxTier::Tier1;
    const TIER2: SandboxTier = SandboxTier::Tier2;
    const TIER3: SandboxTier = SandboxTier::Tier3;
    const NONE: SandboxTier = SandboxTier::None;

    fn inputs(
        ct: CodeTrust,
        ds: DataSensitivity,
        n: NetworkAccess,
        fs: FileSystemAccess,
        ext: u32,
    ) -> RiskInputs {
        RiskInputs {
            code_trust: ct,
            data_sensitivity: ds,
            network: n,
            filesystem: fs,
            external_integrations: ext,
        }
    }

    /// The tier-selection table of docs/sandbox.md.
    #[test]
    fn risk_table() {
        use CodeTrust as C;
        use DataSensitivity as D;
        use FileSystemAccess as F;
        use NetworkAccess as N;
        let rows: &[(RiskInputs, f64, SandboxTier)] = &[
            (
                inputs(C::Trusted, D::Public, N::None, F::None, 0),
                0.0,
                TIER1,
            ),
            (
                inputs(C::Trusted, D::Internal, N::None, F::None, 0),
                0.2 / 3.0,
                TIER1,
            ),
            (
                inputs(C::Reviewed, D::Internal, N::None, F::None, 0),
                0.25 + 0.2 / 3.0,
                TIER1,
            ),
            (
                inputs(C::Reviewed, D::Confidential, N::Loopback, F::Read, 1),
                0.25 + 0.4 / 3.0 + 0.075 + 0.05 + 0.05 / 3.0,
                TIER2,
            ),
            (
                inputs(C::Reviewed, D::Restricted, N::None, F::None, 0),
                0.45,
                TIER1,
            ),
            (
                inputs(C::Reviewed, D::Restricted, N::None, F::Read, 0),
                0.5,
                TIER2,
            ),
            (
                inputs(C::Trusted, D::Restricted, N::Egress, F::Write, 3),
                0.5,
                TIER2,
            ),
            (
                inputs(C::Trusted, D::Restricted, N::Egress, F::Write, 2),
                0.5 - 0.05 / 3.0,
                TIER1,
            ),
            (
                inputs(C::Untrusted, D::Public, N::None, F::None, 0),
                0.5,
                TIER2,
            ),
            (
                inputs(C::Untrusted, D::Restricted, N::Egress, F::Write, 9),
                1.0,
                TIER2,
            ),
        ];
        for (i, (inp, score, tier)) in rows.iter().enumerate() {
            let a = inp.assess();
            assert!(
                (a.score - score).abs() < 1e-6,
                "row {i}: score {} != {score}",
                a.score
            );
            assert_eq!(a.tier, *tier, "row {i}: {inp:?} scored {}", a.score);
        }
    }

    #[test]
    fn weights_sum_to_one() {
        let w = WEIGHTS;
        let s =
            w.code_trust + w.data_sensitivity + w.network + w.filesystem + w.external_integrations;
        assert!((s - 1.0).abs() < 1e-12);
    }

    #[test]
    fn demands_only_raise() {
        let low = RiskInputs {
            code_trust: CodeTrust::Trusted,
            ..Default::default()
        }
        .assess();
        let high = RiskInputs {
            code_trust: CodeTrust::Untrusted,
            ..Default::default()
        }
        .assess();
        // (risk, floor, manifest, agent, policy) → (tier, source)
        type Row<'a> = (
            &'a RiskAssessment,
            Option<SandboxTier>,
            Option<SandboxTier>,
            Option<SandboxTier>,
            Vec<SandboxTier>,
            SandboxTier,
            TierSource,
        );
        let table: &[Row] = &[
            (&low, None, None, None, vec![], TIER1, TierSource::Risk),
            (&high, None, None, None, vec![], TIER2, TierSource::Risk),
            (
                &low,
                Some(TIER2),
                None,
                None,
                vec![],
                TIER2,
                TierSource::DefaultFloor,
            ),
            (
                &low,
                Some(TIER1),
                None,
                None,
                vec![],
                TIER1,
                TierSource::Risk,
            ),
            (
                &low,
                Some(TIER1),
                Some(TIER2),
                None,
                vec![],
                TIER2,
                TierSource::Manifest,
            ),
            (
                &low,
                Some(TIER1),
                None,
                Some(TIER2),
                vec![],
                TIER2,
                TierSource::Agent,
            ),
            (
                &low,
                Some(TIER1),
                None,
                None,
                vec![TIER2],
                TIER2,
                TierSource::Policy,
            ),
            // Lower demands never lower the tier.
            (
                &high,
                Some(TIER1),
                Some(TIER1),
                Some(TIER1),
                vec![TIER1],
                TIER2,
                TierSource::Risk,
            ),
            (
                &high,
                None,
                None,
                Some(NONE),
                vec![NONE],
                TIER2,
                TierSource::Risk,
            ),
            (
                &low,
                Some(TIER2),
                None,
                Some(TIER1),
                vec![TIER1, NONE],
                TIER2,
                TierSource::DefaultFloor,
            ),
            // TIER3 demands are kept (and then fail closed when the sandbox runs).
            (
                &low,
                None,
                None,
                None,
                vec![TIER2, TIER3],
                TIER3,
                TierSource::Policy,
            ),
            (
                &high,
                None,
                None,
                Some(TIER3),
                vec![],
                TIER3,
                TierSource::Agent,
            ),
        ];
        for (i, (risk, floor, man, agent, pol, want, src)) in table.iter().enumerate() {
            let d = TierDemands {
                default_floor: *floor,
                manifest_min: *man,
                agent_min: *agent,
                policy_min: pol.clone(),
            };
            let s = select_tier(risk, &d);
            assert_eq!((s.tier, s.source), (*want, *src), "row {i}");
        }
    }

    #[test]
    fn policy_conditions_feed_demands() {
        let low = RiskInputs {
            code_trust: CodeTrust::Trusted,
            ..Default::default()
        }
        .assess();
        let d = TierDemands::default().with_conditions(&[
            Condition::InputSanitization,
            Condition::MinSandboxTier { tier: TIER2 },
        ]);
        assert_eq!(select_tier(&low, &d).tier, TIER2);
    }

    #[test]
    fn privacy_mapping() {
        assert_eq!(
            DataSensitivity::from_privacy("strict"),
            DataSensitivity::Restricted
        );
        assert_eq!(
            DataSensitivity::from_privacy("HIGH"),
            DataSensitivity::Confidential
        );
        assert_eq!(
            DataSensitivity::from_privacy("medium"),
            DataSensitivity::Internal
        );
        assert_eq!(
            DataSensitivity::from_privacy("low"),
            DataSensitivity::Public
        );
        assert_eq!(
            DataSensitivity::from_privacy("bogus"),
            DataSensitivity::Restricted
        );
    }
}

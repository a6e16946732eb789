//! `[security]`: sandbox default, policy enforcement, audit, crypto provider.

use serde::{Deserialize, Deserializer, Serialize};
use symbi_types::SandboxTier;

/// `[security]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecuritySection {
    /// Tier for sandboxed work when nothing demands more: `"docker"`/`"Tier1"`,
    /// `"gvisor"`/`"Tier2"` (default).
    #[serde(deserialize_with = "tier", serialize_with = "ser_tier")]
    pub default_sandbox_tier: SandboxTier,
    /// When true (default), anything no policy allows is denied.
    pub enforce_policies: bool,
    /// When true (default), every event goes to the signed audit log.
    pub audit_enabled: bool,
    /// `"ring"` (default) or `"rustcrypto"`.
    pub crypto_provider: CryptoProviderName,
}

/// Crypto provider names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CryptoProviderName {
    /// `ring`.
    #[default]
    Ring,
    /// ed25519-dalek, aes-gcm, sha2.
    Rustcrypto,
}

impl CryptoProviderName {
    /// The name `symbi_crypto::provider` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ring => "ring",
            Self::Rustcrypto => "rustcrypto",
        }
    }
}

fn tier<'de, D: Deserializer<'de>>(d: D) -> Result<SandboxTier, D::Error> {
    let s = String::deserialize(d)?;
    let t: SandboxTier = s.parse().map_err(serde::de::Error::custom)?;
    if t == SandboxTier::None {
        return Err(serde::de::Error::custom(
            "the default sandbox tier cannot be `none`: untrusted work never runs on the host",
        ));
    }
    Ok(t)
}

fn ser_tier<S: serde::Serializer>(t: &SandboxTier, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match t {
        SandboxTier::Tier1 => "docker",
        SandboxTier::Tier2 => "gvisor",
        SandboxTier::Tier3 => "firecracker",
        SandboxTier::None => "none",
    })
}

impl Default for SecuritySection {
    fn default() -> Self {
        Self {
            default_sandbox_tier: SandboxTier::Tier2,
            enforce_policies: true,
            audit_enabled: true,
            crypto_provider: CryptoProviderName::Ring,
        }
    }
}

//! Key handling: per-agent Ed25519 identity keys and per-channel AES-256-GCM keys.
//!
//! **Derived keys (default).** The runtime holds one 32-byte bus master secret
//! (`[bus] master_key_file`, mode 0600, created on first start; every node of a NATS
//! cluster is given the same file). From it, with HKDF-SHA256 through the configured
//! [`CryptoProvider`]:
//!
//! * agent identity seed = HKDF(salt `"symbi-bus"`, ikm master, info
//!   `"symbi-bus/identity/v1" ‖ agent-uuid`) → Ed25519 signing key;
//! * direct channel key  = HKDF(…, info `"symbi-bus/aead/direct/v1" ‖ sender ‖ recipient`);
//! * topic channel key   = HKDF(…, info `"symbi-bus/aead/topic/v1" ‖ canonical topic`).
//!
//! So a node can verify any agent's signature and open any channel without a key
//! directory, and nothing but the master secret has to be distributed. What this means:
//! whoever holds the master secret (every runtime node) can act as any agent; agents
//! themselves never see key material (they are interpreted DSL programs), and NATS
//! servers, other NATS clients and anyone on the wire see only ciphertext they cannot
//! forge.
//!
//! **Provisioned keys.** [`KeyRing::provision_identity`] installs an agent's own signing
//! seed (e.g. an externally managed key) and [`KeyRing::pin_public_key`] pins the public key
//! a remote sender must sign with; a pinned key always wins over derivation, so a node
//! that holds only pinned public keys cannot forge those agents' messages.

use crate::error::BusError;
use dashmap::DashMap;
use std::sync::Arc;
use symbi_crypto::{Aead, CryptoProvider, PublicKey, Signer, Verifier};
use symbi_types::AgentId;
use zeroize::Zeroizing;

/// Most cached channel keys before the cache is cleared (derivation is cheap, memory is
/// bounded).
const MAX_CACHED_CHANNELS: usize = 65_536;

/// Which channel a key protects.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Direct messages (and requests/responses) from `sender` to `recipient`.
    Direct {
        /// The sender.
        sender: AgentId,
        /// The recipient.
        recipient: AgentId,
    },
    /// Messages on a topic (canonical name).
    Topic(Arc<str>),
}

impl Channel {
    /// The HKDF info string of this channel's key (also bound into session handshakes).
    pub fn info(&self) -> Vec<u8> {
        match self {
            Channel::Direct { sender, recipient } => {
                let mut v = b"symbi-bus/aead/direct/v1".to_vec();
                v.extend_from_slice(sender.as_uuid().as_bytes());
                v.extend_from_slice(recipient.as_uuid().as_bytes());
                v
            }
            Channel::Topic(t) => {
                let mut v = b"symbi-bus/aead/topic/v1".to_vec();
                v.extend_from_slice(t.as_bytes());
                v
            }
        }
    }
}

/// The keys of one node.
pub struct KeyRing {
    provider: Arc<dyn CryptoProvider>,
    master: Zeroizing<[u8; 32]>,
    signers: DashMap<AgentId, Arc<dyn Signer>>,
    verifiers: DashMap<AgentId, Arc<dyn Verifier>>,
    pinned: DashMap<AgentId, PublicKey>,
    channels: DashMap<Channel, (Arc<dyn Aead>, [u8; 32])>,
}

impl KeyRing {
    /// A key ring deriving from `master_secret`.
    pub fn new(provider: Arc<dyn CryptoProvider>, master_secret: [u8; 32]) -> Self {
        Self {
            provider,
            master: Zeroizing::new(master_secret),
            signers: DashMap::new(),
            verifiers: DashMap::new(),
            pinned: DashMap::new(),
            channels: DashMap::new(),
        }
    }

    /// Loads the master secret from `path` (hex, 0600), creating it on first use.
    pub fn from_key_file(
        provider: Arc<dyn CryptoProvider>,
        path: &std::path::Path,
    ) -> Result<Self, BusError> {
        let p = provider.clone();
        let (seed, _created) = symbi_crypto::load_or_create_seed(path, || p.generate_key())
            .map_err(|e| BusError::Keys(e.to_string()))?;
        Ok(Self::new(provider, seed))
    }

    /// The crypto provider.
    pub fn provider(&self) -> &Arc<dyn CryptoProvider> {
        &self.provider
    }

    fn derive(&self, info: &[u8]) -> Result<[u8; 32], BusError> {
        let mut out = [0u8; 32];
        self.provider
            .hkdf_sha256(b"symbi-bus", &*self.master, info, &mut out)
            .map_err(|e| BusError::Keys(e.to_string()))?;
        Ok(out)
    }

    /// Installs a provisioned signing seed for `agent` (replaces the derived key) and pins
    /// its public key.
    pub fn provision_identity(
        &self,
        agent: AgentId,
        seed: &[u8; 32],
    ) -> Result<PublicKey, BusError> {
        let signer = self
            .provider
            .signer_from_seed(seed)
            .map_err(|e| BusError::Keys(e.to_string()))?;
        let pk = signer.public_key();
        self.signers.insert(agent, signer);
        self.pin_public_key(agent, pk)?;
        Ok(pk)
    }

    /// Pins the public key `agent`'s messages must be signed with.
    pub fn pin_public_key(&self, agent: AgentId, public: PublicKey) -> Result<(), BusError> {
        let v = self
            .provider
            .verifier(&public)
            .map_err(|e| BusError::Keys(e.to_string()))?;
        self.pinned.insert(agent, public);
        self.verifiers.insert(agent, v);
        Ok(())
    }

    /// The signer of `agent` (provisioned, else derived).
    pub fn signer(&self, agent: AgentId) -> Result<Arc<dyn Signer>, BusError> {
        if let Some(s) = self.signers.get(&agent) {
            return Ok(s.clone());
        }
        if self.pinned.contains_key(&agent) {
            return Err(BusError::Keys(format!(
                "agent {agent} has a pinned public key but no provisioned signing key on this node"
            )));
        }
        let mut info = b"symbi-bus/identity/v1".to_vec();
        info.extend_from_slice(agent.as_uuid().as_bytes());
        let seed = self.derive(&info)?;
        let s = self
            .provider
            .signer_from_seed(&seed)
            .map_err(|e| BusError::Keys(e.to_string()))?;
        self.signers.insert(agent, s.clone());
        Ok(s)
    }

    /// The public key `agent` signs with.
    pub fn public_key(&self, agent: AgentId) -> Result<PublicKey, BusError> {
        if let Some(pk) = self.pinned.get(&agent) {
            return Ok(*pk);
        }
        Ok(self.signer(agent)?.public_key())
    }

    /// The verifier of `agent`'s signatures.
    pub fn verifier(&self, agent: AgentId) -> Result<Arc<dyn Verifier>, BusError> {
        if let Some(v) = self.verifiers.get(&agent) {
            return Ok(v.clone());
        }
        let pk = self.public_key(agent)?;
        let v = self
            .provider
            .verifier(&pk)
            .map_err(|e| BusError::Keys(e.to_string()))?;
        self.verifiers.insert(agent, v.clone());
        Ok(v)
    }

    /// The AEAD key of `channel` and its raw bytes (the input of session key derivation).
    pub(crate) fn channel(&self, channel: &Channel) -> Result<(Arc<dyn Aead>, [u8; 32]), BusError> {
        if let Some(k) = self.channels.get(channel) {
            return Ok(k.clone());
        }
        let raw = self.derive(&channel.info())?;
        let aead = self
            .provider
            .aead(&raw)
            .map_err(|e| BusError::Keys(e.to_string()))?;
        if self.channels.len() >= MAX_CACHED_CHANNELS {
            self.channels.clear();
        }
        self.channels.insert(channel.clone(), (aead.clone(), raw));
        Ok((aead, raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_is_deterministic_and_separated() {
        let p = symbi_crypto::provider("ring").unwrap();
        let a = KeyRing::new(p.clone(), [1; 32]);
        let b = KeyRing::new(symbi_crypto::provider("rustcrypto").unwrap(), [1; 32]);
        let c = KeyRing::new(p.clone(), [2; 32]);
        let agent = AgentId::new();
        assert_eq!(
            a.public_key(agent).unwrap(),
            b.public_key(agent).unwrap(),
            "providers agree"
        );
        assert_ne!(
            a.public_key(agent).unwrap(),
            c.public_key(agent).unwrap(),
            "master matters"
        );
        assert_ne!(
            a.public_key(agent).unwrap(),
            a.public_key(AgentId::new()).unwrap()
        );
        let s = a.signer(agent).unwrap();
        b.verifier(agent)
            .unwrap()
            .verify(b"m", &s.sign(b"m"))
            .unwrap();
        let (x, y) = (AgentId::new(), AgentId::new());
        let k1 = a
            .channel(&Channel::Direct {
                sender: x,
                recipient: y,
            })
            .unwrap()
            .1;
        let k2 = a
            .channel(&Channel::Direct {
                sender: y,
                recipient: x,
            })
            .unwrap()
            .1;
        let k3 = a.channel(&Channel::Topic("a/b".into())).unwrap().1;
        assert!(k1 != k2 && k1 != k3);
    }

    #[test]
    fn pinned_keys_win_over_derivation() {
        let p = symbi_crypto::provider("ring").unwrap();
        let ring = KeyRing::new(p.clone(), [1; 32]);
        let agent = AgentId::new();
        let pk = ring.provision_identity(agent, &[9; 32]).unwrap();
        assert_eq!(ring.public_key(agent).unwrap(), pk);
        let other = KeyRing::new(p, [1; 32]);
        other.pin_public_key(agent, pk).unwrap();
        assert!(
            other.signer(agent).is_err(),
            "a pinned-only node cannot sign as the agent"
        );
        other
            .verifier(agent)
            .unwrap()
            .verify(b"x", &ring.signer(agent).unwrap().sign(b"x"))
            .unwrap();
    }

    #[test]
    fn key_file_is_created_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/bus-master.key");
        let p = symbi_crypto::provider("ring").unwrap();
        let agent = AgentId::new();
        let a = KeyRing::from_key_file(p.clone(), &path)
            .unwrap()
            .public_key(agent)
            .unwrap();
        let b = KeyRing::from_key_file(p, &path)
            .unwrap()
            .public_key(agent)
            .unwrap();
        assert_eq!(a, b);
    }
}

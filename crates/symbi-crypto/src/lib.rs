//! One crypto provider for the whole runtime (SPEC §2 "Crypto operations").
//!
//! The audit log (signatures, hashes) and the bus (AEAD, signatures, key derivation) use
//! cryptography only through [`CryptoProvider`], chosen by configuration
//! (`[security] crypto_provider = "ring"` default, or `"rustcrypto"`). Keys are prepared
//! once ([`Signer`], [`Verifier`], [`Aead`]) so hot paths never re-parse key material.
//!
//! ```
//! use symbi_crypto::provider;
//! let p = provider("ring").unwrap();
//! let signer = p.signer_from_seed(&[7u8; 32]).unwrap();
//! let sig = signer.sign(b"hello");
//! p.verify(&signer.public_key(), b"hello", &sig).unwrap();
//! assert!(p.verify(&signer.public_key(), b"hellO", &sig).is_err());
//! ```

mod keyfile;
mod ring_provider;
mod rustcrypto_provider;

pub use keyfile::{load_or_create_seed, write_secret_file};
pub use ring_provider::RingProvider;
pub use rustcrypto_provider::RustCryptoProvider;

use std::sync::Arc;

/// Length of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Length of an AES-256-GCM nonce.
pub const NONCE_LEN: usize = 12;
/// Length of an AES-256-GCM tag.
pub const TAG_LEN: usize = 16;

/// An Ed25519 public key.
pub type PublicKey = [u8; PUBLIC_KEY_LEN];
/// An Ed25519 signature.
pub type Signature = [u8; SIGNATURE_LEN];

/// Crypto failures. Messages never contain key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// A signature did not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// In a batch, at least one signature did not verify.
    #[error("batch signature verification failed")]
    BadBatch,
    /// Key bytes were malformed.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// AEAD decryption failed (wrong key, nonce, AAD or tampered ciphertext).
    #[error(
        "decryption failed: ciphertext or associated data was tampered with, or the key is wrong"
    )]
    Decrypt,
    /// AEAD encryption failed.
    #[error("encryption failed")]
    Encrypt,
    /// The operating system's random source failed.
    #[error("random source failed")]
    Random,
    /// Unknown provider name in configuration.
    #[error("unknown crypto provider `{0}` (expected \"ring\" or \"rustcrypto\")")]
    UnknownProvider(String),
    /// Key file I/O.
    #[error("key file {path}: {message}")]
    KeyFile {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// A prepared Ed25519 signing key.
pub trait Signer: Send + Sync {
    /// Signs `msg`.
    fn sign(&self, msg: &[u8]) -> Signature;
    /// The matching public key.
    fn public_key(&self) -> PublicKey;
}

/// A prepared Ed25519 verification key.
pub trait Verifier: Send + Sync {
    /// Verifies `sig` over `msg`.
    fn verify(&self, msg: &[u8], sig: &Signature) -> Result<(), CryptoError>;
}

/// A prepared AES-256-GCM key.
pub trait Aead: Send + Sync {
    /// Encrypts `plaintext` with `aad`, returning ciphertext ‖ tag.
    fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError>;
    /// Decrypts ciphertext ‖ tag, checking `aad`.
    fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, CryptoError>;
}

/// The provider abstraction.
pub trait CryptoProvider: Send + Sync {
    /// The configuration name (`ring`, `rustcrypto`).
    fn name(&self) -> &'static str;
    /// SHA-256.
    fn sha256(&self, data: &[u8]) -> [u8; 32];
    /// SHA-256 over several parts, as if concatenated.
    fn sha256_parts(&self, parts: &[&[u8]]) -> [u8; 32];
    /// HKDF-SHA256 (RFC 5869) into `out` (at most 255 × 32 bytes).
    fn hkdf_sha256(
        &self,
        salt: &[u8],
        ikm: &[u8],
        info: &[u8],
        out: &mut [u8],
    ) -> Result<(), CryptoError>;
    /// Fills `buf` from the OS random source.
    fn fill_random(&self, buf: &mut [u8]) -> Result<(), CryptoError>;
    /// A prepared signer from a 32-byte Ed25519 seed.
    fn signer_from_seed(&self, seed: &[u8; 32]) -> Result<Arc<dyn Signer>, CryptoError>;
    /// A prepared verifier for `public`.
    fn verifier(&self, public: &PublicKey) -> Result<Arc<dyn Verifier>, CryptoError>;
    /// Verifies one signature.
    fn verify(&self, public: &PublicKey, msg: &[u8], sig: &Signature) -> Result<(), CryptoError> {
        self.verifier(public)?.verify(msg, sig)
    }
    /// Verifies many signatures at once. Uses Ed25519 batch verification (ed25519-dalek) in
    /// every provider, since ring has none; on failure, callers that need to know which
    /// signature is bad verify one by one.
    fn verify_batch(&self, items: &[(&PublicKey, &[u8], &Signature)]) -> Result<(), CryptoError> {
        batch_verify(items)
    }
    /// A prepared AES-256-GCM key.
    fn aead(&self, key: &[u8; 32]) -> Result<Arc<dyn Aead>, CryptoError>;
    /// A fresh random 32-byte seed / key.
    fn generate_key(&self) -> Result<[u8; 32], CryptoError> {
        let mut k = [0u8; 32];
        self.fill_random(&mut k)?;
        Ok(k)
    }
}

/// The provider with this configuration name.
pub fn provider(name: &str) -> Result<Arc<dyn CryptoProvider>, CryptoError> {
    match name {
        "ring" => Ok(Arc::new(RingProvider)),
        "rustcrypto" => Ok(Arc::new(RustCryptoProvider)),
        other => Err(CryptoError::UnknownProvider(other.to_string())),
    }
}

/// Ed25519 batch verification (shared by both providers).
pub fn batch_verify(items: &[(&PublicKey, &[u8], &Signature)]) -> Result<(), CryptoError> {
    use ed25519_dalek::{Signature as DSig, VerifyingKey};
    if items.is_empty() {
        return Ok(());
    }
    let mut keys = Vec::with_capacity(items.len());
    let mut sigs = Vec::with_capacity(items.len());
    let mut msgs = Vec::with_capacity(items.len());
    for (pk, msg, sig) in items {
        keys.push(
            VerifyingKey::from_bytes(pk).map_err(|e| CryptoError::InvalidKey(e.to_string()))?,
        );
        sigs.push(DSig::from_bytes(sig));
        msgs.push(*msg);
    }
    ed25519_dalek::verify_batch(&msgs, &sigs, &keys).map_err(|_| CryptoError::BadBatch)
}

/// Lower-case hex of the first 8 bytes of SHA-256(public key): the key id printed in
/// logs and exported with public keys.
pub fn key_fingerprint(public: &PublicKey) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(public)[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn providers() -> Vec<Arc<dyn CryptoProvider>> {
        vec![provider("ring").unwrap(), provider("rustcrypto").unwrap()]
    }

    #[test]
    fn providers_agree() {
        let [a, b]: [Arc<dyn CryptoProvider>; 2] = providers().try_into().ok().unwrap();
        let seed = [42u8; 32];
        let (sa, sb) = (
            a.signer_from_seed(&seed).unwrap(),
            b.signer_from_seed(&seed).unwrap(),
        );
        assert_eq!(sa.public_key(), sb.public_key());
        // Ed25519 is deterministic: same key, same message, same signature.
        assert_eq!(sa.sign(b"m"), sb.sign(b"m"));
        b.verify(&sa.public_key(), b"m", &sa.sign(b"m")).unwrap();
        assert_eq!(a.sha256(b"abc"), b.sha256(b"abc"));
        assert_eq!(a.sha256_parts(&[b"a", b"bc"]), a.sha256(b"abc"));
        let key = [9u8; 32];
        let nonce = [1u8; 12];
        let ct = a
            .aead(&key)
            .unwrap()
            .seal(&nonce, b"hdr", b"secret")
            .unwrap();
        assert_eq!(
            b.aead(&key).unwrap().open(&nonce, b"hdr", &ct).unwrap(),
            b"secret"
        );
        let mut o1 = [0u8; 42];
        let mut o2 = [0u8; 42];
        a.hkdf_sha256(b"salt", b"ikm", b"info", &mut o1).unwrap();
        b.hkdf_sha256(b"salt", b"ikm", b"info", &mut o2).unwrap();
        assert_eq!(o1, o2);
    }

    #[test]
    fn tampering_is_detected() {
        for p in providers() {
            let s = p.signer_from_seed(&[1u8; 32]).unwrap();
            let mut sig = s.sign(b"x");
            sig[3] ^= 1;
            assert_eq!(
                p.verify(&s.public_key(), b"x", &sig),
                Err(CryptoError::BadSignature)
            );
            let aead = p.aead(&[2u8; 32]).unwrap();
            let mut ct = aead.seal(&[0u8; 12], b"a", b"payload").unwrap();
            ct[0] ^= 0x80;
            assert_eq!(aead.open(&[0u8; 12], b"a", &ct), Err(CryptoError::Decrypt));
            let ct = aead.seal(&[0u8; 12], b"a", b"payload").unwrap();
            assert_eq!(aead.open(&[0u8; 12], b"b", &ct), Err(CryptoError::Decrypt));
        }
    }

    #[test]
    fn batch_verification() {
        let p = provider("ring").unwrap();
        let signers: Vec<_> = (0..8u8)
            .map(|i| p.signer_from_seed(&[i; 32]).unwrap())
            .collect();
        let pks: Vec<PublicKey> = signers.iter().map(|s| s.public_key()).collect();
        let msgs: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 10]).collect();
        let mut sigs: Vec<Signature> = signers.iter().zip(&msgs).map(|(s, m)| s.sign(m)).collect();
        let items: Vec<_> = (0..8)
            .map(|i| (&pks[i], msgs[i].as_slice(), &sigs[i]))
            .collect();
        p.verify_batch(&items).unwrap();
        sigs[5][0] ^= 1;
        let items: Vec<_> = (0..8)
            .map(|i| (&pks[i], msgs[i].as_slice(), &sigs[i]))
            .collect();
        assert_eq!(p.verify_batch(&items), Err(CryptoError::BadBatch));
    }
}

//! The pure-Rust provider: ed25519-dalek, aes-gcm, sha2, hkdf.

use crate::{Aead, CryptoError, CryptoProvider, NONCE_LEN, PublicKey, Signature, Signer, Verifier};
use aes_gcm::aead::{Aead as _, KeyInit, Payload};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// `crypto_provider = "rustcrypto"`.
#[derive(Debug, Default, Clone, Copy)]
pub struct RustCryptoProvider;

struct DalekSigner(SigningKey);

impl Signer for DalekSigner {
    fn sign(&self, msg: &[u8]) -> Signature {
        self.0.sign(msg).to_bytes()
    }
    fn public_key(&self) -> PublicKey {
        self.0.verifying_key().to_bytes()
    }
}

struct DalekVerifier(VerifyingKey);

impl Verifier for DalekVerifier {
    fn verify(&self, msg: &[u8], sig: &Signature) -> Result<(), CryptoError> {
        self.0
            .verify_strict(msg, &ed25519_dalek::Signature::from_bytes(sig))
            .map_err(|_| CryptoError::BadSignature)
    }
}

struct GcmAead(aes_gcm::Aes256Gcm);

impl Aead for GcmAead {
    fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.0
            .encrypt(
                &(*nonce).into(),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::Encrypt)
    }
    fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.0
            .decrypt(
                &(*nonce).into(),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::Decrypt)
    }
}

impl CryptoProvider for RustCryptoProvider {
    fn name(&self) -> &'static str {
        "rustcrypto"
    }
    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }
    fn sha256_parts(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().into()
    }
    fn hkdf_sha256(
        &self,
        salt: &[u8],
        ikm: &[u8],
        info: &[u8],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        hkdf::Hkdf::<Sha256>::new(Some(salt), ikm)
            .expand(info, out)
            .map_err(|_| CryptoError::InvalidKey("hkdf output too long".into()))
    }
    fn fill_random(&self, buf: &mut [u8]) -> Result<(), CryptoError> {
        use rand_core::RngCore;
        rand_core::OsRng
            .try_fill_bytes(buf)
            .map_err(|_| CryptoError::Random)
    }
    fn signer_from_seed(&self, seed: &[u8; 32]) -> Result<Arc<dyn Signer>, CryptoError> {
        Ok(Arc::new(DalekSigner(SigningKey::from_bytes(seed))))
    }
    fn verifier(&self, public: &PublicKey) -> Result<Arc<dyn Verifier>, CryptoError> {
        VerifyingKey::from_bytes(public)
            .map(|k| Arc::new(DalekVerifier(k)) as Arc<dyn Verifier>)
            .map_err(|e| CryptoError::InvalidKey(e.to_string()))
    }
    fn aead(&self, key: &[u8; 32]) -> Result<Arc<dyn Aead>, CryptoError> {
        aes_gcm::Aes256Gcm::new_from_slice(key)
            .map(|c| Arc::new(GcmAead(c)) as Arc<dyn Aead>)
            .map_err(|_| CryptoError::InvalidKey("aes-256-gcm key must be 32 bytes".into()))
    }
}

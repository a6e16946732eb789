//! The default provider: `ring` for every primitive.

use crate::{Aead, CryptoError, CryptoProvider, NONCE_LEN, PublicKey, Signature, Signer, Verifier};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use std::sync::Arc;

/// `crypto_provider = "ring"`.
#[derive(Debug, Default, Clone, Copy)]
pub struct RingProvider;

struct RingSigner(Ed25519KeyPair);

impl Signer for RingSigner {
    fn sign(&self, msg: &[u8]) -> Signature {
        self.0
            .sign(msg)
            .as_ref()
            .try_into()
            .expect("ed25519 signatures are 64 bytes")
    }
    fn public_key(&self) -> PublicKey {
        self.0
            .public_key()
            .as_ref()
            .try_into()
            .expect("ed25519 public keys are 32 bytes")
    }
}

struct RingVerifier(UnparsedPublicKey<PublicKey>);

impl Verifier for RingVerifier {
    fn verify(&self, msg: &[u8], sig: &Signature) -> Result<(), CryptoError> {
        self.0
            .verify(msg, sig)
            .map_err(|_| CryptoError::BadSignature)
    }
}

struct RingAead(LessSafeKey);

impl Aead for RingAead {
    fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let mut buf = Vec::with_capacity(plaintext.len() + crate::TAG_LEN);
        buf.extend_from_slice(plaintext);
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| CryptoError::Encrypt)?;
        Ok(buf)
    }
    fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let mut buf = ciphertext.to_vec();
        let len = self
            .0
            .open_in_place(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| CryptoError::Decrypt)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

struct OkmLen(usize);
impl ring::hkdf::KeyType for OkmLen {
    fn len(&self) -> usize {
        self.0
    }
}

impl CryptoProvider for RingProvider {
    fn name(&self) -> &'static str {
        "ring"
    }
    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        ring::digest::digest(&ring::digest::SHA256, data)
            .as_ref()
            .try_into()
            .unwrap()
    }
    fn sha256_parts(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for p in parts {
            ctx.update(p);
        }
        ctx.finish().as_ref().try_into().unwrap()
    }
    fn hkdf_sha256(
        &self,
        salt: &[u8],
        ikm: &[u8],
        info: &[u8],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, salt).extract(ikm);
        let info = [info];
        let okm = prk
            .expand(&info, OkmLen(out.len()))
            .map_err(|_| CryptoError::InvalidKey("hkdf output too long".into()))?;
        okm.fill(out)
            .map_err(|_| CryptoError::InvalidKey("hkdf output too long".into()))
    }
    fn fill_random(&self, buf: &mut [u8]) -> Result<(), CryptoError> {
        SystemRandom::new()
            .fill(buf)
            .map_err(|_| CryptoError::Random)
    }
    fn signer_from_seed(&self, seed: &[u8; 32]) -> Result<Arc<dyn Signer>, CryptoError> {
        Ed25519KeyPair::from_seed_unchecked(seed)
            .map(|k| Arc::new(RingSigner(k)) as Arc<dyn Signer>)
            .map_err(|e| CryptoError::InvalidKey(e.to_string()))
    }
    fn verifier(&self, public: &PublicKey) -> Result<Arc<dyn Verifier>, CryptoError> {
        Ok(Arc::new(RingVerifier(UnparsedPublicKey::new(
            &ED25519, *public,
        ))))
    }
    fn aead(&self, key: &[u8; 32]) -> Result<Arc<dyn Aead>, CryptoError> {
        let k = UnboundKey::new(&AES_256_GCM, key)
            .map_err(|_| CryptoError::InvalidKey("aes-256-gcm".into()))?;
        Ok(Arc::new(RingAead(LessSafeKey::new(k))))
    }
}

//! Webhook signature verification (GRAMMAR.md §4.11.4): HMAC-SHA256 with a shared secret,
//! provider presets, constant-time comparison, a 5-minute timestamp tolerance where the
//! provider signs a timestamp, and a replay window (a signature is accepted once).

use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use sha2::Sha256;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

type HmacSha256 = Hmac<Sha256>;

/// Signature conventions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// `X-Hub-Signature-256: sha256=<hex HMAC(body)>`.
    Github,
    /// `Stripe-Signature: t=<unix>,v1=<hex HMAC("<t>.<body>")>`.
    Stripe,
    /// `X-Slack-Signature: v0=<hex HMAC("v0:<ts>:<body>")>` + `X-Slack-Request-Timestamp`.
    Slack,
    /// `X-Signature: [sha256=]<hex HMAC(body)>`.
    Custom,
}

impl Provider {
    /// Any other name means `custom`.
    pub fn from_name(name: &str) -> Self {
        match name.to_ascii_lowercase().as_str() {
            "github" => Self::Github,
            "stripe" => Self::Stripe,
            "slack" => Self::Slack,
            _ => Self::Custom,
        }
    }

    /// The signature header this provider uses.
    pub fn signature_header(self) -> &'static str {
        match self {
            Self::Github => "x-hub-signature-256",
            Self::Stripe => "stripe-signature",
            Self::Slack => "x-slack-signature",
            Self::Custom => "x-signature",
        }
    }
}

/// Why a request was refused (answered 401 and audited).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// No signature header.
    #[error("missing signature header `{0}`")]
    MissingSignature(&'static str),
    /// Header not in the provider's format.
    #[error("malformed signature header")]
    Malformed,
    /// HMAC mismatch.
    #[error("signature does not match")]
    BadSignature,
    /// Signed timestamp outside the tolerance.
    #[error("signed timestamp is outside the {0:?} tolerance")]
    Stale(Duration),
    /// The same signature was already accepted.
    #[error("replayed request")]
    Replay,
}

/// Verifies one webhook's requests.
pub struct Verifier {
    provider: Provider,
    secret: Vec<u8>,
    tolerance: Duration,
    seen: Mutex<HashMap<Vec<u8>, u64>>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Verifier {
    /// A verifier with the default 5-minute tolerance and replay window.
    pub fn new(provider: Provider, secret: impl Into<Vec<u8>>) -> Self {
        Self {
            provider,
            secret: secret.into(),
            tolerance: Duration::from_secs(300),
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn mac(&self, parts: &[&[u8]]) -> HmacSha256 {
        let mut m = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes any key length");
        for p in parts {
            m.update(p);
        }
        m
    }

    /// Checks a request. `header(name)` returns a header value by lower-case name.
    pub fn verify<'a>(
        &self,
        header: impl Fn(&str) -> Option<&'a str>,
        body: &[u8],
    ) -> Result<(), WebhookError> {
        self.verify_at(header, body, now_secs())
    }

    /// [`Self::verify`] at a given time (tests).
    pub fn verify_at<'a>(
        &self,
        header: impl Fn(&str) -> Option<&'a str>,
        body: &[u8],
        now: u64,
    ) -> Result<(), WebhookError> {
        let name = self.provider.signature_header();
        let sig_header = header(name)
            .ok_or(WebhookError::MissingSignature(name))?
            .trim();
        let (mac, sig_hex, ts) = match self.provider {
            Provider::Github => {
                let hex = sig_header
                    .strip_prefix("sha256=")
                    .ok_or(WebhookError::Malformed)?;
                (self.mac(&[body]), hex, None)
            }
            Provider::Custom => {
                let hex = sig_header.strip_prefix("sha256=").unwrap_or(sig_header);
                (self.mac(&[body]), hex, None)
            }
            Provider::Slack => {
                let ts = header("x-slack-request-timestamp")
                    .ok_or(WebhookError::MissingSignature("x-slack-request-timestamp"))?
                    .trim();
                let hex = sig_header
                    .strip_prefix("v0=")
                    .ok_or(WebhookError::Malformed)?;
                (
                    self.mac(&[b"v0:", ts.as_bytes(), b":", body]),
                    hex,
                    Some(ts),
                )
            }
            Provider::Stripe => {
                let mut t = None;
                let mut v1 = None;
                for part in sig_header.split(',') {
                    match part.trim().split_once('=') {
                        Some(("t", v)) => t = Some(v),
                        Some(("v1", v)) if v1.is_none() => v1 = Some(v),
                        _ => {}
                    }
                }
                let (t, v1) = (
                    t.ok_or(WebhookError::Malformed)?,
                    v1.ok_or(WebhookError::Malformed)?,
                );
                (self.mac(&[t.as_bytes(), b".", body]), v1, Some(t))
            }
        };
        let sig = hex::decode(sig_hex).map_err(|_| WebhookError::Malformed)?;
        // `verify_slice` compares in constant time.
        mac.verify_slice(&sig)
            .map_err(|_| WebhookError::BadSignature)?;
        if let Some(ts) = ts {
            let ts: u64 = ts.parse().map_err(|_| WebhookError::Malformed)?;
            if now.abs_diff(ts) > self.tolerance.as_secs() {
                return Err(WebhookError::Stale(self.tolerance));
            }
        }
        let mut seen = self.seen.lock();
        let window = self.tolerance.as_secs();
        seen.retain(|_, at| now.saturating_sub(*at) <= window);
        if seen.insert(sig, now).is_some() {
            return Err(WebhookError::Replay);
        }
        Ok(())
    }
}

/// Hex HMAC-SHA256 of `parts` (used by tests and clients).
pub fn sign_hex(secret: &[u8], parts: &[&[u8]]) -> String {
    let mut m = HmacSha256::new_from_slice(secret).expect("any key length");
    for p in parts {
        m.update(p);
    }
    hex::encode(m.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdrs<'a>(pairs: &'a [(&'static str, String)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |n| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str())
    }

    #[test]
    fn custom_github_good_bad_replay() {
        let body = br#"{"event":"ticket.created"}"#;
        for (p, prefix) in [
            (Provider::Custom, ""),
            (Provider::Custom, "sha256="),
            (Provider::Github, "sha256="),
        ] {
            let v = Verifier::new(p, "k");
            let good = vec![(
                p.signature_header(),
                format!("{prefix}{}", sign_hex(b"k", &[body])),
            )];
            assert_eq!(v.verify_at(hdrs(&good), body, 1000), Ok(()));
            assert_eq!(
                v.verify_at(hdrs(&good), body, 1001),
                Err(WebhookError::Replay)
            );
            let bad = vec![(
                p.signature_header(),
                format!("{prefix}{}", sign_hex(b"other", &[body])),
            )];
            assert_eq!(
                v.verify_at(hdrs(&bad), body, 1000),
                Err(WebhookError::BadSignature)
            );
            assert_eq!(
                v.verify_at(hdrs(&[]), body, 1000),
                Err(WebhookError::MissingSignature(p.signature_header()))
            );
        }
    }

    #[test]
    fn stripe_and_slack_timestamps() {
        let body = b"{}";
        let v = Verifier::new(Provider::Stripe, "s");
        let t = "1700000000";
        let h = vec![(
            "stripe-signature",
            format!("t={t},v1={}", sign_hex(b"s", &[t.as_bytes(), b".", body])),
        )];
        assert_eq!(v.verify_at(hdrs(&h), body, 1_700_000_100), Ok(()));
        let v = Verifier::new(Provider::Stripe, "s");
        assert!(matches!(
            v.verify_at(hdrs(&h), body, 1_700_000_301),
            Err(WebhookError::Stale(_))
        ));
        let v = Verifier::new(Provider::Slack, "s");
        let h = vec![
            (
                "x-slack-signature",
                format!("v0={}", sign_hex(b"s", &[b"v0:", t.as_bytes(), b":", body])),
            ),
            ("x-slack-request-timestamp", t.to_string()),
        ];
        assert_eq!(v.verify_at(hdrs(&h), body, 1_700_000_000), Ok(()));
    }
}

//! `http.get`, `http.post`, `http.request` (GRAMMAR.md §5.3): outbound HTTP from the
//! runtime, after policy allowed it and `network_policy` lets it leave the host.
//! TLS is verified against the host's trust store (`/etc/ssl/certs`, or `SSL_CERT_FILE`)
//! unless the call asks `verify_tls: false` *and* no policy demands verification
//! (`tls_verification: true` wins, and then a plain `http://` URL is refused).

use super::core::{ActionOutput, Call, Executor};
use super::error::ActionError;
use async_trait::async_trait;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// Response bodies larger than this are cut (and flagged) to keep agents' heaps bounded.
const MAX_BODY: usize = 10 << 20;

/// The network executor.
pub struct HttpExecutor {
    verifying: reqwest::Client,
    lenient: reqwest::Client,
    default_timeout: Duration,
}

impl HttpExecutor {
    /// A new executor; `default_timeout` applies when neither the call nor policy sets one.
    pub fn new(default_timeout: Duration) -> Result<Self, ActionError> {
        let build = |verify: bool| {
            reqwest::Client::builder()
                .danger_accept_invalid_certs(!verify)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("symbi/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| ActionError::failed(format!("cannot build HTTP client: {e}")))
        };
        Ok(Self {
            verifying: build(true)?,
            lenient: build(false)?,
            default_timeout,
        })
    }
}

fn opt<'a>(call: &'a Call<'_>, options_index: usize, name: &str) -> Option<&'a Value> {
    call.request
        .named
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, a)| &a.value)
        .or_else(|| {
            call.request
                .args
                .get(options_index)
                .and_then(|a| a.value.get(name))
        })
}

#[async_trait]
impl Executor for HttpExecutor {
    async fn execute(&self, call: Call<'_>) -> Result<ActionOutput, ActionError> {
        let req = call.request;
        let (method, url, body, options_index) = match req.name.as_str() {
            "http.get" => ("GET".to_string(), req.arg_str(0, "url"), None, 1),
            "http.post" => (
                "POST".to_string(),
                req.arg_str(0, "url"),
                req.arg(1, "body").map(|a| a.value.clone()),
                2,
            ),
            _ => (
                req.arg_str(0, "method")
                    .unwrap_or("GET")
                    .to_ascii_uppercase(),
                req.arg_str(1, "url"),
                opt(&call, 2, "body").cloned(),
                2,
            ),
        };
        let url =
            url.ok_or_else(|| ActionError::failed(format!("`{}` needs a URL string", req.name)))?;
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| ActionError::failed(format!("invalid HTTP method `{method}`")))?;
        let asked_no_verify =
            opt(&call, options_index, "verify_tls").and_then(Value::as_bool) == Some(false);
        let verify = match call.options.tls_verify {
            Some(true) => true,
            Some(false) => false,
            None => !asked_no_verify,
        };
        if asked_no_verify && verify {
            return Err(ActionError::PolicyDenied {
                reason: format!(
                    "`{}` asked verify_tls: false but policy requires TLS verification",
                    req.name
                ),
            });
        }
        // A policy that demands TLS verification cannot be met over plaintext: refuse the
        // downgrade rather than send the request unprotected.
        if call.options.tls_verify == Some(true)
            && !url
                .get(..8)
                .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
        {
            return Err(ActionError::PolicyDenied {
                reason: format!(
                    "policy requires TLS verification but `{}` targets a non-HTTPS URL",
                    req.name
                ),
            });
        }
        let client = if verify {
            &self.verifying
        } else {
            &self.lenient
        };
        let timeout = opt(&call, options_index, "timeout")
            .and_then(Value::as_u64)
            .map(Duration::from_millis)
            .or(call.options.timeout)
            .unwrap_or(self.default_timeout);
        let mut rb = client.request(method, url).timeout(timeout);
        if let Some(Value::Object(h)) = opt(&call, options_index, "headers") {
            for (k, v) in h {
                let v = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                rb = rb.header(k, v);
            }
        }
        if let Some(Value::Object(q)) = opt(&call, options_index, "query") {
            let pairs: Vec<(String, String)> = q
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect();
            rb = rb.query(&pairs);
        }
        match body {
            Some(Value::String(s)) => rb = rb.body(s),
            Some(Value::Null) | None => {}
            Some(other) => rb = rb.json(&other),
        }
        let resp = rb.send().await.map_err(|e| {
            if e.is_timeout() {
                ActionError::Timeout(timeout)
            } else {
                ActionError::Failed {
                    kind: Some("NetworkError".into()),
                    message: format!("{} {url}: {}", req.name, error_chain(&e)),
                    details: None,
                }
            }
        })?;
        let status = resp.status().as_u16();
        let mut headers = Map::new();
        for (k, v) in resp.headers() {
            headers.insert(k.as_str().to_string(), json!(v.to_str().unwrap_or("")));
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ActionError::failed(format!("{url}: reading body: {e}")))?;
        let truncated = bytes.len() > MAX_BODY;
        let body = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_BODY)]).into_owned();
        let parsed = serde_json::from_str::<Value>(&body).unwrap_or(Value::Null);
        Ok(json!({ "status": status, "headers": headers, "body": body, "json": parsed, "truncated": truncated }).into())
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

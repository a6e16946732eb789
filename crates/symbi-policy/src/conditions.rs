//! Conditions expressed as annotations on Cedar `permit` policies.
//!
//! The vocabulary is [`symbi_types::Condition`], the understood `require` keys of
//! GRAMMAR.md §4.10, spelled as Cedar annotations:
//!
//! ```cedar
//! @id("release-notes-need-approval")
//! @require_approval("true")
//! @approval_expiry("10m")
//! permit(principal, action == Action::"use_llm", resource);
//! ```
//!
//! docs/policies.md lists every annotation. Informational annotations ([`INFORMATIONAL`])
//! attach nothing; any other annotation on a permit is a requirement, and one this module
//! does not understand becomes [`Condition::Opaque`] (never enforceable: the runtime refuses
//! it in production mode) so a misspelt requirement can never silently weaken a policy.

use symbi_types::decision::{ApprovalScope, RatePeriod, VerificationMode};
use symbi_types::{ByteSize, Condition, HumanDuration, SandboxTier};

/// Annotations that describe a policy and attach no condition.
pub const INFORMATIONAL: &[&str] = &[
    "id",
    "reason",
    "description",
    "doc",
    "title",
    "owner",
    "author",
    "note",
    "comment",
    "tags",
    "severity",
    "version",
    "advice",
];

/// One annotation that could not be turned into a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AnnotationError {
    pub key: String,
    pub message: String,
}

/// The conditions a permit's annotations attach, plus the keys that became opaque.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Parsed {
    pub conditions: Vec<Condition>,
    pub opaque_keys: Vec<String>,
}

/// Turns the annotations of one permit policy into conditions.
pub(crate) fn from_annotations<'a>(
    annotations: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Parsed, Vec<AnnotationError>> {
    let mut out = Parsed::default();
    let mut errors = Vec::new();
    // Approval and schema verification are assembled from several keys.
    let mut approval: Option<(
        Option<std::time::Duration>,
        ApprovalScope,
        bool,
        Option<String>,
    )> = None;
    let mut schema: Option<(Option<VerificationMode>, Option<bool>)> = None;
    let mut anns: Vec<(&str, &str)> = annotations.into_iter().collect();
    anns.sort();
    for (key, value) in anns {
        if INFORMATIONAL.contains(&key) {
            continue;
        }
        let err = |message: String| AnnotationError {
            key: key.to_string(),
            message,
        };
        match key {
            "human_approval" | "require_approval" | "approval_required" => match flag(value) {
                Ok(true) => {
                    approval.get_or_insert((None, ApprovalScope::SingleAction, false, None));
                }
                Ok(false) => {}
                Err(e) => errors.push(err(e)),
            },
            "approval_mechanism" => {
                approval.get_or_insert((None, ApprovalScope::SingleAction, false, None));
            }
            "approval_expiry" => match value.parse::<HumanDuration>() {
                Ok(d) => {
                    approval
                        .get_or_insert((None, ApprovalScope::SingleAction, false, None))
                        .0 = Some(d.0);
                }
                Err(e) => errors.push(err(e)),
            },
            "approval_scope" => {
                let scope = match value {
                    "single_action" => Ok(ApprovalScope::SingleAction),
                    "session" => Ok(ApprovalScope::Session),
                    other => Err(format!(
                        "expected \"single_action\" or \"session\", got {other:?}"
                    )),
                };
                match scope {
                    Ok(s) => {
                        approval
                            .get_or_insert((None, ApprovalScope::SingleAction, false, None))
                            .1 = s
                    }
                    Err(e) => errors.push(err(e)),
                }
            }
            "require_reason" | "approval_require_reason" => match flag(value) {
                Ok(b) => {
                    approval
                        .get_or_insert((None, ApprovalScope::SingleAction, false, None))
                        .2 = b
                }
                Err(e) => errors.push(err(e)),
            },
            "approval_role" => {
                if value.trim().is_empty() {
                    errors.push(err("expected a role name".into()));
                } else {
                    approval
                        .get_or_insert((None, ApprovalScope::SingleAction, false, None))
                        .3 = Some(value.trim().to_string());
                }
            }
            "rate_limit" | "rate_limiting" => match rate_limit(value) {
                Ok(c) => out.conditions.push(c),
                Err(e) => errors.push(err(e)),
            },
            "sandbox_tier" => match value.parse::<SandboxTier>() {
                Ok(tier) => out.conditions.push(Condition::MinSandboxTier { tier }),
                Err(e) => errors.push(err(e)),
            },
            "input_sanitization" | "input_validation" | "output_sanitization" => {
                match flag(value) {
                    Ok(true) => out.conditions.push(match key {
                        "input_sanitization" => Condition::InputSanitization,
                        "input_validation" => Condition::InputValidation,
                        _ => Condition::OutputSanitization,
                    }),
                    Ok(false) => {}
                    Err(e) => errors.push(err(e)),
                }
            }
            "tls_verification" => match flag(value) {
                Ok(verify) => out.conditions.push(Condition::TlsVerification { verify }),
                Err(e) => errors.push(err(e)),
            },
            "max_data_size" => match value.parse::<ByteSize>() {
                Ok(b) => out.conditions.push(Condition::MaxDataSize { bytes: b.0 }),
                Err(e) => errors.push(err(e)),
            },
            "timeout_per_request" => match value.parse::<HumanDuration>() {
                Ok(d) => out
                    .conditions
                    .push(Condition::TimeoutPerRequest { timeout: d.0 }),
                Err(e) => errors.push(err(e)),
            },
            "schemapin_mode" => match value.parse::<VerificationMode>() {
                Ok(m) => schema.get_or_insert((None, None)).0 = Some(m),
                Err(e) => errors.push(err(e)),
            },
            "verify_tool_schemas" => match flag(value) {
                Ok(true) => {
                    let s = schema.get_or_insert((None, None));
                    s.0.get_or_insert(VerificationMode::Strict);
                }
                Ok(false) => {}
                Err(e) => errors.push(err(e)),
            },
            "pin_on_first_use" => match flag(value) {
                Ok(b) => schema.get_or_insert((None, None)).1 = Some(b),
                Err(e) => errors.push(err(e)),
            },
            other => {
                out.opaque_keys.push(other.to_string());
                out.conditions.push(Condition::Opaque {
                    name: other.to_string(),
                    value: serde_json::Value::String(value.to_string()),
                });
            }
        }
    }
    if let Some((expiry, scope, require_reason, role)) = approval {
        out.conditions.insert(
            0,
            Condition::HumanApproval {
                expiry,
                scope,
                require_reason,
                role,
            },
        );
    }
    if let Some((mode, pin_on_first_use)) = schema {
        out.conditions.push(Condition::SchemaVerification {
            mode,
            pin_on_first_use,
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Whether an annotation key is a requirement this module understands.
pub(crate) fn is_known_requirement(key: &str) -> bool {
    matches!(
        key,
        "human_approval"
            | "require_approval"
            | "approval_required"
            | "approval_mechanism"
            | "approval_expiry"
            | "approval_scope"
            | "require_reason"
            | "approval_require_reason"
            | "approval_role"
            | "rate_limit"
            | "rate_limiting"
            | "sandbox_tier"
            | "input_sanitization"
            | "input_validation"
            | "output_sanitization"
            | "tls_verification"
            | "max_data_size"
            | "timeout_per_request"
            | "schemapin_mode"
            | "verify_tool_schemas"
            | "pin_on_first_use"
    )
}

/// `"true"`, `"false"`, or an annotation without a value (`@input_sanitization`) = true.
fn flag(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "" | "true" | "yes" => Ok(true),
        "false" | "no" => Ok(false),
        _ => Err(format!("expected \"true\" or \"false\", got {v:?}")),
    }
}

/// `"30/minute"`, `"100/hour/recipient"`, `"5 per second"`.
pub(crate) fn rate_limit(v: &str) -> Result<Condition, String> {
    let bad =
        || format!("expected a rate such as \"30/minute\" or \"100/hour/recipient\", got {v:?}");
    let normalized = v.trim().replace(" per ", "/");
    let mut parts = normalized.split('/').map(str::trim);
    let max: u32 = parts.next().and_then(|n| n.parse().ok()).ok_or_else(bad)?;
    let period = match parts.next().ok_or_else(bad)?.to_ascii_lowercase().as_str() {
        "s" | "sec" | "second" | "seconds" => RatePeriod::Second,
        "m" | "min" | "minute" | "minutes" => RatePeriod::Minute,
        "h" | "hour" | "hours" => RatePeriod::Hour,
        "d" | "day" | "days" => RatePeriod::Day,
        _ => return Err(bad()),
    };
    let per = match parts.next() {
        Some("") => return Err(bad()),
        Some(p) => Some(p.to_string()),
        None => None,
    };
    if parts.next().is_some() || max == 0 {
        return Err(bad());
    }
    Ok(Condition::RateLimit { max, period, per })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse(anns: &[(&str, &str)]) -> Result<Parsed, Vec<AnnotationError>> {
        from_annotations(anns.iter().copied())
    }

    #[test]
    fn approval_keys_merge_into_one_condition() {
        let p = parse(&[
            ("require_approval", "true"),
            ("approval_expiry", "10m"),
            ("approval_role", "ops"),
            ("id", "x"),
        ])
        .unwrap();
        assert_eq!(
            p.conditions,
            vec![Condition::HumanApproval {
                expiry: Some(Duration::from_secs(600)),
                scope: ApprovalScope::SingleAction,
                require_reason: false,
                role: Some("ops".into())
            }]
        );
        assert!(
            parse(&[("require_approval", "false")])
                .unwrap()
                .conditions
                .is_empty()
        );
        // A modifier alone still demands approval (fail closed).
        assert!(matches!(
            parse(&[("approval_expiry", "1h")]).unwrap().conditions[0],
            Condition::HumanApproval { .. }
        ));
    }

    #[test]
    fn every_understood_key() {
        let p = parse(&[
            ("rate_limit", "30/minute"),
            ("sandbox_tier", "gvisor"),
            ("input_sanitization", ""),
            ("input_validation", "true"),
            ("output_sanitization", "true"),
            ("tls_verification", "true"),
            ("max_data_size", "1MB"),
            ("timeout_per_request", "3000ms"),
            ("schemapin_mode", "strict"),
            ("pin_on_first_use", "true"),
        ])
        .unwrap();
        assert!(p.opaque_keys.is_empty());
        for c in [
            Condition::RateLimit {
                max: 30,
                period: RatePeriod::Minute,
                per: None,
            },
            Condition::MinSandboxTier {
                tier: SandboxTier::Tier2,
            },
            Condition::InputSanitization,
            Condition::InputValidation,
            Condition::OutputSanitization,
            Condition::TlsVerification { verify: true },
            Condition::MaxDataSize { bytes: 1 << 20 },
            Condition::TimeoutPerRequest {
                timeout: Duration::from_secs(3),
            },
            Condition::SchemaVerification {
                mode: Some(VerificationMode::Strict),
                pin_on_first_use: Some(true),
            },
        ] {
            assert!(
                p.conditions.contains(&c),
                "missing {c:?} in {:?}",
                p.conditions
            );
        }
        for k in [
            "rate_limit",
            "sandbox_tier",
            "max_data_size",
            "schemapin_mode",
            "approval_role",
        ] {
            assert!(is_known_requirement(k));
        }
    }

    #[test]
    fn unknown_requirements_are_opaque_and_bad_values_are_errors() {
        let p = parse(&[("geo_fence", "eu")]).unwrap();
        assert_eq!(p.opaque_keys, vec!["geo_fence".to_string()]);
        assert!(matches!(&p.conditions[0], Condition::Opaque { name, .. } if name == "geo_fence"));
        let errs = parse(&[
            ("rate_limit", "lots"),
            ("sandbox_tier", "moon"),
            ("max_data_size", "big"),
        ])
        .unwrap_err();
        assert_eq!(errs.len(), 3);
    }

    #[test]
    fn rate_limit_forms() {
        assert_eq!(
            rate_limit("100/hour/recipient").unwrap(),
            Condition::RateLimit {
                max: 100,
                period: RatePeriod::Hour,
                per: Some("recipient".into())
            }
        );
        assert_eq!(
            rate_limit("5 per second").unwrap(),
            Condition::RateLimit {
                max: 5,
                period: RatePeriod::Second,
                per: None
            }
        );
        for bad in [
            "",
            "0/minute",
            "x/minute",
            "5/fortnight",
            "5/minute/",
            "5/minute/a/b",
        ] {
            assert!(rate_limit(bad).is_err(), "{bad}");
        }
    }
}

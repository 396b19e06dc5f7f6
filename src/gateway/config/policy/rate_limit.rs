//! `rate-limit-inbound`: at most `requestsAllowed` requests per
//! `timeWindowMinutes` per user (the token's subject) or per client IP.
//!
//! Windows are fixed (aligned on multiples of the window since the epoch) and
//! counted in the store, so replicas sharing a Redis share the counts; a
//! refused request gets 429 with `Retry-After` = the seconds until its window
//! ends. Zuplo's `function` mode needs custom code and is refused at boot.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::super::ConfigError;
use super::{InboundPolicy, PolicyKind};
use crate::gateway::config::env::Env;

pub(crate) const POLICY_TYPE: &str = "rate-limit-inbound";
const EXPORT: &str = "RateLimitInboundPolicy";

pub(super) const KIND: PolicyKind = PolicyKind {
    policy_type: POLICY_TYPE,
    export: EXPORT,
    // The name Zuplo's rate limiter was exported under before; its options are the same.
    export_aliases: &["BasicRateLimitInboundPolicy"],
    build,
};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RateLimitOptions {
    #[serde(default)]
    rate_limit_by: Option<String>,
    requests_allowed: Number,
    time_window_minutes: Number,
}

/// A count written as a JSON number or (after `$env`) a string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Number {
    Number(u64),
    Text(String),
}

impl Number {
    fn positive(&self) -> Option<u64> {
        match self {
            Self::Number(n) => Some(*n),
            Self::Text(text) => text.trim().parse().ok(),
        }
        .filter(|n| *n > 0)
    }
}

/// What a request is counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitBy {
    User,
    Ip,
}

#[derive(Debug)]
pub(crate) struct RateLimit {
    pub(crate) name: String,
    pub(crate) by: LimitBy,
    pub(crate) allowed: u64,
    pub(crate) window_seconds: i64,
}

fn build(name: &str, options: Value, _env: &Env) -> Result<InboundPolicy, ConfigError> {
    let options: RateLimitOptions = super::super::typed_options(options, &format!("policy `{name}`"))?;
    let invalid = |option: &str, problem: String, fix: &str| ConfigError::InvalidOption {
        owner: format!("policy `{name}`"),
        option: option.to_owned(),
        problem,
        fix: fix.to_owned(),
    };
    let by = match options.rate_limit_by.as_deref().unwrap_or("user") {
        "user" => LimitBy::User,
        "ip" => LimitBy::Ip,
        other => {
            return Err(invalid(
                "rateLimitBy",
                format!("`{other}` is not supported by this gateway"),
                "use user (per signed-in user) or ip (per client address)",
            ));
        }
    };
    let allowed = options.requests_allowed.positive().ok_or_else(|| {
        invalid(
            "requestsAllowed",
            "is not a positive whole number".into(),
            "give the requests allowed per window, e.g. 100",
        )
    })?;
    let minutes = options.time_window_minutes.positive().filter(|m| *m <= 60 * 24 * 31).ok_or_else(|| {
        invalid(
            "timeWindowMinutes",
            "is not a whole number of minutes from 1 to 44640".into(),
            "give the window in minutes, e.g. 1",
        )
    })?;
    Ok(InboundPolicy::RateLimit(Arc::new(RateLimit {
        name: name.to_owned(),
        by,
        allowed,
        window_seconds: minutes as i64 * 60,
    })))
}

impl RateLimit {
    /// The window `now` falls in: its store key suffix and its end.
    pub(crate) fn window(&self, now: i64) -> (i64, i64) {
        let index = now.div_euclid(self.window_seconds);
        (index, (index + 1) * self.window_seconds)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{LimitBy, build};
    use crate::gateway::config::env::Env;
    use crate::gateway::config::policy::InboundPolicy;

    #[test]
    fn builds_and_validates() {
        let InboundPolicy::RateLimit(limit) =
            build("rl", json!({"rateLimitBy": "ip", "requestsAllowed": 2, "timeWindowMinutes": "1"}), &Env::default())
                .unwrap()
        else {
            panic!("not a rate limit")
        };
        assert_eq!((limit.by, limit.allowed, limit.window_seconds), (LimitBy::Ip, 2, 60));
        assert_eq!(limit.window(125), (2, 180));
        for (options, needle) in [
            (json!({"rateLimitBy": "function", "requestsAllowed": 2, "timeWindowMinutes": 1}), "rateLimitBy"),
            (json!({"requestsAllowed": 0, "timeWindowMinutes": 1}), "requestsAllowed"),
            (json!({"requestsAllowed": 1, "timeWindowMinutes": 1, "burst": 3}), "burst"),
        ] {
            let text = build("rl", options, &Env::default()).unwrap_err().to_string();
            assert!(text.contains("policy `rl`") && text.contains(needle) && text.contains("Fix:"), "{text}");
        }
    }
}

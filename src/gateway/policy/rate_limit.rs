//! `rate-limit-inbound`: at most `requestsAllowed` requests per
//! `timeWindowMinutes` per user (the token's subject), per client IP, or for
//! all callers together.
//!
//! Windows are fixed (aligned on multiples of the window since the epoch) and
//! counted in the store, so replicas sharing a Redis share the counts; a
//! refused request gets 429 with `Retry-After` = the seconds until its window
//! ends (`headerMode: none` leaves the header out). When the store cannot
//! count, the request passes (Zuplo's default, and the proxy keeps serving
//! through a Redis outage) unless `throwOnFailure` asks for a 503. Zuplo's
//! `async` mode (check beside the request) is accepted and counted before
//! forwarding like `strict`: the limit is exact either way. Zuplo's
//! `function` mode needs custom code and is refused at boot.
//!
//! `rateLimitBy: ip` counts the client's address as the trusted-proxy rules
//! give it (behind a TLS terminator, the address it saw, not its own), and an
//! IPv6 address by its /64: one host is routinely given a whole /64, so
//! counting each address apart would give it unlimited buckets.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::Value;

use super::{Built, InboundPolicy, PolicyKind, RequestCtx, Step, StepFuture, gateway_error};
use crate::gateway::client_address::counter_key;
use crate::gateway::config::env::Env;
use crate::gateway::config::error::{ConfigError, typed_options};
use crate::gateway::store::now;

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
    #[serde(default)]
    header_mode: Option<String>,
    #[serde(default)]
    throw_on_failure: Option<bool>,
    #[serde(default)]
    mode: Option<String>,
    /// Only meaningful with `rateLimitBy: function`, which is refused.
    #[serde(default)]
    identifier: Option<Value>,
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
    /// One count shared by every caller of the routes the policy is on.
    All,
}

#[derive(Debug)]
pub(crate) struct RateLimit {
    pub(crate) name: String,
    pub(crate) by: LimitBy,
    pub(crate) allowed: u64,
    pub(crate) window_seconds: i64,
    /// `Retry-After` on a 429 (`headerMode: retry-after`, the default).
    pub(crate) retry_after_header: bool,
    /// 503 when the store cannot count (`throwOnFailure`); else the request passes.
    pub(crate) fail_closed: bool,
}

fn build(name: &str, options: Value, _env: &Env) -> Result<Built, ConfigError> {
    Ok(Built::Inbound(Arc::new(rate_limit(name, options)?)))
}

fn rate_limit(name: &str, options: Value) -> Result<RateLimit, ConfigError> {
    let options: RateLimitOptions = typed_options(options, &format!("policy `{name}`"))?;
    let invalid = |option: &str, problem: String, fix: &str| ConfigError::InvalidOption {
        owner: format!("policy `{name}`"),
        option: option.to_owned(),
        problem,
        fix: fix.to_owned(),
    };
    let by = match options.rate_limit_by.as_deref().unwrap_or("user") {
        "user" => LimitBy::User,
        "ip" => LimitBy::Ip,
        "all" => LimitBy::All,
        other => {
            return Err(invalid(
                "rateLimitBy",
                format!(
                    "`{other}` is not supported by this gateway (a `function` runs custom code, which it does not)"
                ),
                "use user (per signed-in user), ip (per client address) or all (one count for every caller)",
            ));
        }
    };
    if options.identifier.is_some() {
        return Err(invalid(
            "identifier",
            "names a custom function, which this gateway does not run".into(),
            "remove identifier and choose rateLimitBy user, ip or all",
        ));
    }
    let retry_after_header = match options.header_mode.as_deref().unwrap_or("retry-after") {
        "retry-after" => true,
        "none" => false,
        other => {
            return Err(invalid(
                "headerMode",
                format!("`{other}` is not a header mode"),
                "use retry-after (the default) or none",
            ));
        }
    };
    if let Some(mode) = options.mode.as_deref()
        && !matches!(mode, "strict" | "async")
    {
        return Err(invalid("mode", format!("`{mode}` is not a mode"), "use strict (the default) or async"));
    }
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
    Ok(RateLimit {
        name: name.to_owned(),
        by,
        allowed,
        window_seconds: minutes as i64 * 60,
        retry_after_header,
        fail_closed: options.throw_on_failure.unwrap_or(false),
    })
}

impl InboundPolicy for RateLimit {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_request<'a>(&'a self, ctx: &'a RequestCtx<'a>) -> StepFuture<'a> {
        Box::pin(self.check(ctx))
    }
}

impl RateLimit {
    /// 429 (with `Retry-After` unless the policy turns it off) when the
    /// caller's window is used up. When the store cannot count: 503 if the
    /// policy says `throwOnFailure`, else the request passes (the proxy keeps
    /// serving through a store outage, as it does for token checks).
    async fn check(&self, ctx: &RequestCtx<'_>) -> Step {
        let who = match self.by {
            // A machine token's subject is its client id already; named as
            // such, so a person and a client can never share a count.
            LimitBy::User if ctx.claims.machine => format!("client:{}", ctx.claims.client_id),
            LimitBy::User => format!("user:{}", ctx.claims.sub),
            LimitBy::Ip => format!("ip:{}", counter_key(ctx.client_ip)),
            LimitBy::All => "all".to_owned(),
        };
        let now = now();
        let (window, window_end) = self.window(now);
        let key = format!("{}:{who}:{window}", self.name);
        let counted = ctx.store.run(move |store| store.count_request(&key, window_end, now)).await;
        let retry_after = |seconds: i64| HeaderValue::from_str(&seconds.max(1).to_string()).ok();
        match counted {
            Ok(count) if count <= self.allowed => Step::Continue,
            Ok(_) => {
                let mut response = gateway_error(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded; retry later");
                if self.retry_after_header
                    && let Some(value) = retry_after(window_end - now)
                {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                Step::Answer { response, outcome: "rate_limited" }
            }
            Err(err) if !self.fail_closed => {
                tracing::warn!(policy = %self.name, error = %err, "rate limit store unavailable; request let through");
                Step::Continue
            }
            Err(err) => {
                tracing::error!(policy = %self.name, error = %err, "rate limit store unavailable");
                let mut response = gateway_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable");
                if let Some(value) = retry_after(1) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                Step::Answer { response, outcome: "refused" }
            }
        }
    }

    /// The window `now` falls in: its store key suffix and its end.
    pub(crate) fn window(&self, now: i64) -> (i64, i64) {
        let index = now.div_euclid(self.window_seconds);
        (index, (index + 1) * self.window_seconds)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{LimitBy, rate_limit};

    #[test]
    fn builds_and_validates() {
        let limit =
            rate_limit("rl", json!({"rateLimitBy": "ip", "requestsAllowed": 2, "timeWindowMinutes": "1"})).unwrap();
        assert_eq!((limit.by, limit.allowed, limit.window_seconds), (LimitBy::Ip, 2, 60));
        assert_eq!((limit.retry_after_header, limit.fail_closed), (true, false), "Zuplo's defaults");
        assert_eq!(limit.window(125), (2, 180));
        let limit = rate_limit(
            "rl",
            json!({"rateLimitBy": "all", "requestsAllowed": 2, "timeWindowMinutes": 1,
                   "headerMode": "none", "throwOnFailure": true, "mode": "async"}),
        )
        .unwrap();
        assert_eq!((limit.by, limit.retry_after_header, limit.fail_closed), (LimitBy::All, false, true));
        for (options, needle) in [
            (json!({"rateLimitBy": "function", "requestsAllowed": 2, "timeWindowMinutes": 1}), "rateLimitBy"),
            (json!({"requestsAllowed": 0, "timeWindowMinutes": 1}), "requestsAllowed"),
            (json!({"requestsAllowed": 1, "timeWindowMinutes": 1, "burst": 3}), "burst"),
            (json!({"requestsAllowed": 1, "timeWindowMinutes": 1, "headerMode": "x-ratelimit"}), "headerMode"),
            (json!({"requestsAllowed": 1, "timeWindowMinutes": 1, "mode": "eventual"}), "mode"),
            (
                json!({"requestsAllowed": 1, "timeWindowMinutes": 1, "identifier": {"module": "m", "export": "default"}}),
                "identifier",
            ),
        ] {
            let text = rate_limit("rl", options).unwrap_err().to_string();
            assert!(text.contains("policy `rl`") && text.contains(needle) && text.contains("Fix:"), "{text}");
        }
    }
}

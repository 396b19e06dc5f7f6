//! Prometheus metrics, hand-rolled on atomics: requests by route and status, a
//! latency histogram by route, tokens issued by grant type, upstream errors by
//! route. Route labels are the configured paths (bounded by the config), never
//! raw request paths: this module also owns the label set and the mapping from
//! a request path to its label.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Status codes counted one by one (100–599); anything else counts as 0.
const STATUS_RANGE: std::ops::Range<u16> = 100..600;

/// The label every request outside the known set is counted under.
pub(crate) const OTHER: &str = "(other)";

/// Endpoints counted under their own path.
const FIXED_LABELS: [&str; 11] = [
    "/healthz",
    "/metrics",
    "/.well-known/oauth-authorization-server",
    "/.well-known/oauth-protected-resource",
    "/oauth/jwks",
    "/oauth/register",
    "/oauth/authorize",
    crate::contract::CALLBACK_PATH,
    "/oauth/consent",
    "/oauth/token",
    "/oauth/revoke",
];
const RESOURCE_METADATA_LABEL: &str = "/.well-known/oauth-protected-resource/mcp/{slug}";
/// `/mcp/{slug}` requests whose slug names no configured route.
pub(crate) const UNKNOWN_ROUTE_LABEL: &str = "/mcp/(unknown)";

/// Every label metrics can see: fixed when the state is built.
pub(crate) fn labels<'a>(route_paths: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    FIXED_LABELS.into_iter().chain([RESOURCE_METADATA_LABEL, UNKNOWN_ROUTE_LABEL]).chain(route_paths).collect()
}

/// The metrics label of a path: fixed endpoints by name, configured routes by
/// path (`route_path` looks a slug up), everything else lumped together, so
/// the label set stays bounded.
pub(crate) fn label<'a>(path: &str, route_path: impl FnOnce(&str) -> Option<&'a str>) -> &'a str {
    if let Some(fixed) = FIXED_LABELS.iter().find(|fixed| **fixed == path) {
        return fixed;
    }
    if let Some(slug) = path.strip_prefix("/mcp/") {
        return route_path(slug).unwrap_or(UNKNOWN_ROUTE_LABEL);
    }
    if path.starts_with("/.well-known/oauth-protected-resource/") {
        return RESOURCE_METADATA_LABEL;
    }
    OTHER
}

/// Counters of one label. All atomics: recording a request takes no lock, so
/// serving threads never wait on each other here.
struct RouteStats {
    statuses: Box<[AtomicU64]>,
    /// Requests per duration bucket, each counted once (not cumulative).
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
    upstream_errors: AtomicU64,
}

impl Default for RouteStats {
    fn default() -> Self {
        Self {
            statuses: STATUS_RANGE.map(|_| AtomicU64::new(0)).collect(),
            buckets: Default::default(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
            upstream_errors: AtomicU64::new(0),
        }
    }
}

/// The label set is fixed at boot (endpoints and configured routes), so the
/// map is read-only afterwards and needs no lock.
pub(crate) struct Metrics {
    routes: HashMap<String, RouteStats>,
    tokens_authorization_code: AtomicU64,
    tokens_refresh_token: AtomicU64,
    tokens_device_code: AtomicU64,
    /// MCP calls by (route, tool or prompt name, outcome). Only requests on
    /// routes with policies are parsed, so only those are counted here; the
    /// caller passes names a capability filter allows, and this map lumps
    /// every name past [`TOOL_LABEL_CAP`] under `(other)`, so a client
    /// inventing names cannot grow it.
    tools: std::sync::Mutex<ToolCounts>,
}

/// Tool-call counters nested route → name → outcome, so a call that counts
/// an existing row looks it up by `&str` without allocating its key.
#[derive(Default)]
struct ToolCounts {
    rows: usize,
    by_route: HashMap<String, HashMap<String, Outcomes>>,
}

/// Counts by outcome label (a handful per tool).
type Outcomes = Vec<(&'static str, u64)>;

/// Distinct tool labels kept before new names count as `(other)`.
pub(crate) const TOOL_LABEL_CAP: usize = 512;

impl Default for Metrics {
    fn default() -> Self {
        Self::new(std::iter::empty::<&str>())
    }
}

impl Metrics {
    pub(crate) fn new<'a>(labels: impl IntoIterator<Item = &'a str>) -> Self {
        let mut routes: HashMap<String, RouteStats> =
            labels.into_iter().map(|label| (label.to_owned(), RouteStats::default())).collect();
        routes.entry(OTHER.to_owned()).or_default();
        Self {
            routes,
            tokens_authorization_code: AtomicU64::new(0),
            tokens_refresh_token: AtomicU64::new(0),
            tokens_device_code: AtomicU64::new(0),
            tools: std::sync::Mutex::new(ToolCounts::default()),
        }
    }

    fn route(&self, label: &str) -> &RouteStats {
        self.routes.get(label).or_else(|| self.routes.get(OTHER)).expect("the (other) label exists from construction")
    }

    pub(crate) fn record(&self, label: &str, status: u16, elapsed: Duration) {
        let stats = self.route(label);
        if STATUS_RANGE.contains(&status) {
            stats.statuses[usize::from(status - STATUS_RANGE.start)].fetch_add(1, Ordering::Relaxed);
        }
        // One counter per request, the first bucket that holds it (the
        // exposition's cumulative counts are summed when rendered): every
        // increment is an atomic on a line the serving threads share.
        let seconds = elapsed.as_secs_f64();
        if let Some(index) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            stats.buckets[index].fetch_add(1, Ordering::Relaxed);
        }
        stats.count.fetch_add(1, Ordering::Relaxed);
        stats.sum_micros.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    pub(crate) fn upstream_error(&self, label: &str) {
        self.route(label).upstream_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// One access token issued; `grant_type` is the label: `authorization_code`,
    /// `refresh_token` or `device_code`.
    pub(crate) fn token_issued(&self, grant_type: &str) {
        let counter = match grant_type {
            "refresh_token" => &self.tokens_refresh_token,
            "device_code" => &self.tokens_device_code,
            _ => &self.tokens_authorization_code,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// One MCP call of `tool` on `route` with `outcome` (forwarded, hidden, …).
    pub(crate) fn tool_call(&self, route: &str, tool: &str, outcome: &'static str) {
        let mut tools = self.tools.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let ToolCounts { rows, by_route } = &mut *tools;
        let existing = by_route.get_mut(route).and_then(|names| names.get_mut(tool));
        if let Some(count) = existing.and_then(|outcomes| outcomes.iter_mut().find(|(name, _)| *name == outcome)) {
            count.1 += 1;
            return;
        }
        let tool = if *rows >= TOOL_LABEL_CAP { OTHER } else { tool };
        let outcomes = by_route.entry(route.to_owned()).or_default().entry(tool.to_owned()).or_default();
        match outcomes.iter_mut().find(|(name, _)| *name == outcome) {
            Some(count) => count.1 += 1,
            None => {
                outcomes.push((outcome, 1));
                *rows += 1;
            }
        }
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub(crate) fn render(&self) -> String {
        let mut labels: Vec<&String> = self.routes.keys().collect();
        labels.sort();
        let mut out = String::new();
        self.render_requests(&labels, &mut out);
        self.render_durations(&labels, &mut out);
        self.render_upstream_errors(&labels, &mut out);
        self.render_tokens(&mut out);
        self.render_tools(&mut out);
        out
    }

    fn render_tools(&self, out: &mut String) {
        out.push_str("# HELP cognigate_mcp_calls_total MCP tool calls and prompt gets by route, name and outcome (routes with policies).\n# TYPE cognigate_mcp_calls_total counter\n");
        let tools = self.tools.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut rows: Vec<(&String, &String, &str, u64)> = tools
            .by_route
            .iter()
            .flat_map(|(route, names)| {
                names.iter().flat_map(move |(tool, outcomes)| {
                    outcomes.iter().map(move |(outcome, count)| (route, tool, *outcome, *count))
                })
            })
            .collect();
        rows.sort_unstable();
        for (route, tool, outcome, count) in rows {
            let _ = writeln!(
                out,
                "cognigate_mcp_calls_total{{route=\"{}\",tool=\"{}\",outcome=\"{outcome}\"}} {count}",
                escape(route),
                escape(tool)
            );
        }
    }

    fn render_requests(&self, labels: &[&String], out: &mut String) {
        out.push_str("# HELP cognigate_requests_total HTTP requests by route and status.\n# TYPE cognigate_requests_total counter\n");
        for label in labels {
            let statuses = self.routes[*label].statuses.iter().zip(STATUS_RANGE);
            for (status, count) in statuses.map(|(c, s)| (s, c.load(Ordering::Relaxed))).filter(|(_, c)| *c > 0) {
                let _ = writeln!(
                    out,
                    "cognigate_requests_total{{route=\"{}\",status=\"{status}\"}} {count}",
                    escape(label)
                );
            }
        }
    }

    fn render_durations(&self, labels: &[&String], out: &mut String) {
        out.push_str("# HELP cognigate_request_duration_seconds Time to response headers by route.\n# TYPE cognigate_request_duration_seconds histogram\n");
        for label in labels {
            let stats = &self.routes[*label];
            let route = escape(label);
            let mut cumulative = 0;
            for (bucket, bound) in stats.buckets.iter().zip(BUCKETS) {
                cumulative += bucket.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "cognigate_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let count = stats.count.load(Ordering::Relaxed);
            let _ = writeln!(out, "cognigate_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}");
            let _ = writeln!(
                out,
                "cognigate_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                stats.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(out, "cognigate_request_duration_seconds_count{{route=\"{route}\"}} {count}");
        }
    }

    fn render_upstream_errors(&self, labels: &[&String], out: &mut String) {
        out.push_str("# HELP cognigate_upstream_errors_total Upstream connection failures and timeouts by route.\n# TYPE cognigate_upstream_errors_total counter\n");
        for label in labels {
            let errors = self.routes[*label].upstream_errors.load(Ordering::Relaxed);
            if errors > 0 || label.starts_with("/mcp/") {
                let _ = writeln!(out, "cognigate_upstream_errors_total{{route=\"{}\"}} {errors}", escape(label));
            }
        }
    }

    fn render_tokens(&self, out: &mut String) {
        out.push_str("# HELP cognigate_tokens_issued_total Access tokens issued by grant type.\n# TYPE cognigate_tokens_issued_total counter\n");
        let _ = writeln!(
            out,
            "cognigate_tokens_issued_total{{grant_type=\"authorization_code\"}} {}",
            self.tokens_authorization_code.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "cognigate_tokens_issued_total{{grant_type=\"refresh_token\"}} {}",
            self.tokens_refresh_token.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "cognigate_tokens_issued_total{{grant_type=\"device_code\"}} {}",
            self.tokens_device_code.load(Ordering::Relaxed)
        );
    }
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::{Metrics, OTHER, UNKNOWN_ROUTE_LABEL, label};
    use std::time::Duration;

    #[test]
    fn labels_stay_bounded() {
        let routes = |slug: &str| (slug == "echo").then_some("/mcp/echo");
        assert_eq!(label("/oauth/token", routes), "/oauth/token");
        assert_eq!(label("/mcp/echo", routes), "/mcp/echo");
        assert_eq!(label("/mcp/nope", routes), UNKNOWN_ROUTE_LABEL);
        assert_eq!(label("/.well-known/oauth-protected-resource/mcp/x", routes), super::RESOURCE_METADATA_LABEL);
        assert_eq!(label("/favicon.ico", routes), OTHER);
    }

    #[test]
    fn renders_counters_and_histogram() {
        let metrics = Metrics::new(["/mcp/echo"]);
        metrics.record("/mcp/unconfigured", 200, Duration::from_millis(1));
        metrics.record("/mcp/echo", 200, Duration::from_millis(3));
        metrics.record("/mcp/echo", 200, Duration::from_millis(30));
        metrics.record("/mcp/echo", 401, Duration::from_micros(100));
        metrics.upstream_error("/mcp/echo");
        metrics.token_issued("authorization_code");
        let text = metrics.render();
        assert!(text.contains("cognigate_requests_total{route=\"/mcp/echo\",status=\"200\"} 2"), "{text}");
        assert!(text.contains("cognigate_requests_total{route=\"/mcp/echo\",status=\"401\"} 1"));
        assert!(text.contains("cognigate_request_duration_seconds_bucket{route=\"/mcp/echo\",le=\"0.005\"} 2"));
        assert!(text.contains("cognigate_request_duration_seconds_bucket{route=\"/mcp/echo\",le=\"+Inf\"} 3"));
        assert!(text.contains("cognigate_upstream_errors_total{route=\"/mcp/echo\"} 1"));
        assert!(text.contains("cognigate_tokens_issued_total{grant_type=\"authorization_code\"} 1"));
        assert!(text.contains("cognigate_requests_total{route=\"(other)\",status=\"200\"} 1"), "{text}");
        assert!(!text.contains("/mcp/unconfigured"), "labels must stay bounded");
    }
}

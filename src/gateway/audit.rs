//! The audit log: one JSON line per MCP request, to stdout or a file
//! (`--audit-log`). A line says who (subject, e-mail, client id), where (the
//! route), what (the JSON-RPC method and the tool, prompt or resource named),
//! how it went (outcome, upstream status) and how long it took. It never holds
//! a token, a header value or an argument: only names the gateway itself
//! decides on.
//!
//! Lines are written whole under a lock, so concurrent requests never
//! interleave within a line; a failing write is reported on the log once and
//! does not fail the request.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

/// Where audit lines go.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AuditTarget {
    Stdout,
    File(PathBuf),
}

impl std::str::FromStr for AuditTarget {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim() {
            "" => Err("give `stdout` or a file path, e.g. --audit-log /var/log/cognigate/audit.jsonl".into()),
            "stdout" | "-" => Ok(Self::Stdout),
            path => Ok(Self::File(path.into())),
        }
    }
}

/// One MCP request as the audit log records it.
#[derive(Debug, Serialize)]
pub(crate) struct AuditLine<'a> {
    /// RFC 3339, UTC, milliseconds.
    pub(crate) time: String,
    pub(crate) subject: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) email: Option<&'a str>,
    pub(crate) client_id: &'a str,
    /// A machine client (client credentials) made the request, not a person.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) machine: bool,
    pub(crate) route: &'a str,
    /// The JSON-RPC method (the first of a batch); absent for GET / DELETE.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) method: Option<&'a str>,
    /// The tool or prompt name, or the resource URI, the request names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<&'a str>,
    /// `http_method` of the transport request (POST, GET, DELETE).
    pub(crate) http_method: &'a str,
    /// forwarded | hidden | rate_limited | header_mismatch | upstream_error | refused
    pub(crate) outcome: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) upstream_status: Option<u16>,
    pub(crate) status: u16,
    pub(crate) latency_ms: f64,
}

pub(crate) struct AuditLog {
    out: Mutex<Box<dyn Write + Send>>,
    failed: AtomicBool,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens the target (a file is created 0600 if missing and appended to).
    pub(crate) fn open(target: &AuditTarget) -> Result<Self, String> {
        let out: Box<dyn Write + Send> = match target {
            AuditTarget::Stdout => Box::new(std::io::stdout()),
            AuditTarget::File(path) => {
                let mut options = std::fs::OpenOptions::new();
                options.create(true).append(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                Box::new(options.open(path).map_err(|err| {
                    format!(
                        "cannot open the audit log {}: {err}. Fix: give a writable file path, or --audit-log stdout",
                        path.display()
                    )
                })?)
            }
        };
        Ok(Self { out: Mutex::new(out), failed: AtomicBool::new(false) })
    }

    pub(crate) fn write(&self, line: &AuditLine<'_>) {
        let Ok(mut text) = serde_json::to_vec(line) else { return };
        text.push(b'\n');
        let mut out = self.out.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Err(err) = out.write_all(&text).and_then(|()| out.flush())
            && !self.failed.swap(true, Ordering::Relaxed)
        {
            tracing::error!(error = %err, "cannot write the audit log; audit lines are being lost");
        }
    }
}

/// `2026-05-09T07:33:22.123Z` for `time`.
pub(crate) fn rfc3339_now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::{AuditLine, AuditLog, AuditTarget, rfc3339_now};

    #[test]
    fn writes_one_json_line_per_request() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&AuditTarget::File(path.clone())).unwrap();
        for name in ["echo", "add"] {
            log.write(&AuditLine {
                time: rfc3339_now(),
                subject: "sub",
                email: Some("a@example.com"),
                client_id: "c",
                machine: false,
                route: "/mcp/echo",
                method: Some("tools/call"),
                name: Some(name),
                http_method: "POST",
                outcome: "forwarded",
                upstream_status: Some(200),
                status: 200,
                latency_ms: 1.5,
            });
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["name"], "add");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn time_is_rfc3339_utc() {
        let time = rfc3339_now();
        assert_eq!(time.len(), 24, "{time}");
        assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");
        assert!("".parse::<AuditTarget>().is_err());
        assert_eq!("stdout".parse::<AuditTarget>().unwrap(), AuditTarget::Stdout);
    }
}

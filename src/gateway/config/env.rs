//! The environment the configuration is resolved against: the env file merged
//! with the process environment, and `$env(NAME)` substitution.
//!
//! Precedence: a variable set in the process environment wins over the same
//! name in the env file. That is the dotenv convention (and Docker Compose's),
//! so a deployment can override one value without editing the file that
//! `cognigate up` wrote. The env file is still the normal source.

use std::collections::HashMap;
use std::path::Path;

/// Variables the configuration may refer to with `$env(NAME)`.
#[derive(Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

// The values are secrets (client secret): never print them.
impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.vars.keys().collect();
        names.sort();
        f.debug_struct("Env").field("names", &names).finish()
    }
}

/// A line of the env file that is not `KEY=VALUE`, a comment or blank.
#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}: {problem}")]
pub struct EnvFileError {
    pub(crate) path: String,
    pub(crate) line: usize,
    pub(crate) problem: String,
}

impl Env {
    /// Only the given variables; tests use this so they never touch the process
    /// environment.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self { vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// The env file's variables with the process environment laid over them.
    pub(crate) fn from_file_and_process(file: Option<&Path>) -> Result<Self, EnvFileError> {
        let mut vars = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|err| EnvFileError {
                    path: path.display().to_string(),
                    line: 0,
                    problem: format!("cannot read the env file: {err}"),
                })?;
                crate::dotenv::parse(&text).map_err(|(line, problem)| EnvFileError {
                    path: path.display().to_string(),
                    line,
                    problem,
                })?
            }
            None => HashMap::new(),
        };
        vars.extend(std::env::vars());
        Ok(Self { vars })
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }
}

/// A `$env(NAME)` whose variable is not set.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct UnsetVar(pub(crate) String);

/// Replaces every `$env(NAME)` in `text` with the variable's value.
pub(crate) fn substitute(text: &str, env: &Env) -> Result<String, UnsetVar> {
    const OPEN: &str = "$env(";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        let after = &rest[start + OPEN.len()..];
        let Some(end) = after.find(')') else {
            // Not a reference (no closing parenthesis): keep it literally.
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = after[..end].trim();
        let value = env.get(name).ok_or_else(|| UnsetVar(name.to_owned()))?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{Env, UnsetVar, substitute};

    #[test]
    fn substitutes_every_reference() {
        let env = Env::from_pairs([("HOST", "h.example"), ("PORT", "8")]);
        assert_eq!(substitute("https://$env(HOST):$env(PORT)/x", &env).unwrap(), "https://h.example:8/x");
        assert_eq!(substitute("plain", &env).unwrap(), "plain");
        assert_eq!(substitute("$env(MISSING)", &env).unwrap_err(), UnsetVar("MISSING".into()));
    }

    #[test]
    fn process_environment_wins_over_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        // PATH is always set in the process environment.
        std::fs::write(&path, "PATH=/from-file\nCOGNIGATE_TEST_ONLY_IN_FILE=yes\n").unwrap();
        let env = Env::from_file_and_process(Some(&path)).unwrap();
        assert_ne!(env.get("PATH"), Some("/from-file"));
        assert_eq!(env.get("COGNIGATE_TEST_ONLY_IN_FILE"), Some("yes"));
    }

    #[test]
    fn debug_shows_names_not_values() {
        let env = Env::from_pairs([("COGNITO_CLIENT_SECRET", "s3cr3t-value")]);
        let shown = format!("{env:?}");
        assert!(shown.contains("COGNITO_CLIENT_SECRET"));
        assert!(!shown.contains("s3cr3t-value"));
    }
}

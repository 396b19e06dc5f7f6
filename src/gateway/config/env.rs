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
    pub path: String,
    pub line: usize,
    pub problem: String,
}

impl Env {
    /// Only the given variables; tests use this so they never touch the process
    /// environment.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self { vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// The env file's variables with the process environment laid over them.
    pub fn from_file_and_process(file: Option<&Path>) -> Result<Self, EnvFileError> {
        let mut vars = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|err| EnvFileError {
                    path: path.display().to_string(),
                    line: 0,
                    problem: format!("cannot read the env file: {err}"),
                })?;
                parse_dotenv(&text).map_err(|(line, problem)| EnvFileError {
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

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }
}

/// Parses dotenv syntax: `KEY=VALUE`, an optional `export ` prefix, values in
/// single quotes (literal), double quotes (`\n`, `\"`, `\\` escapes) or bare
/// (trailing ` # comment` removed, whitespace trimmed); `#` lines are comments.
pub(crate) fn parse_dotenv(text: &str) -> Result<HashMap<String, String>, (usize, String)> {
    let mut vars = HashMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((key, value)) = line.split_once('=') else {
            return Err((line_no, "expected KEY=VALUE".to_owned()));
        };
        let key = key.trim();
        let valid_key = !key.is_empty()
            && !key.starts_with(|c: char| c.is_ascii_digit())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_key {
            return Err((line_no, format!("`{key}` is not a valid variable name")));
        }
        let value = parse_value(value.trim()).map_err(|problem| (line_no, problem))?;
        vars.insert(key.to_owned(), value);
    }
    Ok(vars)
}

fn parse_value(value: &str) -> Result<String, String> {
    if let Some(rest) = value.strip_prefix('\'') {
        let Some(end) = rest.find('\'') else {
            return Err("unterminated single quote".to_owned());
        };
        return Ok(rest[..end].to_owned());
    }
    if let Some(rest) = value.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Ok(out),
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some(other) => out.push(other),
                    None => break,
                },
                other => out.push(other),
            }
        }
        return Err("unterminated double quote".to_owned());
    }
    let bare = match value.find(" #") {
        Some(at) => &value[..at],
        None => value,
    };
    Ok(bare.trim().to_owned())
}

/// A `$env(NAME)` whose variable is not set.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct UnsetVar(pub String);

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
    use super::{Env, UnsetVar, parse_dotenv, substitute};

    #[test]
    fn parses_dotenv_syntax() {
        let text = "# comment\n\nA=1\nexport B = two words \nC='single # kept'\nD=\"dq \\\"x\\\"\\n\"\nE=bare # trailing comment\nF=\n";
        let vars = parse_dotenv(text).unwrap();
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "two words");
        assert_eq!(vars["C"], "single # kept");
        assert_eq!(vars["D"], "dq \"x\"\n");
        assert_eq!(vars["E"], "bare");
        assert_eq!(vars["F"], "");
    }

    #[test]
    fn rejects_bad_lines_with_line_number() {
        assert_eq!(parse_dotenv("A=1\nnot a pair\n").unwrap_err().0, 2);
        assert_eq!(parse_dotenv("1A=x").unwrap_err().0, 1);
        assert!(parse_dotenv("A=\"open").unwrap_err().1.contains("unterminated"));
    }

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

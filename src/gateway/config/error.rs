//! The one error of the boot configuration, shared by the loader and every
//! policy's option checks: each variant names what is wrong (the file, the
//! policy or route, the option) and how to fix it, because it is the first
//! thing a new user reads.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::env::EnvFileError;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}. Fix: check --config-dir (it must hold policies.json and routes.oas.json)")]
    Read { path: String, source: std::io::Error },
    #[error("{path}:{line}:{column}: invalid JSON: {message}")]
    Json { path: String, line: usize, column: usize, message: String },
    #[error("{path}: {problem}")]
    Shape { path: String, problem: String },
    #[error("env file {0}")]
    EnvFile(#[from] EnvFileError),
    #[error(
        "{owner}, option `{option}`: $env({var}) is not set. Fix: add {var}=... to the env file (cognigate up writes it) or export {var}"
    )]
    UnsetEnv { owner: String, option: String, var: String },
    #[error("{owner}, option `{option}`: {problem}. Fix: {fix}")]
    InvalidOption { owner: String, option: String, problem: String, fix: String },
    #[error("route `{route}`: {problem}. Fix: {fix}")]
    Route { route: String, problem: String, fix: String },
    #[error("policy `{policy}`: {problem}. Fix: {fix}")]
    Policy { policy: String, problem: String, fix: String },
}

/// A policy's or handler's options as their typed shape (unknown fields are
/// refused by the shapes themselves).
pub(crate) fn typed_options<T: DeserializeOwned>(options: Value, owner: &str) -> Result<T, ConfigError> {
    serde_json::from_value(options).map_err(|err| ConfigError::InvalidOption {
        owner: owner.to_owned(),
        option: "handler.options".into(),
        problem: err.to_string(),
        fix: "check the option names against the policy type's documented options (they are case-sensitive)".into(),
    })
}

//! The env file as `doctor` reads it once: both the AWS checks (which pool and
//! client the gateway will use) and the file checks (does it match AWS) look
//! into it, so it sits below both.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::provision::render;

/// The env file as read once.
pub(super) struct EnvFile {
    pub(super) path: PathBuf,
    pub(super) values: std::result::Result<HashMap<String, String>, String>,
}

impl EnvFile {
    pub(super) fn read(path: &Path) -> Self {
        let values = match render::read_env_file(path) {
            Ok(Some(text)) => crate::dotenv::parse(&text).map_err(|(line, problem)| format!("line {line}: {problem}")),
            Ok(None) => Err("it does not exist".to_owned()),
            Err(e) => Err(e.to_string()),
        };
        Self { path: path.to_owned(), values }
    }

    pub(super) fn value(&self, key: &str) -> Option<&str> {
        self.values.as_ref().ok()?.get(key).map(String::as_str)
    }
}

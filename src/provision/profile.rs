//! Named AWS profiles as the aws CLI treats them: `--profile NAME` is what
//! the user asked for, so its credentials are used even when access keys sit
//! in the environment, and a name that neither AWS file defines is an error
//! naming it. `doctor` shows the same finding as a failed check.

use std::path::PathBuf;

/// Why `profile` cannot be used because no AWS file defines it, naming both
/// files looked in; `None` when one of them defines it.
pub(crate) fn missing(profile: &str) -> Option<String> {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    let config = std::env::var_os("AWS_CONFIG_FILE").map(PathBuf::from).unwrap_or_else(|| home.join(".aws/config"));
    let credentials = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".aws/credentials"));
    let defines = |path: &PathBuf, headers: &[String]| {
        std::fs::read_to_string(path).is_ok_and(|text| {
            text.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).any(|l| headers.contains(&l))
        })
    };
    let in_config = defines(&config, &[format!("[profile {profile}]"), format!("[{profile}]")]);
    let in_credentials = defines(&credentials, &[format!("[{profile}]")]);
    if in_config || in_credentials {
        return None;
    }
    Some(format!(
        "the AWS profile {profile:?} does not exist: neither {} nor {} defines it",
        config.display(),
        credentials.display()
    ))
}

/// How to fix a missing profile.
pub(crate) fn fix(profile: &str) -> String {
    format!(
        "create it with `aws configure --profile {profile}` (or `aws configure sso`), or pass a profile that \
         `aws configure list-profiles` lists"
    )
}

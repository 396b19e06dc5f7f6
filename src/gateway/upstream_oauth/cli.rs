//! The command-line ends of the operator's upstream commands (see
//! [`super::admin`]): `connections` and the upstream part of `revoke`.

use std::path::Path;
use std::process::ExitCode;

use super::admin::{Revoker, connections as list, disconnect};
use crate::gateway::store::StoreUrl;

fn open(store: &StoreUrl) -> Result<std::sync::Arc<dyn crate::gateway::store::Store>, String> {
    if let StoreUrl::Sqlite(path) = store
        && !path.exists()
    {
        return Err(format!(
            "no store at {}. Fix: pass the gateway's own --store (e.g. sqlite:/var/lib/cognigate/gateway.db)",
            path.display()
        ));
    }
    store.open().map_err(|err| err.to_string())
}

/// `revoke --sub/--user`: deletes the user's upstream grants (revoking them
/// upstream where possible). The text to append to `revoke`'s line, `None`
/// when the user had connected nothing.
pub(crate) fn revoke_upstream_grants(
    store: &StoreUrl,
    config_dir: &Path,
    env_file: Option<&Path>,
    subject: Option<&str>,
    user: Option<&str>,
) -> Result<Option<String>, String> {
    let store = open(store)?;
    if list(store.as_ref(), subject, user).map_err(|err| err.to_string())?.is_empty() {
        return Ok(None);
    }
    let revoker = Revoker::load(config_dir, env_file);
    let done = disconnect(store.as_ref(), subject, user, None, revoker.as_ref().map_err(String::as_str))
        .map_err(|err| err.to_string())?;
    for note in &done.notes {
        eprintln!("cognigate-gateway revoke: warning: {note}");
    }
    Ok(Some(format!(
        "; {} upstream grant(s) deleted ({} revoked at the upstream)",
        done.deleted, done.revoked_upstream
    )))
}

/// `connections --sub/--user [--disconnect UPSTREAM]`.
pub(crate) fn connections(
    store: &StoreUrl,
    config_dir: &Path,
    env_file: Option<&Path>,
    subject: Option<&str>,
    user: Option<&str>,
    upstream: Option<&str>,
) -> ExitCode {
    let store = match open(store) {
        Ok(store) => store,
        Err(err) => {
            eprintln!("cognigate-gateway connections: {err}");
            return ExitCode::from(1);
        }
    };
    let found = match list(store.as_ref(), subject, user) {
        Ok(found) => found,
        Err(err) => {
            eprintln!("cognigate-gateway connections: {err}");
            return ExitCode::from(1);
        }
    };
    let Some(upstream) = upstream else {
        if found.is_empty() {
            println!("no upstream connections");
        }
        for connection in &found {
            println!(
                "{}\tsub={}\tuser={}\tconnected={}\texpires={}\trefreshable={}\tscope={}",
                connection.upstream,
                connection.subject,
                connection.user.as_deref().unwrap_or("-"),
                rfc3339(connection.connected_at),
                connection.expires_at.map_or_else(|| "-".to_owned(), rfc3339),
                if connection.refreshable { "yes" } else { "no" },
                connection.scope.as_deref().unwrap_or("-"),
            );
        }
        return ExitCode::SUCCESS;
    };
    if !found.iter().any(|connection| connection.upstream == upstream) {
        eprintln!(
            "cognigate-gateway connections: warning: that user has no connection to `{upstream}`; nothing was disconnected. Run without --disconnect to list them"
        );
        return ExitCode::from(1);
    }
    let revoker = Revoker::load(config_dir, env_file);
    match disconnect(store.as_ref(), subject, user, Some(upstream), revoker.as_ref().map_err(String::as_str)) {
        Ok(done) => {
            for note in &done.notes {
                eprintln!("cognigate-gateway connections: warning: {note}");
            }
            println!(
                "disconnected: {} grant(s) at {upstream} deleted ({} revoked at the upstream)",
                done.deleted, done.revoked_upstream
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("cognigate-gateway connections: {err}");
            ExitCode::from(1)
        }
    }
}

fn rfc3339(unix: i64) -> String {
    std::time::UNIX_EPOCH
        .checked_add(std::time::Duration::from_secs(unix.max(0) as u64))
        .map(|time| humantime::format_rfc3339_seconds(time).to_string())
        .unwrap_or_else(|| unix.to_string())
}

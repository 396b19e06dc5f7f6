//! `cognigate gc`: destroy the managed stacks whose name starts with a prefix
//! once they are older than `--older-than`, or past their own `cognigate:ttl`.
//! Made for test suites that create a stack per run and leave it behind.
//!
//! Pools are listed (names only), filtered by prefix, described a few at a
//! time, judged ([`verdict`]), and torn down a few stacks at a time. Every
//! call waits for its turn under Cognito's per-category rate quotas (about
//! 15 requests/s; see `cognito::pace`), so hundreds of pools take longer,
//! not throttling errors; the SDK's retry with backoff absorbs what is left.
//! One failed teardown does not stop the others; the exit code reports it.

use std::time::{Duration, SystemTime};

use futures_util::{StreamExt, stream};
use serde::Serialize;
use serde_json::json;

use crate::provision::cli::{GcArgs, GlobalArgs, OutputFormat};
use crate::provision::cognito::discover::PoolState;
use crate::provision::cognito::{Cognito, resolve_region};
use crate::provision::error::{Error, Result};
use crate::provision::progress::Progress;
use crate::provision::settings::{self, SettingsFile};
use crate::provision::spec::tags;
use crate::provision::stdout::outln;
use crate::provision::teardown::{self, Guard, Removed};
use crate::provision::validate::InvalidValue;

/// DescribeUserPool calls in flight at once.
const DESCRIBE_CONCURRENCY: usize = 4;
/// Stacks torn down at once; each makes about five calls, mostly sequential.
const TEARDOWN_CONCURRENCY: usize = 3;

/// What gc decides for one pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Expired; the string says why ("created 3h ago, older than 2h").
    Remove(String),
    Skip(Skip),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Skip {
    NotManaged,
    TooYoung,
    /// Neither `--older-than` nor a `cognigate:ttl` tag: never expires.
    NoTtl,
    DeletionProtection,
    NoCreationTime,
    Error,
}

impl Skip {
    fn label(&self) -> &'static str {
        match self {
            Self::NotManaged => "not managed",
            Self::TooYoung => "too young",
            Self::NoTtl => "no ttl",
            Self::DeletionProtection => "deletion protection on",
            Self::NoCreationTime => "no creation time",
            Self::Error => "error",
        }
    }
}

/// When the stack was created: its `cognigate:created-at` tag, else the pool's CreationDate.
pub(crate) fn created_at(pool: &PoolState) -> Option<SystemTime> {
    pool.tags.get(tags::CREATED_AT).and_then(|t| humantime::parse_rfc3339_weak(t).ok()).or(pool.created)
}

/// The decision for one pool, at `now`. Unmanaged pools are never removed;
/// protected ones only with `force` (protection is then turned off first).
pub(crate) fn verdict(
    pool: &PoolState,
    now: SystemTime,
    older_than: Option<Duration>,
    force: bool,
) -> (Verdict, String) {
    if teardown::guards(pool, None).contains(&Guard::NotManaged) {
        return (Verdict::Skip(Skip::NotManaged), "no cognigate:managed=true tag".into());
    }
    let Some(created) = created_at(pool) else {
        return (Verdict::Skip(Skip::NoCreationTime), "neither a created-at tag nor a creation date".into());
    };
    let age = now.duration_since(created).unwrap_or_default();
    let ttl = pool.tags.get(tags::TTL).and_then(|t| humantime::parse_duration(t).ok());
    let by_age = older_than
        .filter(|limit| age > *limit)
        .map(|limit| format!("created {} ago, older than {}", short(age), short(limit)));
    let by_ttl = ttl.filter(|ttl| age > *ttl).map(|ttl| format!("ttl {} passed {} ago", short(ttl), short(age - ttl)));
    if older_than.is_none() && ttl.is_none() {
        return (
            Verdict::Skip(Skip::NoTtl),
            format!(
                "created {} ago, has no cognigate:ttl tag, and no --older-than was given, so gc never collects it; \
                 pass --older-than DURATION, or give it a ttl with `cognigate up --ttl DURATION`",
                short(age)
            ),
        );
    }
    let Some(why) = by_age.or(by_ttl) else {
        let mut detail = format!("created {} ago", short(age));
        if let Some(limit) = older_than {
            detail.push_str(&format!(", not older than {}", short(limit)));
        }
        if let Some(ttl) = ttl {
            detail.push_str(&format!(", ttl {}", short(ttl)));
        }
        return (Verdict::Skip(Skip::TooYoung), detail);
    };
    if pool.deletion_protection && !force {
        return (
            Verdict::Skip(Skip::DeletionProtection),
            format!("{why}; pass --force to turn protection off and remove it"),
        );
    }
    (Verdict::Remove(why.clone()), why)
}

/// A duration to the second, as humantime writes it ("2h 5m 3s").
fn short(duration: Duration) -> String {
    humantime::format_duration(Duration::from_secs(duration.as_secs())).to_string()
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    user_pool_id: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    stack: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<Skip>,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted: Option<Removed>,
}

impl Entry {
    fn new(id: &str, name: &str, pool: Option<&PoolState>, detail: String) -> Self {
        Self {
            user_pool_id: id.to_owned(),
            name: name.to_owned(),
            stack: pool.and_then(|p| p.stack_tag()).map(str::to_owned),
            reason: None,
            detail,
            deleted: None,
        }
    }
}

#[derive(Debug, Default)]
struct Report {
    removed: Vec<Entry>,
    would_remove: Vec<Entry>,
    skipped: Vec<Entry>,
    failed: Vec<Entry>,
}

pub(crate) async fn run(global: &GlobalArgs, args: &GcArgs) -> Result<()> {
    let prefix = args.prefix.trim();
    if prefix.is_empty() {
        return Err(Error::Usage("--prefix must not be empty: gc only touches pools whose name starts with it".into()));
    }
    let older_than = older_than(args)?;
    let cognito = connect(global).await?;

    let mut names: Vec<(String, String)> =
        cognito.all_pools().await?.into_iter().filter(|(_, name)| name.starts_with(prefix)).collect();
    names.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    let (mut report, doomed) = judge(&cognito, &names, older_than, args.force).await;
    if args.dry_run {
        report.would_remove = doomed.iter().map(|(p, why)| Entry::new(&p.id, &p.name, Some(p), why.clone())).collect();
    } else {
        remove(&cognito, global, &doomed, &mut report).await;
    }
    for list in [&mut report.removed, &mut report.would_remove, &mut report.skipped, &mut report.failed] {
        list.sort_by(|a, b| (&a.name, &a.user_pool_id).cmp(&(&b.name, &b.user_pool_id)));
    }

    match global.output {
        OutputFormat::Json => print_json(prefix, args, &names, &report),
        OutputFormat::Text if global.quiet => {}
        OutputFormat::Text => print_text(prefix, args.dry_run, &names, &report),
    }
    let errors = report.failed.len() + report.skipped.iter().filter(|e| e.reason == Some(Skip::Error)).count();
    if errors > 0 {
        return Err(Error::GcIncomplete { failed: errors });
    }
    Ok(())
}

fn older_than(args: &GcArgs) -> Result<Option<Duration>> {
    let Some(text) = args.older_than.as_deref() else { return Ok(None) };
    let duration = humantime::parse_duration(text.trim()).map_err(|_| InvalidValue {
        setting: "--older-than",
        value: text.to_owned(),
        problem: "not a duration; write a number and a unit, such as 30m, 2h or 7days".into(),
    })?;
    Ok(Some(duration))
}

/// Describes the candidate pools a few at a time and sorts them into the
/// ones to remove (with the reason) and the ones skipped (with why).
async fn judge(
    cognito: &Cognito,
    names: &[(String, String)],
    older_than: Option<Duration>,
    force: bool,
) -> (Report, Vec<(PoolState, String)>) {
    let now = SystemTime::now();
    let described: Vec<_> = stream::iter(names)
        .map(|(id, name)| async move { (id, name, cognito.describe_pool(id).await) })
        .buffer_unordered(DESCRIBE_CONCURRENCY)
        .collect()
        .await;
    let mut report = Report::default();
    let mut doomed: Vec<(PoolState, String)> = Vec::new();
    for (id, name, result) in described {
        match result {
            // Deleted meanwhile (another gc): nothing to do, nothing to say.
            Ok(None) => {}
            Err(e) => {
                report.skipped.push(Entry { reason: Some(Skip::Error), ..Entry::new(id, name, None, e.to_string()) })
            }
            Ok(Some(pool)) => match verdict(&pool, now, older_than, force) {
                (Verdict::Remove(why), _) => doomed.push((pool, why)),
                (Verdict::Skip(skip), detail) => {
                    report.skipped.push(Entry { reason: Some(skip), ..Entry::new(id, name, Some(&pool), detail) })
                }
            },
        }
    }
    (report, doomed)
}

/// Tears the doomed stacks down, a few at a time (Cognito's request quotas).
async fn remove(cognito: &Cognito, global: &GlobalArgs, doomed: &[(PoolState, String)], report: &mut Report) {
    let progress = Progress::new(global.output == OutputFormat::Text);
    let results: Vec<_> = stream::iter(doomed)
        .map(|(pool, why)| {
            let progress = &progress;
            async move { (pool, why, teardown::remove(cognito, pool, progress).await) }
        })
        .buffer_unordered(TEARDOWN_CONCURRENCY)
        .collect()
        .await;
    for (pool, why, result) in results {
        let entry = Entry::new(&pool.id, &pool.name, Some(pool), why.clone());
        match result {
            Ok(removed) => report.removed.push(Entry { deleted: Some(removed), ..entry }),
            Err(e) => report.failed.push(Entry { detail: format!("{why}; {e}"), ..entry }),
        }
    }
}

async fn connect(global: &GlobalArgs) -> Result<Cognito> {
    let file = SettingsFile::load(&global.config)?;
    let target = settings::aws_target(global, &file)?;
    let region = resolve_region(&target).await?;
    Cognito::connect(&target, &region).await
}

fn print_json(prefix: &str, args: &GcArgs, names: &[(String, String)], report: &Report) {
    let doc = json!({
        "prefix": prefix,
        "olderThan": args.older_than,
        "dryRun": args.dry_run,
        "matched": names.len(),
        "removed": report.removed,
        "wouldRemove": report.would_remove,
        "skipped": report.skipped,
        "failed": report.failed,
    });
    outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}

fn print_text(prefix: &str, dry_run: bool, names: &[(String, String)], report: &Report) {
    let acted = if dry_run {
        format!("{} would be removed", report.would_remove.len())
    } else {
        format!("{} removed", report.removed.len())
    };
    outln!(
        "gc: {} pool(s) named {prefix}*: {acted}, {} skipped, {} failed{}.",
        names.len(),
        report.skipped.len(),
        report.failed.len(),
        if dry_run { " (dry run: nothing was deleted)" } else { "" }
    );
    let rows = [("removed", &report.removed), ("would remove", &report.would_remove), ("failed", &report.failed)];
    for (label, entries) in rows {
        for e in entries {
            outln!("  {label:<12} {}  {}  {}", e.user_pool_id, e.name, e.detail);
        }
    }
    for e in &report.skipped {
        let reason = e.reason.as_ref().map_or("skipped", Skip::label);
        outln!("  {:<12} {}  {}  {reason}: {}", "skipped", e.user_pool_id, e.name, e.detail);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn pool(tags: &[(&str, String)], created: Option<SystemTime>, protected: bool) -> PoolState {
        PoolState {
            id: "us-east-1_abc".into(),
            name: "ci-demo".into(),
            tags: tags.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect::<HashMap<_, _>>(),
            domain: None,
            custom_domain: None,
            deletion_protection: protected,
            admin_only_signup: true,
            created,
            traits: Default::default(),
        }
    }

    fn managed(created_at: SystemTime, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
        let mut tags = vec![
            (tags::MANAGED, "true".to_owned()),
            (tags::STACK, "ci-demo".to_owned()),
            (tags::CREATED_AT, humantime::format_rfc3339_seconds(created_at).to_string()),
        ];
        tags.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
        tags
    }

    fn now() -> SystemTime {
        humantime::parse_rfc3339("2025-06-01T12:00:00Z").unwrap()
    }

    #[test]
    fn old_managed_stacks_are_removed_young_ones_kept() {
        let old = pool(&managed(now() - 3 * HOUR, &[]), None, false);
        let (verdict_, why) = verdict(&old, now(), Some(2 * HOUR), false);
        assert_eq!(verdict_, Verdict::Remove("created 3h ago, older than 2h".into()));
        assert_eq!(why, "created 3h ago, older than 2h");
        let young = pool(&managed(now() - HOUR, &[]), None, false);
        assert!(matches!(verdict(&young, now(), Some(2 * HOUR), false).0, Verdict::Skip(Skip::TooYoung)));
        // Without --older-than only a ttl expires a stack.
        assert!(matches!(verdict(&old, now(), None, false).0, Verdict::Skip(Skip::NoTtl)));
    }

    #[test]
    fn ttl_expires_a_stack_on_its_own() {
        let expired = pool(&managed(now() - 2 * HOUR, &[(tags::TTL, "1h".into())]), None, false);
        assert_eq!(verdict(&expired, now(), None, false).0, Verdict::Remove("ttl 1h passed 1h ago".into()));
        assert!(matches!(verdict(&expired, now(), Some(7 * 24 * HOUR), false).0, Verdict::Remove(_)));
        let alive = pool(&managed(now() - 2 * HOUR, &[(tags::TTL, "1day".into())]), None, false);
        let (v, detail) = verdict(&alive, now(), Some(24 * HOUR), false);
        assert_eq!(v, Verdict::Skip(Skip::TooYoung));
        assert!(detail.contains("ttl 1day"), "{detail}");
    }

    #[test]
    fn creation_date_is_the_fallback() {
        let tags = [(tags::MANAGED, "true".to_owned())];
        let old = pool(&tags, Some(now() - 5 * HOUR), false);
        assert!(matches!(verdict(&old, now(), Some(HOUR), false).0, Verdict::Remove(_)));
        let garbled = [(tags::MANAGED, "true".to_owned()), (tags::CREATED_AT, "yesterday".to_owned())];
        assert!(matches!(
            verdict(&pool(&garbled, Some(now()), false), now(), Some(HOUR), false).0,
            Verdict::Skip(Skip::TooYoung)
        ));
        assert_eq!(verdict(&pool(&tags, None, false), now(), Some(HOUR), false).0, Verdict::Skip(Skip::NoCreationTime));
        // A clock ahead of ours makes a stack young, not ancient.
        let future = pool(&managed(now() + HOUR, &[]), None, false);
        assert!(matches!(verdict(&future, now(), Some(HOUR), false).0, Verdict::Skip(Skip::TooYoung)));
    }

    #[test]
    fn unmanaged_pools_are_never_removed_protected_ones_only_with_force() {
        let stranger = pool(&[(tags::CREATED_AT, "2000-01-01T00:00:00Z".into())], Some(now() - 1000 * HOUR), false);
        assert_eq!(verdict(&stranger, now(), Some(HOUR), true).0, Verdict::Skip(Skip::NotManaged));
        let protected = pool(&managed(now() - 3 * HOUR, &[]), None, true);
        let (v, detail) = verdict(&protected, now(), Some(HOUR), false);
        assert_eq!(v, Verdict::Skip(Skip::DeletionProtection));
        assert!(detail.contains("--force"), "{detail}");
        assert!(matches!(verdict(&protected, now(), Some(HOUR), true).0, Verdict::Remove(_)));
    }
}

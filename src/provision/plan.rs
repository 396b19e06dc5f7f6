//! Desired vs actual → a plan: one entry per resource with its action and the
//! field-level changes, in the order they will be applied. Pure: no AWS calls,
//! so every decision here is unit-tested.

use std::fmt::Write as _;

use serde::Serialize;

use super::cognito::discover::{ClientState, PoolState};
use super::cognito::machine::ResourceServerState;
use super::cognito::ops::{ClientSettings, domain_taken};
use super::error::{Error, Result};
use super::spec::{DomainSpec, FeaturePlan, ManagedLogin, PoolTarget, ResourceServerSpec, StackSpec};
use super::state::Actual;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Action {
    Create,
    Update,
    /// Delete the old resource, wait until it is gone, create the new one.
    Replace,
    Delete,
    /// Exists and matches; nothing to do.
    Keep,
    /// Exists and is still being provisioned by Cognito; only wait for it.
    Wait,
}

impl Action {
    pub(crate) fn changes_aws(self) -> bool {
        matches!(self, Self::Create | Self::Update | Self::Replace | Self::Delete)
    }

    fn symbol(self) -> &'static str {
        match self {
            Self::Create => "+",
            Self::Update => "~",
            Self::Replace => "-/+",
            Self::Delete => "-",
            Self::Keep | Self::Wait => " ",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct FieldChange {
    pub(crate) field: &'static str,
    pub(crate) before: String,
    pub(crate) after: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Resource {
    UserPool,
    Domain,
    AppClient,
    Group,
    /// The resource server holding the machine clients' scopes.
    #[serde(rename = "resource_server")]
    MachineScopes,
}

impl Resource {
    fn label(self) -> &'static str {
        match self {
            Self::UserPool => "user pool",
            Self::Domain => "domain",
            Self::AppClient => "app client",
            Self::Group => "group",
            Self::MachineScopes => "resource server",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Step {
    pub(crate) resource: Resource,
    /// Name or id the user recognises (pool id once known, domain, client name).
    pub(crate) name: String,
    pub(crate) action: Action,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) changes: Vec<FieldChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Plan {
    pub(crate) steps: Vec<Step>,
    /// What `apply` needs beyond the steps: old domain to remove on replace.
    #[serde(skip)]
    pub(crate) old_domain: Option<String>,
    /// The desired client settings, computed once.
    #[serde(skip)]
    pub(crate) client_settings: ClientSettings,
    /// Callback URLs the app client has registered that this plan drops: the
    /// users of a gateway there could no longer sign in, so `up` applies it
    /// unattended only with `--prune-callbacks`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) removed_callbacks: Vec<String>,
}

impl Plan {
    pub(crate) fn has_changes(&self) -> bool {
        self.steps.iter().any(|s| s.action.changes_aws())
    }

    pub(crate) fn step(&self, resource: Resource) -> Option<&Step> {
        self.steps.iter().find(|s| s.resource == resource)
    }

    /// A diff-like rendering; secrets never appear in plans.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        for step in &self.steps {
            let what = match step.action {
                Action::Create => "will be created",
                Action::Update => "will be updated in place",
                Action::Replace => "will be replaced",
                Action::Delete => "will be deleted",
                Action::Keep => "no change",
                Action::Wait => "exists, still provisioning: will wait",
            };
            let _ = writeln!(out, "{:>3} {} {}: {what}", step.action.symbol(), step.resource.label(), step.name);
            if let Some(reason) = &step.reason {
                let _ = writeln!(out, "      # {reason}");
            }
            for change in &step.changes {
                // A setting of something new has no "before".
                if change.before.is_empty() {
                    let _ = writeln!(out, "      {}: {}", change.field, change.after);
                } else {
                    let _ = writeln!(out, "      {}: {} → {}", change.field, change.before, change.after);
                }
            }
            if step.resource == Resource::AppClient {
                for url in &self.removed_callbacks {
                    let _ = writeln!(
                        out,
                        "      - callback URL removed: {url} (its gateway's users can no longer sign in)"
                    );
                }
            }
        }
        let _ = writeln!(out, "Callback URLs: {}", list(&self.client_settings.callback_urls));
        if !self.removed_callbacks.is_empty() {
            let _ = writeln!(
                out,
                "Removing a registered callback URL needs --prune-callbacks with --yes (or in CI); to keep it, \
                 list its gateway with --gateway-url."
            );
        }
        let counts = |a: Action| self.steps.iter().filter(|s| s.action == a).count();
        if self.has_changes() {
            let _ = writeln!(
                out,
                "Plan: {} to create, {} to update, {} to replace, {} to delete.",
                counts(Action::Create),
                counts(Action::Update),
                counts(Action::Replace),
                counts(Action::Delete)
            );
        } else {
            let _ = writeln!(out, "No changes: the stack matches the desired state.");
        }
        out
    }
}

fn list(values: &[String]) -> String {
    format!("[{}]", values.join(", "))
}

/// Compares as sets: Cognito does not promise to keep list order.
fn same_set(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

pub(crate) fn plan(spec: &StackSpec, actual: &Actual) -> Result<Plan> {
    let desired_client = ClientSettings::desired(spec);
    let mut steps = Vec::with_capacity(3);

    let pool = actual.pool.as_ref();
    steps.push(plan_pool(spec, pool)?);
    let (domain_step, old_domain) = plan_domain(spec, actual, pool)?;
    steps.push(domain_step);
    steps.push(plan_client(spec, actual.client.as_ref(), &desired_client)?);
    steps.extend(plan_groups(spec, actual.groups.as_deref()));
    if let Some(desired) = &spec.resource_server {
        steps.push(plan_resource_server(desired, actual.resource_server.as_ref()));
    }
    let removed_callbacks = actual
        .client
        .as_ref()
        .map(|c| {
            let registered = c.described.callback_urls();
            registered.iter().filter(|url| !desired_client.callback_urls.contains(url)).cloned().collect()
        })
        .unwrap_or_default();

    Ok(Plan { steps, old_domain, client_settings: desired_client, removed_callbacks })
}

/// The machine clients' resource server: created with every scope, or given
/// the scopes it lacks (new routes). Scopes it has beyond them are kept: a
/// machine client may hold one, and dropping it is not `up`'s call.
fn plan_resource_server(desired: &ResourceServerSpec, actual: Option<&ResourceServerState>) -> Step {
    let names = |scopes: &[(String, String)]| scopes.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    let step = |action, changes| Step {
        resource: Resource::MachineScopes,
        name: desired.identifier.clone(),
        action,
        changes,
        reason: None,
    };
    let Some(actual) = actual else {
        let scopes = FieldChange { field: "scopes", before: String::new(), after: list(&names(&desired.scopes)) };
        return step(Action::Create, vec![scopes]);
    };
    let mut changes = Vec::new();
    let merged = merged_resource_server(desired, actual);
    if merged.scopes.len() != actual.scopes.len() {
        changes.push(FieldChange {
            field: "scopes",
            before: list(&names(&actual.scopes)),
            after: list(&names(&merged.scopes)),
        });
    }
    if actual.name != desired.name {
        changes.push(FieldChange { field: "name", before: actual.name.clone(), after: desired.name.clone() });
    }
    step(if changes.is_empty() { Action::Keep } else { Action::Update }, changes)
}

/// What an update sends: the desired name, the server's scopes and the
/// desired ones it lacks (`UpdateResourceServer` drops what it is not sent).
pub(crate) fn merged_resource_server(desired: &ResourceServerSpec, actual: &ResourceServerState) -> ResourceServerSpec {
    let mut scopes = actual.scopes.clone();
    for scope in &desired.scopes {
        if !scopes.iter().any(|(name, _)| *name == scope.0) {
            scopes.push(scope.clone());
        }
    }
    ResourceServerSpec { identifier: desired.identifier.clone(), name: desired.name.clone(), scopes }
}

/// How the sign-up setting reads in a plan.
fn signup(admin_only: bool) -> String {
    if admin_only { "admin only".into() } else { "self sign-up (anyone)".into() }
}

fn plan_pool(spec: &StackSpec, pool: Option<&PoolState>) -> Result<Step> {
    let admin_only = !spec.self_signup;
    let adopted = matches!(spec.pool, PoolTarget::Adopted(_));
    Ok(match (pool, &spec.pool) {
        (Some(p), _) => {
            check_feature_plan(spec, p)?;
            let mut changes = Vec::new();
            // A pool cognigate did not create keeps its sign-up setting
            // unless one was asked for: adopting must not lock its users out.
            let owns_signup = !adopted || spec.signup_given;
            if owns_signup && p.admin_only_signup != admin_only {
                changes.push(FieldChange {
                    field: "sign_up",
                    before: signup(p.admin_only_signup),
                    after: signup(admin_only),
                });
            }
            // Self sign-up confirms users by an e-mailed code.
            if owns_signup && spec.self_signup && !p.traits.verifies_email {
                changes.push(FieldChange {
                    field: "auto_verified_attributes",
                    before: "[]".into(),
                    after: "[email]".into(),
                });
            }
            if let Some(current) = p.traits.tier.filter(|t| spec.feature_plan_given && *t != spec.feature_plan) {
                changes.push(FieldChange {
                    field: "feature_plan",
                    before: current.label().into(),
                    after: spec.feature_plan.label().into(),
                });
            }
            let reason = match (adopted, changes.is_empty()) {
                (true, _) => Some("adopted with --user-pool-id; left untagged".into()),
                (false, false) => Some("every other setting of the pool is kept".into()),
                (false, true) => None,
            };
            Step {
                resource: Resource::UserPool,
                name: p.id.clone(),
                action: if changes.is_empty() { Action::Keep } else { Action::Update },
                changes,
                reason,
            }
        }
        (None, PoolTarget::Managed) => Step {
            resource: Resource::UserPool,
            name: spec.pool_name().to_owned(),
            action: Action::Create,
            changes: vec![
                FieldChange { field: "sign_up", before: String::new(), after: signup(admin_only) },
                FieldChange { field: "feature_plan", before: String::new(), after: spec.feature_plan.label().into() },
            ],
            reason: None,
        },
        (None, PoolTarget::Adopted(id)) => {
            return Err(Error::PoolNotFound { id: id.to_string(), region: spec.region.to_string() });
        }
    })
}

/// Managed login (v2) needs a plan other than Lite; a pool on Lite that is
/// not being moved off it is refused here, before anything changes, rather
/// than by Cognito half way through (FeatureUnavailableInTierException).
fn check_feature_plan(spec: &StackSpec, pool: &PoolState) -> Result<()> {
    let target = if spec.feature_plan_given { Some(spec.feature_plan) } else { pool.traits.tier };
    if spec.managed_login == ManagedLogin::V2 && target == Some(FeaturePlan::Lite) {
        return Err(Error::Usage(format!(
            "user pool {} is on the Lite feature plan, which has no managed login (--managed-login v2); pass \
             --feature-plan essentials to move it (billed per monthly active user at the Essentials rate), or keep \
             the classic hosted UI with --managed-login v1",
            pool.id
        )));
    }
    Ok(())
}

/// One step per listed group (created when missing), and the groups the pool
/// has beyond them, which are kept: cognigate never deletes a group.
fn plan_groups(spec: &StackSpec, existing: Option<&[String]>) -> Vec<Step> {
    let existing = existing.unwrap_or_default();
    let step = |name: &str, action, reason: Option<&str>| Step {
        resource: Resource::Group,
        name: name.to_owned(),
        action,
        changes: vec![],
        reason: reason.map(str::to_owned),
    };
    let listed = spec.groups.iter().map(|g| {
        let action = if existing.contains(g) { Action::Keep } else { Action::Create };
        step(g, action, None)
    });
    let kept = existing
        .iter()
        .filter(|g| !spec.groups.contains(g))
        .map(|g| step(g, Action::Keep, Some("not listed in --group / groups; kept (cognigate never deletes groups)")));
    listed.chain(kept).collect()
}

fn plan_domain(spec: &StackSpec, actual: &Actual, pool: Option<&PoolState>) -> Result<(Step, Option<String>)> {
    let name = spec.domain.api_name().to_owned();
    let step = |action, reason: Option<String>, changes| Step {
        resource: Resource::Domain,
        name: name.clone(),
        action,
        changes,
        reason,
    };

    if let Some(existing) = &actual.domain {
        let ours = pool.is_some_and(|p| p.id == existing.pool_id);
        if !ours {
            return Err(domain_taken(&name, existing.pool_id.clone()).into());
        }
    }
    // The pool's current domain of the same kind, if it differs: a replace.
    let current = pool.and_then(|p| match spec.domain {
        DomainSpec::Prefix(_) => p.domain.clone(),
        DomainSpec::Custom { .. } => p.custom_domain.clone(),
    });
    if let Some(current) = current.filter(|c| *c != name) {
        let change = FieldChange { field: "domain", before: current.clone(), after: name.clone() };
        let reason = Some("a pool has one domain of each kind; the old one is deleted first".into());
        return Ok((step(Action::Replace, reason, vec![change]), Some(current)));
    }
    let version = spec.managed_login.version();
    let Some(existing) = &actual.domain else {
        let change = FieldChange { field: "managed_login_version", before: String::new(), after: version.to_string() };
        return Ok((step(Action::Create, None, vec![change]), None));
    };
    let mut changes = Vec::new();
    if let DomainSpec::Custom { certificate_arn, .. } = &spec.domain
        && existing.certificate_arn.as_deref() != Some(certificate_arn.as_str())
    {
        changes.push(FieldChange {
            field: "certificate_arn",
            before: existing.certificate_arn.clone().unwrap_or_else(|| "(none)".into()),
            after: certificate_arn.clone(),
        });
    }
    // An endpoint that does not report the version (an emulator) is not drift.
    if let Some(current) = existing.managed_login_version.filter(|v| *v != version) {
        changes.push(FieldChange {
            field: "managed_login_version",
            before: current.to_string(),
            after: version.to_string(),
        });
    }
    if !changes.is_empty() {
        return Ok((step(Action::Update, None, changes), None));
    }
    Ok(match existing.status.as_str() {
        "ACTIVE" => (step(Action::Keep, None, vec![]), None),
        "FAILED" => (step(Action::Replace, Some("Cognito reports it FAILED".into()), vec![]), Some(name.clone())),
        other => (step(Action::Wait, Some(format!("status {other}")), vec![]), None),
    })
}

fn plan_client(spec: &StackSpec, client: Option<&ClientState>, desired: &ClientSettings) -> Result<Step> {
    let Some(client) = client else {
        return Ok(Step {
            resource: Resource::AppClient,
            name: spec.client_name(),
            action: Action::Create,
            changes: vec![],
            reason: None,
        });
    };
    if client.secret.is_none() {
        return Err(Error::ClientWithoutSecret { name: client.name.clone(), id: client.id.clone() });
    }
    let actual = ClientSettings::actual(client);
    let mut changes = Vec::new();
    let mut compare = |field, before: &[String], after: &[String]| {
        if !same_set(before, after) {
            changes.push(FieldChange { field, before: list(before), after: list(after) });
        }
    };
    compare("callback_urls", &actual.callback_urls, &desired.callback_urls);
    compare("allowed_oauth_flows", &actual.oauth_flows, &desired.oauth_flows);
    compare("allowed_oauth_scopes", &actual.oauth_scopes, &desired.oauth_scopes);
    compare("supported_identity_providers", &actual.identity_providers, &desired.identity_providers);
    if actual.oauth_flows_user_pool_client != desired.oauth_flows_user_pool_client {
        changes.push(FieldChange {
            field: "allowed_oauth_flows_user_pool_client",
            before: actual.oauth_flows_user_pool_client.to_string(),
            after: desired.oauth_flows_user_pool_client.to_string(),
        });
    }
    let action = if changes.is_empty() { Action::Keep } else { Action::Update };
    Ok(Step {
        resource: Resource::AppClient,
        name: format!("{} ({})", client.name, client.id),
        action,
        changes,
        reason: None,
    })
}

/// Fixtures shared by unit tests of the provisioning path.
#[cfg(test)]
pub(crate) mod tests_support {
    use std::path::PathBuf;

    use crate::provision::spec::{DomainSpec, OutputFiles, PoolTarget, StackSpec};
    use crate::provision::validate::{Region, StackName};

    pub(crate) const LOCALHOST_CALLBACK: &str = "http://localhost:9000/oauth/callback";

    pub(crate) fn spec() -> StackSpec {
        StackSpec {
            stack: StackName::parse("demo").unwrap(),
            region: Region::parse("us-east-1").unwrap(),
            pool: PoolTarget::Managed,
            domain: DomainSpec::Prefix("demo-prefix".into()),
            domain_is_derived: false,
            callback_urls: vec!["https://gw.example.com/oauth/callback".into(), LOCALHOST_CALLBACK.into()],
            gateway_urls: vec!["https://gw.example.com".into()],
            callback_list_given: true,
            localhost_callback: true,
            extra_callback_urls: vec![],
            ttl: None,
            deletion_protection: false,
            self_signup: false,
            signup_given: false,
            feature_plan: crate::provision::spec::FeaturePlan::Lite,
            feature_plan_given: false,
            groups: vec![],
            managed_login: crate::provision::spec::ManagedLogin::V1,
            files: OutputFiles {
                env_file: PathBuf::from(".env"),
                policies_file: PathBuf::from("config/policies.json"),
                policy_name: "p".into(),
                routes_file: PathBuf::from("config/routes.oas.json"),
            },
            resource_server_id: None,
            resource_server_name: None,
            resource_server: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aws_sdk_cognitoidentityprovider::types::{OAuthFlowType, UserPoolClientType};

    use super::tests_support::LOCALHOST_CALLBACK;
    use super::*;
    use crate::provision::cognito::discover::DomainState;
    use crate::secret::Secret;

    use super::tests_support::spec;

    fn pool(domain: Option<&str>) -> PoolState {
        PoolState {
            id: "us-east-1_abc".into(),
            name: "demo".into(),
            tags: HashMap::new(),
            domain: domain.map(str::to_owned),
            custom_domain: None,
            deletion_protection: false,
            admin_only_signup: true,
            created: None,
            traits: Default::default(),
        }
    }

    fn domain(name: &str, pool: &str, status: &str) -> DomainState {
        DomainState {
            domain: name.into(),
            pool_id: pool.into(),
            status: status.into(),
            certificate_arn: None,
            cloudfront: None,
            managed_login_version: None,
        }
    }

    fn client(callbacks: &[&str], secret: bool) -> ClientState {
        let described = UserPoolClientType::builder()
            .client_id("client1")
            .client_name("demo-gateway")
            .set_client_secret(secret.then(|| "s3cret".to_owned()))
            .set_callback_urls(Some(callbacks.iter().map(|s| (*s).to_owned()).collect()))
            .allowed_o_auth_flows(OAuthFlowType::Code)
            .set_allowed_o_auth_scopes(Some(vec!["openid".into(), "profile".into(), "email".into()]))
            .supported_identity_providers("COGNITO")
            .allowed_o_auth_flows_user_pool_client(true)
            .build();
        ClientState {
            id: "client1".into(),
            name: "demo-gateway".into(),
            secret: secret.then(|| Secret::new("s3cret")),
            created: None,
            described,
        }
    }

    #[test]
    fn empty_account_creates_everything() {
        let plan = plan(&spec(), &Actual::default()).unwrap();
        let actions: Vec<Action> = plan.steps.iter().map(|s| s.action).collect();
        assert_eq!(actions, [Action::Create, Action::Create, Action::Create]);
        assert!(plan.render().contains("Plan: 3 to create, 0 to update"));
    }

    #[test]
    fn matching_stack_is_a_no_op() {
        let s = spec();
        let actual = Actual {
            pool: Some(pool(Some("demo-prefix"))),
            domain: Some(domain("demo-prefix", "us-east-1_abc", "ACTIVE")),
            client: Some(client(&[LOCALHOST_CALLBACK, "https://gw.example.com/oauth/callback"], true)),
            ..Actual::default()
        };
        let plan = plan(&s, &actual).unwrap();
        assert!(!plan.has_changes(), "{}", plan.render());
        assert!(plan.render().contains("No changes"));
    }

    #[test]
    fn callback_drift_is_an_update_with_before_and_after() {
        let actual = Actual {
            pool: Some(pool(Some("demo-prefix"))),
            domain: Some(domain("demo-prefix", "us-east-1_abc", "ACTIVE")),
            client: Some(client(&["https://evil.example.com/cb"], true)),
            ..Actual::default()
        };
        let plan = plan(&spec(), &actual).unwrap();
        let step = plan.step(Resource::AppClient).unwrap();
        assert_eq!(step.action, Action::Update);
        assert_eq!(step.changes.len(), 1);
        assert_eq!(step.changes[0].field, "callback_urls");
        assert!(step.changes[0].before.contains("evil"));
        assert!(plan.render().contains("callback_urls: [https://evil.example.com/cb] → ["));
    }

    #[test]
    fn client_without_secret_is_refused() {
        let actual =
            Actual { pool: Some(pool(None)), client: Some(client(&[LOCALHOST_CALLBACK], false)), ..Actual::default() };
        let err = plan(&spec(), &actual).unwrap_err().to_string();
        assert!(err.contains("GenerateSecret is fixed at creation"), "{err}");
    }

    #[test]
    fn domain_of_another_pool_is_refused_with_a_suggestion() {
        let actual = Actual {
            pool: Some(pool(None)),
            domain: Some(domain("demo-prefix", "us-east-1_other", "ACTIVE")),
            ..Actual::default()
        };
        let err = plan(&spec(), &actual).unwrap_err().to_string();
        assert!(err.contains("already taken") && err.contains("--domain-prefix demo-prefix-"), "{err}");
    }

    #[test]
    fn changed_prefix_is_a_replace() {
        let actual = Actual { pool: Some(pool(Some("old-prefix"))), ..Actual::default() };
        let plan = plan(&spec(), &actual).unwrap();
        let step = plan.step(Resource::Domain).unwrap();
        assert_eq!(step.action, Action::Replace);
        assert_eq!(plan.old_domain.as_deref(), Some("old-prefix"));
    }

    #[test]
    fn creating_domain_is_waited_for() {
        let actual = Actual {
            pool: Some(pool(Some("demo-prefix"))),
            domain: Some(domain("demo-prefix", "us-east-1_abc", "CREATING")),
            ..Actual::default()
        };
        assert_eq!(plan(&spec(), &actual).unwrap().step(Resource::Domain).unwrap().action, Action::Wait);
    }

    #[test]
    fn plans_never_show_secrets() {
        let actual = Actual {
            pool: Some(pool(None)),
            client: Some(client(&["https://x.example.com/cb"], true)),
            ..Actual::default()
        };
        let plan = plan(&spec(), &actual).unwrap();
        assert!(!plan.render().contains("s3cret"));
        assert!(!serde_json::to_string(&plan).unwrap().contains("s3cret"));
    }

    fn server(scopes: &[&str]) -> ResourceServerState {
        ResourceServerState {
            identifier: "https://gw.example.com".into(),
            name: "demo-gateway".into(),
            scopes: scopes.iter().map(|s| ((*s).to_owned(), format!("about {s}"))).collect(),
        }
    }

    #[test]
    fn the_resource_server_is_created_given_new_route_scopes_and_keeps_the_ones_it_has() {
        let mut spec = spec();
        let desired = ResourceServerSpec::new("https://gw.example.com".into(), "demo-gateway".into(), &["docs".into()]);
        spec.resource_server = Some(desired.clone());
        let step = |actual: Option<ResourceServerState>| {
            let actual = Actual { resource_server: actual, ..Actual::default() };
            plan(&spec, &actual).unwrap().step(Resource::MachineScopes).cloned().unwrap()
        };

        let created = step(None);
        assert_eq!(created.action, Action::Create);
        assert_eq!(created.changes[0].after, "[mcp:all, mcp:route.docs]");
        assert_eq!(step(Some(server(&["mcp:all", "mcp:route.docs"]))).action, Action::Keep);

        // A route the server lacks: added; a scope it has beyond the routes: kept.
        let updated = step(Some(server(&["mcp:all", "mcp:route.old"])));
        assert_eq!(updated.action, Action::Update);
        assert_eq!(updated.changes[0].after, "[mcp:all, mcp:route.old, mcp:route.docs]");
        let merged = merged_resource_server(&desired, &server(&["mcp:all", "mcp:route.old"]));
        assert_eq!(merged.scopes[1], ("mcp:route.old".to_owned(), "about mcp:route.old".to_owned()));

        let mut renamed = server(&["mcp:all", "mcp:route.docs"]);
        renamed.name = "someone-else".into();
        let step = step(Some(renamed));
        assert_eq!((step.action, step.changes[0].field), (Action::Update, "name"));

        // Without a desired resource server (commands other than up and plan), no step.
        spec.resource_server = None;
        assert!(plan(&spec, &Actual::default()).unwrap().step(Resource::MachineScopes).is_none());
    }
}

//! `cognigate export terraform`: the live stack as Terraform, for a team that
//! moves it into Terraform later. One resource per Cognito object, each with
//! the settings read from AWS and an `import` block naming its live id, so the
//! first `terraform apply` adopts the stack instead of creating a second one.
//!
//! The client secret never appears: Terraform reads it from AWS itself. Values
//! are written as HCL string literals (JSON escapes, which HCL shares, plus
//! `$${` and `%%{` so no value is read as a template).

use handlebars::{Handlebars, handlebars_helper};
use serde_json::{Value, json};

use super::{prepare, read_and_plan};
use crate::provision::cli::{ExportArgs, ExportFormat, GlobalArgs};
use crate::provision::cognito::discover::{ClientState, DomainState, PoolState};
use crate::provision::error::{Error, Result};
use crate::provision::render;
use crate::provision::stdout::out;

const TERRAFORM_TEMPLATE: &str = include_str!("../../../templates/provision/terraform.tf.hbs");

pub(crate) async fn run(global: &GlobalArgs, args: &ExportArgs) -> Result<()> {
    let (mut spec, cognito) = prepare(global, &args.stack_args()).await?;
    let (actual, _) = read_and_plan(&cognito, &mut spec).await?;
    let Some(pool) = &actual.pool else {
        return Err(Error::NotProvisioned {
            stack: spec.stack.to_string(),
            region: spec.region.to_string(),
            needs: "a user pool; pass --user-pool-id for an adopted one".into(),
        });
    };
    let domain = actual.domain.as_ref().filter(|d| d.pool_id == pool.id);
    // Every group of the pool, whether or not this command line names them:
    // the export is the live stack, and the groups decide who gets in.
    let groups = match actual.groups {
        Some(groups) => groups,
        None => cognito.group_names(&pool.id).await?,
    };
    let text = match args.format {
        ExportFormat::Terraform => {
            terraform(spec.region.as_str(), spec.stack.as_str(), pool, domain, actual.client.as_ref(), &groups)?
        }
    };
    match &args.out {
        None => out!("{text}"),
        Some(path) => {
            let existing = render::read_env_file(path)?;
            let outcome = render::write_if_changed(path, existing.as_deref(), &text, None)?;
            if !global.quiet {
                eprintln!("{} {}", path.display(), render::label(outcome));
            }
        }
    }
    Ok(())
}

/// The Terraform for one stack; `client` and `domain` are left out when
/// absent. Written as `terraform fmt` would leave it (see [`canonical`]).
pub(crate) fn terraform(
    region: &str,
    stack: &str,
    pool: &PoolState,
    domain: Option<&DomainState>,
    client: Option<&ClientState>,
    groups: &[String],
) -> Result<String> {
    let mut tags: Vec<(&String, &String)> = pool.tags.iter().collect();
    tags.sort();
    let data = json!({
        "stack": stack,
        "region": region,
        "pool": {
            "id": pool.id,
            "name": pool.name,
            "deletion_protection": if pool.deletion_protection { "ACTIVE" } else { "INACTIVE" },
            "tags": tags.iter().map(|(k, v)| json!({ "key": k, "value": v })).collect::<Vec<_>>(),
        },
        "domain": domain.map(|d| json!({ "name": d.domain, "certificate_arn": d.certificate_arn })),
        "client": client.map(|c| client_data(&pool.id, c)),
        "groups": group_data(&pool.id, groups),
    });
    let text = engine()
        .render_template(TERRAFORM_TEMPLATE, &data)
        .map_err(|e| Error::Internal(format!("Terraform template: {e}")))?;
    Ok(canonical(&text))
}

/// Each group with its import id and a resource name of its own (two group
/// names may map to one identifier: the later one gets a number).
fn group_data(pool_id: &str, groups: &[String]) -> Vec<Value> {
    let mut taken: Vec<String> = Vec::new();
    groups
        .iter()
        .map(|name| {
            let base = resource_name(name);
            let mut resource = base.clone();
            let mut n = 2;
            while taken.contains(&resource) {
                resource = format!("{base}_{n}");
                n += 1;
            }
            taken.push(resource.clone());
            json!({ "name": name, "import_id": format!("{pool_id}/{name}"), "resource": resource })
        })
        .collect()
}

/// A Terraform resource name for a group: letters, digits, `_` and `-`,
/// not starting with a digit (Cognito group names allow much more, e.g.
/// `team.a` or `ops@x`); the group's own name stays in `name`.
fn resource_name(group: &str) -> String {
    let mut name: String =
        group.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        name.insert(0, '_');
    }
    name
}

/// The alignment `terraform fmt` gives a body: in each run of consecutive
/// one-line attributes at the same indentation, the `=` signs line up one
/// space after the longest name. A blank line, a comment, a nested block or
/// an attribute whose value opens over several lines ends a run.
fn canonical(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::with_capacity(text.len() + 256);
    let mut i = 0;
    while i < lines.len() {
        let Some(first) = one_line_attribute(lines[i]) else {
            out.push_str(lines[i]);
            out.push('\n');
            i += 1;
            continue;
        };
        let mut run = vec![first];
        while let Some(next) = lines.get(i + run.len()).and_then(|l| one_line_attribute(l)) {
            if next.indent != first.indent {
                break;
            }
            run.push(next);
        }
        let width = run.iter().map(|a| a.name.chars().count()).max().unwrap_or(0);
        for attribute in &run {
            let pad = width - attribute.name.chars().count();
            out.push_str(&format!("{}{}{} = {}\n", attribute.indent, attribute.name, " ".repeat(pad), attribute.value));
        }
        i += run.len();
    }
    out
}

/// `name = value` on one line, the value closing every bracket it opens.
#[derive(Clone, Copy)]
struct OneLineAttribute<'a> {
    indent: &'a str,
    name: &'a str,
    value: &'a str,
}

fn one_line_attribute(line: &str) -> Option<OneLineAttribute<'_>> {
    let body = line.trim_start();
    let indent = &line[..line.len() - body.len()];
    if body.starts_with('#') || body.starts_with("//") {
        return None;
    }
    let (name, value) = body.split_once('=')?;
    let name = name.trim_end();
    let quoted = name.len() >= 2 && name.starts_with('"') && name.ends_with('"');
    let identifier = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !(quoted || identifier) {
        return None;
    }
    let value = value.trim();
    (!value.is_empty() && brackets_close(value)).then_some(OneLineAttribute { indent, name, value })
}

/// Whether every `[`, `{` and `(` outside string literals is closed on the line.
fn brackets_close(value: &str) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0i32, false, false);
    for c in value.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '[' | '{' | '(' if !in_string => depth += 1,
            ']' | '}' | ')' if !in_string => depth -= 1,
            _ => {}
        }
    }
    depth == 0 && !in_string
}

fn client_data(pool_id: &str, client: &ClientState) -> Value {
    let c = &client.described;
    let strings = |values: &[String]| values.to_vec();
    let units = c.token_validity_units().map(|u| {
        let mut units = serde_json::Map::new();
        for (key, unit) in
            [("access_token", u.access_token()), ("id_token", u.id_token()), ("refresh_token", u.refresh_token())]
        {
            if let Some(unit) = unit {
                units.insert(key.to_owned(), json!(unit.as_str()));
            }
        }
        units
    });
    json!({
        "import_id": format!("{pool_id}/{}", client.id),
        "name": client.name,
        "generate_secret": client.secret.is_some(),
        "oauth_enabled": c.allowed_o_auth_flows_user_pool_client().unwrap_or(false),
        "flows": c.allowed_o_auth_flows().iter().map(|f| f.as_str()).collect::<Vec<_>>(),
        "scopes": strings(c.allowed_o_auth_scopes()),
        "callback_urls": strings(c.callback_urls()),
        "identity_providers": strings(c.supported_identity_providers()),
        "logout_urls": strings(c.logout_urls()),
        "explicit_auth_flows": c.explicit_auth_flows().iter().map(|f| f.as_str()).collect::<Vec<_>>(),
        "refresh_token_validity": Some(c.refresh_token_validity()).filter(|v| *v > 0),
        "access_token_validity": c.access_token_validity(),
        "id_token_validity": c.id_token_validity(),
        "token_validity_units": units.filter(|u| !u.is_empty()),
        "enable_token_revocation": c.enable_token_revocation().unwrap_or(false),
        "prevent_user_existence_errors": c.prevent_user_existence_errors().map(|p| p.as_str()),
    })
}

/// A JSON value as an HCL literal: JSON's string escapes are HCL's, but HCL
/// also expands `${…}` and `%{…}` inside strings, so those are doubled. Lists
/// are written `["a", "b"]`, as `terraform fmt` spaces them.
fn hcl(value: &Value) -> String {
    match value {
        Value::Array(items) => format!("[{}]", items.iter().map(hcl).collect::<Vec<_>>().join(", ")),
        _ => value.to_string().replace("${", "$${").replace("%{", "%%{"),
    }
}

fn engine() -> Handlebars<'static> {
    handlebars_helper!(hcl_helper: |v: Json| hcl(v));
    let mut hb = Handlebars::new();
    hb.set_strict_mode(false);
    hb.register_escape_fn(handlebars::no_escape);
    hb.register_helper("hcl", Box::new(hcl_helper));
    hb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hcl_literals_escape_templates_and_quotes() {
        assert_eq!(hcl(&json!("a\"b")), r#""a\"b""#);
        assert_eq!(hcl(&json!("https://x/${evil}/%{if}")), r#""https://x/$${evil}/%%{if}""#);
        assert_eq!(hcl(&json!(["a", "b"])), r#"["a", "b"]"#);
    }

    #[test]
    fn runs_of_one_line_attributes_line_up_as_terraform_fmt_does() {
        let text = "resource \"x\" \"y\" {\n  name = \"a\"\n  user_pool_id = x.id\n  tags = {\n    \"k\" = \"v\"\n    \"longer\" = \"w = [\"\n  }\n  # note\n  a = [\"b\", \"c\"]\n  bb = 1\n}\n";
        assert_eq!(
            canonical(text),
            "resource \"x\" \"y\" {\n  name         = \"a\"\n  user_pool_id = x.id\n  tags = {\n    \"k\"      = \"v\"\n    \"longer\" = \"w = [\"\n  }\n  # note\n  a  = [\"b\", \"c\"]\n  bb = 1\n}\n"
        );
    }

    #[test]
    fn group_resource_names_are_terraform_identifiers() {
        assert_eq!(resource_name("readers"), "readers");
        assert_eq!(resource_name("team.a@x"), "team_a_x");
        assert_eq!(resource_name("9lives"), "_9lives");
    }
}

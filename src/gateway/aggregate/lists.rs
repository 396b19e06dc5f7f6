//! The merged lists: `tools/list`, `prompts/list`, `resources/list` and
//! `resources/templates/list` asked of every member at once, their items
//! put together in the members' order, tools and prompts renamed by the
//! prefix mode, and where each name came from kept in the session so a call
//! goes to its owner.
//!
//! Pagination spans the members: the first page holds every member's first
//! page, and the cursor given back names each member that has more with its
//! own cursor (base64url JSON, opaque to the client), so a list costs one
//! round trip to the members per page, whatever their number. A member that
//! fails is left out of the answer with a logged warning.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::Ctx;
use super::member::{self, MEMBER_TIMEOUT, MemberError};
use super::session::{Names, Session, lock};
use super::spec::{Aggregate, PrefixMode};

/// The four lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Tools,
    Prompts,
    Resources,
    Templates,
}

impl Kind {
    pub(super) fn of(method: &str) -> Option<Self> {
        Some(match method {
            "tools/list" => Self::Tools,
            "prompts/list" => Self::Prompts,
            "resources/list" => Self::Resources,
            "resources/templates/list" => Self::Templates,
            _ => return None,
        })
    }

    pub(super) fn method(self) -> &'static str {
        match self {
            Self::Tools => "tools/list",
            Self::Prompts => "prompts/list",
            Self::Resources => "resources/list",
            Self::Templates => "resources/templates/list",
        }
    }

    fn field(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Prompts => "prompts",
            Self::Resources => "resources",
            Self::Templates => "resourceTemplates",
        }
    }

    /// The capability a member declares to have this list.
    fn capability(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Prompts => "prompts",
            Self::Resources | Self::Templates => "resources",
        }
    }
}

/// Why a page cannot be given.
#[derive(Debug, thiserror::Error)]
pub(super) enum ListError {
    #[error("the cursor is not one this route gave out; start the list again without a cursor")]
    Cursor,
}

/// The (member, member cursor) pairs a cursor of ours stands for.
fn decode_cursor(cursor: &str) -> Result<Vec<(usize, String)>, ListError> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| ListError::Cursor)?;
    serde_json::from_slice(&bytes).map_err(|_| ListError::Cursor)
}

fn encode_cursor(pending: &[(usize, String)]) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(pending).unwrap_or_default())
}

/// One member's page: its items and its next cursor.
async fn page(
    ctx: &Ctx<'_>,
    session: &Session,
    member: usize,
    kind: Kind,
    cursor: Option<String>,
) -> Result<(Vec<Value>, Option<String>), MemberError> {
    let link = member::link(ctx, session, member).await?;
    if link.capabilities.get(kind.capability()).is_none() {
        return Ok((Vec::new(), None));
    }
    let params = match cursor {
        Some(cursor) => json!({"cursor": cursor}),
        None => json!({}),
    };
    let result = member::call(ctx, session, member, kind.method(), params).await?;
    let items = result.get(kind.field()).and_then(Value::as_array).cloned().unwrap_or_default();
    let next = result.get("nextCursor").and_then(Value::as_str).map(str::to_owned);
    Ok((items, next))
}

/// A merged page for the client: the result object (items and
/// `nextCursor`), the names it shows recorded in the session.
pub(super) async fn list(
    ctx: &Ctx<'_>,
    session: &Session,
    kind: Kind,
    cursor: Option<&str>,
) -> Result<Map<String, Value>, ListError> {
    let asked: Vec<(usize, Option<String>)> = match cursor {
        None => (0..ctx.spec.members.len()).map(|member| (member, None)).collect(),
        Some(cursor) => decode_cursor(cursor)?
            .into_iter()
            .filter(|(member, _)| *member < ctx.spec.members.len())
            .map(|(member, cursor)| (member, Some(cursor)))
            .collect(),
    };
    let pages = futures_util::future::join_all(asked.into_iter().map(|(member, cursor)| async move {
        let page = tokio::time::timeout(MEMBER_TIMEOUT, page(ctx, session, member, kind, cursor))
            .await
            .unwrap_or_else(|_| Err(MemberError::Unavailable("timed out".into())));
        (member, page)
    }))
    .await;
    let mut pages_ok = Vec::new();
    let mut pending = Vec::new();
    for (member, page) in pages {
        match page {
            Ok((items, next)) => {
                if let Some(next) = next {
                    pending.push((member, next));
                }
                pages_ok.push((member, items));
            }
            Err(err) => {
                let path = &ctx.spec.members[member].path;
                tracing::warn!(route = %ctx.route.route.path, member = %path, error = %err, list = kind.method(), "a member is left out of the list");
            }
        }
    }
    let items = {
        let mut names = lock(&session.names);
        merge(ctx.spec, &ctx.route.route.path, &mut names, kind, pages_ok)
    };
    let mut result = Map::new();
    result.insert(kind.field().into(), Value::Array(items));
    if !pending.is_empty() {
        result.insert("nextCursor".into(), Value::String(encode_cursor(&pending)));
    }
    Ok(result)
}

/// Puts the members' items together, renaming tools and prompts, and
/// records where each shown name comes from.
fn merge(spec: &Aggregate, route: &str, names: &mut Names, kind: Kind, pages: Vec<(usize, Vec<Value>)>) -> Vec<Value> {
    match kind {
        Kind::Resources => {
            let mut out = Vec::new();
            for (member, items) in pages {
                for item in items {
                    if let Some(uri) = item.get("uri").and_then(Value::as_str) {
                        names.resources.insert(uri.to_owned(), member);
                    }
                    out.push(item);
                }
            }
            out
        }
        Kind::Templates => {
            let mut out = Vec::new();
            for (member, items) in pages {
                for item in items {
                    if let Some(template) = item.get("uriTemplate").and_then(Value::as_str) {
                        let entry = (member, template.to_owned());
                        if !names.templates.contains(&entry) {
                            names.templates.push(entry);
                        }
                    }
                    out.push(item);
                }
            }
            out
        }
        Kind::Tools | Kind::Prompts => {
            let table = if kind == Kind::Tools { &mut names.tools } else { &mut names.prompts };
            // Who else lists a name: on this page, or (from earlier pages)
            // in the session's table under the bare name.
            let mut owners: std::collections::HashMap<String, Vec<usize>> = std::collections::HashMap::new();
            for (member, items) in &pages {
                for name in items.iter().filter_map(|item| item.get("name").and_then(Value::as_str)) {
                    owners.entry(name.to_owned()).or_default().push(*member);
                }
            }
            for (shown, (member, name)) in table.iter() {
                if shown == name {
                    owners.entry(name.clone()).or_default().push(*member);
                }
            }
            let mut out = Vec::new();
            for (member, items) in pages {
                let prefix = &spec.members[member].prefix;
                for mut item in items {
                    let Some(name) = item.get("name").and_then(Value::as_str).map(str::to_owned) else { continue };
                    let mut others =
                        owners.get(&name).map(Vec::as_slice).unwrap_or_default().iter().filter(|m| **m != member);
                    let conflict = others.next().copied();
                    let shown = match (spec.prefix_mode, conflict) {
                        (PrefixMode::Always, _) | (PrefixMode::Conflict, Some(_)) => format!("{prefix}_{name}"),
                        (PrefixMode::Conflict | PrefixMode::Never, None) => name.clone(),
                        (PrefixMode::Never, Some(other)) => {
                            if table.get(&name).is_some_and(|(owner, _)| *owner != member) || other < member {
                                tracing::warn!(
                                    route = %route,
                                    name = %name,
                                    shown_from = %spec.members[other.min(member)].path,
                                    hidden_from = %spec.members[other.max(member)].path,
                                    "two members list the same name and prefixMode is never: the first member's is shown"
                                );
                                continue;
                            }
                            name.clone()
                        }
                    };
                    if shown != name {
                        // A bare name seen before is now a conflict: it
                        // leads nowhere any more.
                        if table.get(&name).is_some_and(|(owner, _)| *owner != member) {
                            table.remove(&name);
                        }
                        if let Some(object) = item.as_object_mut() {
                            object.insert("name".into(), Value::String(shown.clone()));
                        }
                    }
                    table.insert(shown, (member, name));
                    out.push(item);
                }
            }
            out
        }
    }
}

/// The member that owns the tool or prompt shown as `shown`, and its own
/// name for it, from the session's table or, when the route always
/// prefixes (or the table has not seen it), from the prefix.
pub(super) fn owner(spec: &Aggregate, names: &Names, kind: Kind, shown: &str) -> Option<(usize, String)> {
    let table = if kind == Kind::Tools { &names.tools } else { &names.prompts };
    if let Some(hit) = table.get(shown) {
        return Some(hit.clone());
    }
    if spec.prefix_mode == PrefixMode::Never {
        return None;
    }
    // The longest prefix wins: `a_b` before `a` for `a_b_tool`.
    spec.members
        .iter()
        .enumerate()
        .filter_map(|(member, m)| {
            let rest = shown.strip_prefix(m.prefix.as_str())?.strip_prefix('_')?;
            Some((m.prefix.len(), member, rest))
        })
        .max_by_key(|(len, _, _)| *len)
        .map(|(_, member, rest)| (member, rest.to_owned()))
}

/// The member that serves the resource `uri`: the one that listed it, else
/// the first whose listed template matches it.
pub(super) fn resource_owner(names: &Names, uri: &str) -> Option<usize> {
    if let Some(member) = names.resources.get(uri) {
        return Some(*member);
    }
    names
        .templates
        .iter()
        .find(|(_, template)| crate::gateway::policy::capability_filter::template_matches(template, uri))
        .map(|(member, _)| *member)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{Kind, decode_cursor, encode_cursor, merge, owner};
    use crate::gateway::aggregate::session::Names;
    use crate::gateway::aggregate::spec::{Aggregate, Member, PrefixMode};

    fn spec(mode: PrefixMode) -> Aggregate {
        let member = |slug: &str, prefix: &str| Member {
            slug: slug.into(),
            path: format!("/mcp/{slug}"),
            prefix: prefix.into(),
        };
        Aggregate { members: vec![member("linear", "lin"), member("stripe", "stripe")], prefix_mode: mode }
    }

    fn tools(names: &[&str]) -> Vec<Value> {
        names.iter().map(|name| json!({"name": name})).collect()
    }

    fn shown(items: &[Value]) -> Vec<&str> {
        items.iter().filter_map(|item| item["name"].as_str()).collect()
    }

    #[test]
    fn each_mode_names_tools_as_documented_and_calls_find_their_owner() {
        let pages = || vec![(0, tools(&["create_issue", "search"])), (1, tools(&["charge", "search"]))];
        for (mode, expected) in [
            (PrefixMode::Always, vec!["lin_create_issue", "lin_search", "stripe_charge", "stripe_search"]),
            (PrefixMode::Conflict, vec!["create_issue", "lin_search", "charge", "stripe_search"]),
            (PrefixMode::Never, vec!["create_issue", "search", "charge"]),
        ] {
            let spec = spec(mode);
            let mut names = Names::default();
            let items = merge(&spec, "/mcp/all", &mut names, Kind::Tools, pages());
            assert_eq!(shown(&items), expected, "{mode:?}");
            for (member, name) in [(0, "create_issue"), (1, "charge")] {
                let shown = if mode == PrefixMode::Always {
                    format!("{}_{name}", spec.members[member].prefix)
                } else {
                    name.to_owned()
                };
                assert_eq!(
                    owner(&spec, &names, Kind::Tools, &shown),
                    Some((member, name.to_owned())),
                    "{mode:?} {shown}"
                );
            }
        }
        // Always: a prefixed name is resolved without any list seen.
        let spec = spec(PrefixMode::Always);
        assert_eq!(owner(&spec, &Names::default(), Kind::Tools, "stripe_refund"), Some((1, "refund".into())));
        assert_eq!(owner(&spec, &Names::default(), Kind::Tools, "refund"), None);
    }

    #[test]
    fn a_cursor_round_trips_and_a_foreign_one_is_refused() {
        let pending = vec![(0, "a".to_owned()), (3, "next=2".to_owned())];
        assert_eq!(decode_cursor(&encode_cursor(&pending)).unwrap(), pending);
        assert!(decode_cursor("not-ours").is_err());
    }
}

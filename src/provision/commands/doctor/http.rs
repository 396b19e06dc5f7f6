//! The HTTP half of `doctor`: the URLs the gateway derives (login page,
//! discovery document, JWKS) and, with `--gateway-url`, the running gateway's
//! discovery endpoints and its 401 challenge. Independent probes run at once.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

use super::Check;
use crate::contract::{StackUrls, is_loopback};

const TIMEOUT: Duration = Duration::from_secs(10);

/// What the probes need; `None` fields make their checks skip with the reason.
pub(super) struct Probes<'a> {
    pub(super) urls: Option<&'a StackUrls>,
    pub(super) client_id: Option<&'a str>,
    pub(super) callback: &'a str,
    /// Cognito's API is an emulator (it has no hosted UI).
    pub(super) emulated: bool,
    pub(super) login_page: Option<&'a str>,
    pub(super) gateway: Option<&'a str>,
    pub(super) route: Option<String>,
}

/// `host[:port]` of a URL, as `COGNITO_USER_POOL_DOMAIN` would carry it.
pub(super) fn host_of(url: &str) -> Option<String> {
    let url = Url::parse(url).ok()?;
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

pub(super) async fn run(probes: &Probes<'_>) -> Vec<Check> {
    let http = match reqwest::Client::builder().timeout(TIMEOUT).build() {
        Ok(client) => client,
        Err(e) => {
            return vec![Check::fail("http", "HTTP client", format!("cannot build it: {e}"), "report this as a bug")];
        }
    };
    let (login, discovery, jwks, gateway) =
        tokio::join!(login_page(&http, probes), discovery(&http, probes), jwks(&http, probes), gateway(&http, probes));
    let mut checks = vec![login, discovery, jwks];
    checks.extend(gateway);
    checks
}

async fn get(http: &reqwest::Client, url: &str) -> Result<(StatusCode, Url, String), String> {
    let response = http.get(url).send().await.map_err(|e| format!("GET {url}: {}", reason(&e)))?;
    let status = response.status();
    let final_url = response.url().clone();
    let body = response.text().await.map_err(|e| format!("GET {url}: reading the body: {}", reason(&e)))?;
    Ok((status, final_url, body))
}

/// The innermost cause: "connection refused" rather than "error sending request".
fn reason(error: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = error;
    while let Some(next) = source.source() {
        source = next;
    }
    if error.is_timeout() { format!("timed out after {}s", TIMEOUT.as_secs()) } else { source.to_string() }
}

async fn login_page(http: &reqwest::Client, probes: &Probes<'_>) -> Check {
    const TITLE: &str = "login page answering";
    let (Some(urls), Some(client_id)) = (probes.urls, probes.client_id) else {
        return Check::skip("login-page", TITLE, "needs the domain and the app client");
    };
    let base = match (probes.emulated, probes.login_page) {
        (_, Some(page)) => match Url::parse(page) {
            Ok(url) => url,
            Err(e) => {
                return Check::fail("login-page", TITLE, format!("--login-page {page}: {e}"), "give an absolute URL");
            }
        },
        (true, None) => {
            return Check::skip(
                "login-page",
                TITLE,
                "the emulator has no hosted UI; pass --login-page URL (the local login page) to check it",
            );
        }
        (false, None) => {
            let mut base = urls.authorize.clone();
            base.set_path("/");
            base
        }
    };
    let Ok(mut url) = base.join("login") else {
        return Check::fail("login-page", TITLE, format!("cannot build a URL from {base}"), "give an absolute URL");
    };
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile email")
        .append_pair("redirect_uri", probes.callback);
    match get(http, url.as_str()).await {
        Err(problem) => Check::fail(
            "login-page",
            TITLE,
            problem,
            "check the domain (DNS for a custom domain can take a while) and your network",
        ),
        // Cognito sends a request it refuses to /error; the local page answers 400.
        Ok((status, landed, body)) if !status.is_success() || landed.path().starts_with("/error") => {
            let error = landed
                .query_pairs()
                .find(|(k, _)| k == "error")
                .map(|(_, v)| v.into_owned())
                .or_else(|| {
                    ["redirect_mismatch", "invalid_client", "unauthorized_client", "invalid_scope"]
                        .into_iter()
                        .find(|e| body.contains(e))
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
            Check::fail(
                "login-page",
                TITLE,
                format!("{} refused the gateway's sign-in request: {error}", base.as_str().trim_end_matches('/')),
                "fix the client checks above (callback URL, flow, scopes), then run `cognigate doctor` again",
            )
        }
        Ok(_) => Check::pass("login-page", TITLE, format!("{} shows the sign-in form", url_without_query(&url))),
    }
}

fn url_without_query(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.to_string()
}

/// `<issuer>/.well-known/openid-configuration`, fetched next to the JWKS (an
/// emulator serves both under its own endpoint).
async fn discovery(http: &reqwest::Client, probes: &Probes<'_>) -> Check {
    const TITLE: &str = "OpenID discovery document";
    let Some(urls) = probes.urls else { return Check::skip("discovery", TITLE, "needs the pool and its domain") };
    let Ok(url) = urls.jwks.join("openid-configuration") else {
        return Check::fail("discovery", TITLE, format!("cannot derive it from {}", urls.jwks), "report this as a bug");
    };
    let fix = "check the region and pool id, and that this machine reaches cognito-idp.<region>.amazonaws.com";
    match get(http, url.as_str()).await {
        Err(problem) => Check::fail("discovery", TITLE, problem, fix),
        Ok((status, _, _)) if !status.is_success() => {
            Check::fail("discovery", TITLE, format!("GET {url}: HTTP {}", status.as_u16()), fix)
        }
        Ok((_, _, body)) => {
            let issuer =
                serde_json::from_str::<Value>(&body).ok().and_then(|d| d["issuer"].as_str().map(str::to_owned));
            match issuer {
                Some(issuer) if issuer == urls.issuer => {
                    Check::pass("discovery", TITLE, format!("{url}, issuer {issuer}"))
                }
                other => Check::fail(
                    "discovery",
                    TITLE,
                    format!("{url} names issuer {}, not {}", other.unwrap_or_else(|| "nothing".into()), urls.issuer),
                    fix,
                ),
            }
        }
    }
}

async fn jwks(http: &reqwest::Client, probes: &Probes<'_>) -> Check {
    const TITLE: &str = "JWKS reachable";
    let Some(urls) = probes.urls else { return Check::skip("jwks", TITLE, "needs the pool and its domain") };
    let fix = "check the region and pool id, and that this machine (and the gateway's) reaches the JWKS URL";
    match get(http, urls.jwks.as_str()).await {
        Err(problem) => Check::fail("jwks", TITLE, problem, fix),
        Ok((status, _, _)) if !status.is_success() => {
            Check::fail("jwks", TITLE, format!("GET {}: HTTP {}", urls.jwks, status.as_u16()), fix)
        }
        Ok((_, _, body)) => {
            let keys = serde_json::from_str::<Value>(&body).ok().and_then(|d| d["keys"].as_array().map(Vec::len));
            match keys {
                Some(n) if n > 0 => {
                    Check::pass("jwks", TITLE, format!("{} ({n} key{})", urls.jwks, if n == 1 { "" } else { "s" }))
                }
                _ => Check::fail("jwks", TITLE, format!("{} has no keys", urls.jwks), fix),
            }
        }
    }
}

/// The running gateway: its two discovery documents and the challenge a
/// client without a token gets (RFC 9728 §5.1: `resource_metadata` in
/// `WWW-Authenticate`), which is how an MCP client finds where to log in.
async fn gateway(http: &reqwest::Client, probes: &Probes<'_>) -> Vec<Check> {
    const META: &str = "gateway metadata endpoints";
    const CHALLENGE: &str = "gateway 401 challenge";
    let Some(gateway) = probes.gateway.map(|g| g.trim_end_matches('/')) else {
        return Vec::new();
    };
    let Some(route) = probes.route.as_deref() else {
        let why = "no route in the routes file to probe";
        return vec![Check::skip("gateway-metadata", META, why), Check::skip("gateway-challenge", CHALLENGE, why)];
    };
    let start = if Url::parse(gateway).is_ok_and(|u| is_loopback(&u)) {
        "start it: cognigate-gateway --env-file .env --config-dir config"
    } else {
        "check that the gateway runs and is reachable at this URL"
    };
    let server_url = format!("{gateway}/.well-known/oauth-authorization-server");
    let resource_url = format!("{gateway}/.well-known/oauth-protected-resource{route}");
    let (server, resource, challenge) = tokio::join!(
        get(http, &server_url),
        get(http, &resource_url),
        http.post(format!("{gateway}{route}")).header("content-type", "application/json").body("{}").send(),
    );

    let meta = match (server, resource) {
        (Err(problem), _) | (_, Err(problem)) => Check::fail("gateway-metadata", META, problem, start),
        (Ok((s, _, body)), Ok((r, _, resource_body))) if s.is_success() && r.is_success() => {
            let issuer =
                serde_json::from_str::<Value>(&body).ok().and_then(|d| d["issuer"].as_str().map(str::to_owned));
            let resource = serde_json::from_str::<Value>(&resource_body)
                .ok()
                .and_then(|d| d["resource"].as_str().map(str::to_owned));
            let want_resource = format!("{gateway}{route}");
            if issuer.as_deref() == Some(gateway) && resource.as_deref() == Some(want_resource.as_str()) {
                Check::pass("gateway-metadata", META, format!("{server_url} and {resource_url}"))
            } else {
                Check::fail(
                    "gateway-metadata",
                    META,
                    format!(
                        "the gateway calls itself {} (resource {}), not {gateway}",
                        issuer.unwrap_or_default(),
                        resource.unwrap_or_default()
                    ),
                    format!(
                        "set COGNIGATE_PUBLIC_URL={gateway} in its env file (or run it with --public-url {gateway}) and restart it"
                    ),
                )
            }
        }
        (Ok((s, _, _)), Ok((r, _, _))) => Check::fail(
            "gateway-metadata",
            META,
            format!("{server_url}: HTTP {}, {resource_url}: HTTP {}", s.as_u16(), r.as_u16()),
            format!("check that {route} is a route of the gateway's routes file, and that the URL is the gateway's"),
        ),
    };

    let want = format!("resource_metadata=\"{resource_url}\"");
    let challenge = match challenge {
        Err(e) => Check::fail("gateway-challenge", CHALLENGE, format!("POST {gateway}{route}: {}", reason(&e)), start),
        Ok(response) => {
            let status = response.status();
            let header = response
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            if status == StatusCode::UNAUTHORIZED && header.starts_with("Bearer") && header.contains(&want) {
                Check::pass("gateway-challenge", CHALLENGE, format!("POST {route} without a token: 401, {header}"))
            } else {
                Check::fail(
                    "gateway-challenge",
                    CHALLENGE,
                    format!(
                        "POST {route} without a token answered HTTP {} with WWW-Authenticate {header:?}; MCP clients \
                         need 401 with {want}",
                        status.as_u16()
                    ),
                    "put the Cognito policy on the route (\"policies\": {\"inbound\": [\"<policy name>\"]}) and set \
                     the gateway's public URL to the one clients use",
                )
            }
        }
    };
    vec![meta, challenge]
}

//! The hosted UI stand-in checks what Cognito checks:
//! these tests hold it to that, against moto provisioned like `cognigate up`,
//! so the gateway's e2e tests cannot pass against a stand-in that accepts
//! anything. No gateway here.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Cognito, EMAIL, PASSWORD, USERNAME};
use crate::support::peers::{block_on, http_client};

const GATEWAY: &str = "http://localhost:9";
const CALLBACK: &str = "http://localhost:9/oauth/callback";

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

struct Response {
    status: u16,
    location: Option<String>,
    body: String,
}

fn get(url: &str) -> Response {
    block_on(async {
        let r = http_client().get(url).send().await.expect("GET");
        let location = r.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
        Response { status: r.status().as_u16(), location, body: r.text().await.unwrap_or_default() }
    })
}

fn post(url: &str, body: String, basic: Option<(&str, &str)>) -> Response {
    block_on(async {
        let mut req = http_client().post(url).header("content-type", "application/x-www-form-urlencoded").body(body);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        let r = req.send().await.expect("POST");
        let location = r.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
        Response { status: r.status().as_u16(), location, body: r.text().await.unwrap_or_default() }
    })
}

fn query(location: &str) -> Vec<(String, String)> {
    url::Url::parse(location).expect("absolute location").query_pairs().into_owned().collect()
}

fn param(location: &str, name: &str) -> Option<String> {
    query(location).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn authorize_url(ui: &str, client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("client_id", client_id),
        ("response_type", "code"),
        ("redirect_uri", CALLBACK),
        ("scope", "openid profile email"),
        ("state", "st-123"),
    ];
    for (k, v) in extra {
        pairs.retain(|(pk, _)| pk != k);
        pairs.push((k, v));
    }
    format!("{ui}/oauth2/authorize?{}", form(&pairs))
}

fn login_id(html: &str) -> String {
    let marker = "name=\"login_id\" value=\"";
    let start = html.find(marker).map(|i| i + marker.len()).expect("login form with login_id");
    html[start..].split('"').next().unwrap_or_default().to_owned()
}

/// Authorize then log in: the redirect's code.
fn code_for(ui: &str, client_id: &str, extra: &[(&str, &str)]) -> String {
    let page = get(&authorize_url(ui, client_id, extra));
    assert_eq!(page.status, 200, "{}", page.body);
    let login = post(
        &format!("{ui}/login"),
        form(&[("login_id", &login_id(&page.body)), ("username", USERNAME), ("password", PASSWORD)]),
        None,
    );
    assert_eq!(login.status, 302, "{}", login.body);
    let location = login.location.expect("redirect to the callback");
    assert!(location.starts_with(CALLBACK), "{location}");
    assert_eq!(param(&location, "state").as_deref(), Some("st-123"));
    param(&location, "code").expect("code")
}

#[test]
fn authorize_rejects_what_cognito_rejects() {
    let cognito = Cognito::start(GATEWAY);
    let ui = cognito.hosted_ui.url();
    let client = &cognito.provisioned.client_id;
    // What `up` wrote is a real hosted UI domain; the tests swap in the stand-in's address.
    assert!(cognito.provisioned.domain.ends_with(".auth.us-east-1.amazoncognito.com"), "{:?}", cognito.provisioned);

    // Unknown client, or a callback URL the client does not have: an error page, never a redirect.
    let r = get(&authorize_url(ui, "no-such-client", &[]));
    assert_eq!((r.status, r.location.is_none()), (400, true), "{}", r.body);
    let r = get(&authorize_url(ui, client, &[("redirect_uri", "http://localhost:9/elsewhere")]));
    assert_eq!((r.status, r.location.is_none()), (400, true), "{}", r.body);
    assert!(r.body.contains("redirect_mismatch"), "{}", r.body);

    // A scope the client does not allow: redirected back with invalid_scope and the state.
    let r = get(&authorize_url(ui, client, &[("scope", "openid aws.cognito.signin.user.admin")]));
    let location = r.location.unwrap_or_default();
    assert_eq!(r.status, 302);
    assert_eq!(param(&location, "error").as_deref(), Some("invalid_scope"), "{location}");
    assert_eq!(param(&location, "state").as_deref(), Some("st-123"), "{location}");

    // A flow the client does not allow.
    let implicit_only =
        cognito.extra_client(&["--name", "implicit-only", "--flows", "implicit", "--callback", CALLBACK]);
    let r = get(&authorize_url(ui, implicit_only["client_id"].as_str().unwrap(), &[]));
    assert_eq!(param(&r.location.unwrap_or_default(), "error").as_deref(), Some("unauthorized_client"));

    // COGNITO not among the client's identity providers.
    let no_cognito = cognito.extra_client(&["--name", "no-cognito", "--idp", "Google", "--callback", CALLBACK]);
    let r = get(&authorize_url(ui, no_cognito["client_id"].as_str().unwrap(), &[]));
    assert!(param(&r.location.unwrap_or_default(), "error").is_some());

    // PKCE: Cognito supports S256 only.
    let r = get(&authorize_url(ui, client, &[("code_challenge", "abc"), ("code_challenge_method", "plain")]));
    assert_eq!(param(&r.location.unwrap_or_default(), "error").as_deref(), Some("invalid_request"));

    // A wrong password shows the form again, with Cognito's message.
    let page = get(&authorize_url(ui, client, &[]));
    let r = post(
        &format!("{ui}/login"),
        form(&[("login_id", &login_id(&page.body)), ("username", USERNAME), ("password", "wrong-Passw0rd!")]),
        None,
    );
    assert_eq!((r.status, r.location), (200, None));
    assert!(r.body.contains("Incorrect username or password."), "{}", r.body);
}

#[test]
fn token_endpoint_checks_client_code_and_pkce_and_signs_like_cognito() {
    let cognito = Cognito::start(GATEWAY);
    let ui = cognito.hosted_ui.url();
    let token_url = format!("{ui}/oauth2/token");
    let (id, secret) = (cognito.provisioned.client_id.as_str(), cognito.provisioned.client_secret.as_str());
    let verifier = "a-verifier-of-enough-length-for-pkce-0123456789";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let pkce = [("code_challenge", challenge.as_str()), ("code_challenge_method", "S256"), ("nonce", "n-42")];
    let exchange = |code: &str, verifier: &str, redirect: &str| {
        form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ])
    };
    let error = |r: &Response| serde_json::from_str::<Value>(&r.body).ok().map(|v| v["error"].clone());

    // Client authentication: a wrong secret, or none, is invalid_client (and does not burn the code).
    let code = code_for(ui, id, &pkce);
    let r = post(&token_url, exchange(&code, verifier, CALLBACK), Some((id, "wrong-secret")));
    assert_eq!((r.status, error(&r)), (400, Some("invalid_client".into())), "{}", r.body);
    let r = post(&token_url, exchange(&code, verifier, CALLBACK) + &format!("&client_id={id}"), None);
    assert_eq!((r.status, error(&r)), (400, Some("invalid_client".into())), "{}", r.body);

    // A wrong PKCE verifier is invalid_grant, and the code is gone afterwards.
    let r =
        post(&token_url, exchange(&code, "another-verifier-of-enough-length-0123456789", CALLBACK), Some((id, secret)));
    assert_eq!((r.status, error(&r)), (400, Some("invalid_grant".into())), "{}", r.body);
    let r = post(&token_url, exchange(&code, verifier, CALLBACK), Some((id, secret)));
    assert_eq!(error(&r), Some("invalid_grant".into()), "a code is single-use: {}", r.body);

    // The code is bound to its redirect URI.
    let code = code_for(ui, id, &pkce);
    let r = post(&token_url, exchange(&code, verifier, "http://localhost:9000/oauth/callback"), Some((id, secret)));
    assert_eq!(error(&r), Some("invalid_grant".into()), "{}", r.body);

    // The happy path, client_secret_post this time; then the same code again fails.
    let code = code_for(ui, id, &pkce);
    let body =
        exchange(&code, verifier, CALLBACK) + &format!("&{}", form(&[("client_id", id), ("client_secret", secret)]));
    let r = post(&token_url, body.clone(), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let tokens: Value = serde_json::from_str(&r.body).expect("token JSON");
    for field in ["access_token", "id_token", "refresh_token"] {
        assert!(tokens[field].is_string(), "{field} missing: {tokens}");
    }
    assert_eq!(tokens["token_type"], "Bearer");
    let r = post(&token_url, body, None);
    assert_eq!(error(&r), Some("invalid_grant".into()), "{}", r.body);

    // The ID token verifies against moto's published JWKS, with what the hosted UI adds.
    let jwks_url = format!("{}/{}/.well-known/jwks.json", cognito.moto.endpoint(), cognito.provisioned.pool_id);
    let jwks: JwkSet = block_on(async { http_client().get(jwks_url).send().await?.json().await }).expect("moto JWKS");
    let header = jsonwebtoken::decode_header(tokens["id_token"].as_str().unwrap()).expect("JWT header");
    assert_eq!(header.kid.as_deref(), Some("dummy"));
    let jwk = jwks.find("dummy").expect("moto's kid");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[id]);
    validation.set_issuer(&[format!("https://cognito-idp.us-east-1.amazonaws.com/{}", cognito.provisioned.pool_id)]);
    let claims: Value = jsonwebtoken::decode(
        tokens["id_token"].as_str().unwrap(),
        &DecodingKey::from_jwk(jwk).expect("RSA JWK"),
        &validation,
    )
    .expect("the stand-in's ID token verifies against moto's JWKS")
    .claims;
    assert_eq!(claims["token_use"], "id");
    assert_eq!(claims["nonce"], "n-42");
    assert_eq!(claims["email"], EMAIL);
    assert_eq!(claims["cognito:username"], USERNAME);
}

/// Cognito's machine-to-machine grant: only a confidential client whose flow
/// is `client_credentials` gets a token, with custom scopes it is allowed,
/// signed like Cognito's access tokens and naming the client; a deleted
/// client is `invalid_client`.
#[test]
fn client_credentials_grant_checks_the_client_and_its_scopes_like_cognito() {
    let cognito = Cognito::start(GATEWAY);
    let token_url = format!("{}/oauth2/token", cognito.hosted_ui.url());
    let all = format!("{GATEWAY}/mcp:all");
    let route = format!("{GATEWAY}/mcp:route.example");
    let machine =
        cognito.extra_client(&["--name", "machine", "--flows", "client_credentials", "--scopes", &all, &route]);
    let (id, secret) = (machine["client_id"].as_str().unwrap(), machine["client_secret"].as_str().unwrap());
    let grant = |scope: Option<&str>| {
        let mut pairs = vec![("grant_type", "client_credentials")];
        pairs.extend(scope.map(|s| ("scope", s)));
        form(&pairs)
    };
    let error = |r: &Response| serde_json::from_str::<Value>(&r.body).ok().map(|v| v["error"].clone());

    // No scope asked: every scope the client is allowed.
    let r = post(&token_url, grant(None), Some((id, secret)));
    assert_eq!(r.status, 200, "{}", r.body);
    let tokens: Value = serde_json::from_str(&r.body).unwrap();
    assert!(tokens.get("refresh_token").is_none() && tokens.get("id_token").is_none(), "{tokens}");
    let jwks_url = format!("{}/{}/.well-known/jwks.json", cognito.moto.endpoint(), cognito.provisioned.pool_id);
    let jwks: JwkSet = block_on(async { http_client().get(jwks_url).send().await?.json().await }).expect("moto JWKS");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_aud = false;
    validation.set_issuer(&[format!("https://cognito-idp.us-east-1.amazonaws.com/{}", cognito.provisioned.pool_id)]);
    let key = DecodingKey::from_jwk(jwks.find("dummy").expect("moto's kid")).expect("RSA JWK");
    let claims: Value = jsonwebtoken::decode(tokens["access_token"].as_str().unwrap(), &key, &validation)
        .expect("the access token verifies against moto's JWKS")
        .claims;
    assert_eq!((claims["token_use"].as_str(), claims["client_id"].as_str()), (Some("access"), Some(id)));
    assert_eq!(claims["sub"], id);
    assert_eq!(claims["scope"], format!("{all} {route}"));

    // One allowed scope; a scope it is not allowed; client_secret_post.
    let r = post(&token_url, grant(Some(&route)) + &format!("&client_id={id}&client_secret={secret}"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post(&token_url, grant(Some("openid")), Some((id, secret)));
    assert_eq!((r.status, error(&r)), (400, Some("invalid_scope".into())), "{}", r.body);

    // A wrong secret; the people's client (code flow); a deleted client.
    let r = post(&token_url, grant(None), Some((id, "wrong-secret")));
    assert_eq!((r.status, error(&r)), (400, Some("invalid_client".into())), "{}", r.body);
    let (gateway_id, gateway_secret) = (&cognito.provisioned.client_id, &cognito.provisioned.client_secret);
    let r = post(&token_url, grant(None), Some((gateway_id, gateway_secret)));
    assert_eq!((r.status, error(&r)), (400, Some("unauthorized_client".into())), "{}", r.body);
    let aws = crate::support::cli::sdk(cognito.moto.endpoint());
    crate::support::cli::block_on(
        aws.delete_user_pool_client().user_pool_id(&cognito.provisioned.pool_id).client_id(id).send(),
    )
    .expect("delete the machine client");
    let r = post(&token_url, grant(None), Some((id, secret)));
    assert_eq!((r.status, error(&r)), (400, Some("invalid_client".into())), "{}", r.body);
}

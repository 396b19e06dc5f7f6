//! `cognigate up` against moto: what exists afterwards, what is written, what a
//! re-run does, and how bad input is refused before anything is created.

use std::os::unix::fs::PermissionsExt;

use serde_json::{Value, json};

use crate::support::aws_proxy::AwsProxy;
use crate::support::cli::{Workspace, block_on, pools_named, sdk, unique_stack};
use crate::support::moto::MotoServer;

fn env_map(text: &str) -> std::collections::HashMap<String, String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// What `up` must write: the contract's stanza, serialized.
fn contract_stanza(region: &str) -> Value {
    let region = cognigate::contract::Region::parse(region).expect("region");
    serde_json::to_value(cognigate::contract::cognito_stanza("cognito-managed-oauth", &region)).expect("stanza")
}

#[test]
fn cold_up_provisions_the_contract_and_writes_outputs() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let stack = unique_stack("cold");
    let prefix = format!("p-{stack}");
    ws.write(".env", "# my settings\nPORT=9000\n");
    ws.write("config/policies.json", r#"{"policies":[{"name":"rate-limit","policyType":"rate-limit-inbound","handler":{"export":"RateLimitInboundPolicy","module":"$import(@zuplo/runtime)","options":{}}}]}"#);

    let out = ws
        .run(&[
            "up",
            "--stack",
            &stack,
            "--domain-prefix",
            &prefix,
            "--gateway-url",
            "https://gw.example.com",
            "--ttl",
            "2h",
            "--output",
            "json",
        ])
        .success();
    let doc = out.json();
    let pool_id = doc["userPoolId"].as_str().unwrap().to_owned();
    let client_id = doc["clientId"].as_str().unwrap().to_owned();
    assert_eq!(doc["resources"], json!({ "userPool": "created", "domain": "created", "appClient": "created" }));
    assert_eq!(doc["issuer"], format!("https://cognito-idp.us-east-1.amazonaws.com/{pool_id}"));
    // Under an endpoint override (moto here) the keys are fetched where the API
    // is; the issuer stays the one Cognito writes into tokens.
    assert_eq!(doc["jwksUrl"], format!("{}/{pool_id}/.well-known/jwks.json", ws.endpoint));
    assert_eq!(doc["publicUrl"], "https://gw.example.com");
    assert_eq!(doc["authorizationUrl"], format!("https://{prefix}.auth.us-east-1.amazoncognito.com/oauth2/authorize"));
    assert_eq!(doc["tokenUrl"], format!("https://{prefix}.auth.us-east-1.amazoncognito.com/oauth2/token"));
    assert!(doc.get("clientSecret").is_none(), "secret printed without --show-secret");

    // What exists, through the AWS API.
    let aws = sdk(moto.endpoint());
    assert_eq!(pools_named(&aws, &stack), vec![pool_id.clone()]);
    block_on(async {
        let pool = aws.describe_user_pool().user_pool_id(&pool_id).send().await.unwrap().user_pool.unwrap();
        let tags = pool.user_pool_tags().unwrap();
        assert_eq!(tags["cognigate:stack"], stack);
        assert_eq!(tags["cognigate:managed"], "true");
        assert_eq!(tags["cognigate:ttl"], "2h");
        humantime::parse_rfc3339(&tags["cognigate:created-at"]).expect("created-at is RFC 3339");

        let domain = aws.describe_user_pool_domain().domain(&prefix).send().await.unwrap().domain_description.unwrap();
        assert_eq!(domain.user_pool_id(), Some(pool_id.as_str()));
        assert_eq!(domain.status().map(|s| s.as_str()), Some("ACTIVE"));

        let clients = aws.list_user_pool_clients().user_pool_id(&pool_id).send().await.unwrap();
        assert_eq!(clients.user_pool_clients().len(), 1, "exactly one app client");
        let client = aws
            .describe_user_pool_client()
            .user_pool_id(&pool_id)
            .client_id(&client_id)
            .send()
            .await
            .unwrap()
            .user_pool_client
            .unwrap();
        assert!(client.client_secret().is_some_and(|s| !s.is_empty()), "confidential client");
        assert_eq!(client.allowed_o_auth_flows().iter().map(|f| f.as_str()).collect::<Vec<_>>(), ["code"]);
        let mut scopes = client.allowed_o_auth_scopes().to_vec();
        scopes.sort();
        assert_eq!(scopes, ["email", "openid", "profile"]);
        assert_eq!(
            client.callback_urls(),
            ["https://gw.example.com/oauth/callback", "http://localhost:9000/oauth/callback"]
        );
        assert_eq!(client.supported_identity_providers(), ["COGNITO"]);
        assert_eq!(client.allowed_o_auth_flows_user_pool_client(), Some(true));

        // The env file holds exactly these values, privately, with other keys kept.
        let env_text = ws.read(".env");
        assert!(env_text.starts_with("# my settings\nPORT=9000\n"), "{env_text}");
        let env = env_map(&env_text);
        assert_eq!(env["COGNITO_USER_POOL_ID"], pool_id);
        assert_eq!(env["COGNITO_USER_POOL_DOMAIN"], format!("{prefix}.auth.us-east-1.amazoncognito.com"));
        assert_eq!(env["COGNITO_CLIENT_ID"], client_id);
        assert_eq!(env["COGNITO_CLIENT_SECRET"], client.client_secret().unwrap());
        assert_eq!(env["COGNIGATE_PUBLIC_URL"], "https://gw.example.com");
        assert_eq!(env["AWS_ENDPOINT_URL"], ws.endpoint);
        let mode = std::fs::metadata(ws.path(".env")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    });

    // The stanza is the contract's, the other policy is still there.
    let policies: Value = serde_json::from_str(&ws.read("config/policies.json")).unwrap();
    let list = policies["policies"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["name"], "rate-limit");
    assert_eq!(list[1], contract_stanza("us-east-1"));
    assert!(!ws.read("config/policies.json").contains(&env_map(&ws.read(".env"))["COGNITO_CLIENT_SECRET"]));
    // A starter routes file naming the policy.
    let routes: Value = serde_json::from_str(&ws.read("config/routes.oas.json")).unwrap();
    assert_eq!(
        routes["paths"]["/mcp/example"]["post"]["x-zuplo-route"]["policies"]["inbound"][0],
        "cognito-managed-oauth"
    );
}

#[test]
fn rerun_makes_no_mutating_call_and_rewrites_nothing() {
    let moto = MotoServer::shared();
    let proxy = AwsProxy::start(moto.endpoint());
    let ws = Workspace::new(proxy.url());
    let stack = unique_stack("rerun");
    let args = ["up", "--stack", stack.as_str(), "--gateway-url", "https://gw.example.com"];

    ws.run(&args).success();
    // The pool first, then the domain, the client and the resource server
    // (concurrently, any order).
    let mutating = proxy.mutating_calls();
    assert_eq!(mutating.len(), 4, "{mutating:?}");
    assert_eq!(mutating[0], "CreateUserPool");
    let mut rest = mutating[1..].to_vec();
    rest.sort();
    assert_eq!(rest, ["CreateResourceServer", "CreateUserPoolClient", "CreateUserPoolDomain"]);
    let env_before = std::fs::metadata(ws.path(".env")).unwrap().modified().unwrap();
    let policies_before = ws.read("config/policies.json");

    proxy.reset();
    let out = ws.run(&args).success();
    assert!(proxy.mutating_calls().is_empty(), "mutating calls on a re-run: {:?}", proxy.calls());
    assert!(out.stdout.contains("No changes"), "{}", out.stdout);
    // The env file names the pool and client: one round trip of three
    // describes, then the resource server named after the settled URL.
    let warm = proxy.calls();
    assert_eq!(warm.last().map(String::as_str), Some("DescribeResourceServer"), "{warm:?}");
    let mut first = warm[..warm.len() - 1].to_vec();
    first.sort();
    assert_eq!(first, ["DescribeUserPool", "DescribeUserPoolClient", "DescribeUserPoolDomain"]);
    assert_eq!(std::fs::metadata(ws.path(".env")).unwrap().modified().unwrap(), env_before);
    assert_eq!(ws.read("config/policies.json"), policies_before);

    // Without the env file the stack is found by name and tag, still read-only.
    std::fs::remove_file(ws.path(".env")).unwrap();
    proxy.reset();
    ws.run(&args).success();
    assert!(proxy.mutating_calls().is_empty(), "{:?}", proxy.calls());
    assert!(proxy.count("ListUserPools") >= 1);
    assert!(env_map(&ws.read(".env")).contains_key("COGNITO_CLIENT_SECRET"));
}

#[test]
fn settings_file_is_read_and_flags_win() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let stack = unique_stack("toml");
    ws.write(
        "cognigate.toml",
        &format!("stack = \"{stack}\"\ngateway_urls = [\"https://from-file.example.com\"]\nenv_file = \"gateway.env\"\npolicy_name = \"from-file\"\n"),
    );
    let out = ws.run(&["up", "--policy-name", "from-flag", "--output", "json"]).success();
    let doc = out.json();
    assert_eq!(doc["stack"], stack.as_str());
    assert_eq!(doc["callbackUrls"][0], "https://from-file.example.com/oauth/callback");
    assert!(ws.path("gateway.env").exists());
    let policies: Value = serde_json::from_str(&ws.read("config/policies.json")).unwrap();
    assert_eq!(policies["policies"][0]["name"], "from-flag");
}

#[test]
fn show_secret_prints_it_only_when_asked() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let stack = unique_stack("secret");
    let plain = ws.run(&["up", "--stack", &stack, "-vv"]).success();
    let secret = env_map(&ws.read(".env"))["COGNITO_CLIENT_SECRET"].clone();
    assert!(!plain.stdout.contains(&secret) && !plain.stderr.contains(&secret), "secret leaked into output");
    let shown = ws.run(&["up", "--stack", &stack, "--show-secret", "--output", "json"]).success();
    assert_eq!(shown.json()["clientSecret"], secret.as_str());
}

#[test]
fn adopted_pool_gets_domain_and_client_but_no_tags() {
    let moto = MotoServer::shared();
    let aws = sdk(moto.endpoint());
    let stack = unique_stack("adopt");
    let pool_id = block_on(async {
        aws.create_user_pool()
            .pool_name(format!("{stack}-existing"))
            .send()
            .await
            .unwrap()
            .user_pool
            .unwrap()
            .id
            .unwrap()
    });
    let ws = Workspace::new(moto.endpoint());
    let doc = ws.run(&["up", "--stack", &stack, "--user-pool-id", &pool_id, "--output", "json"]).success().json();
    assert_eq!(doc["userPoolId"], pool_id.as_str());
    // A pool made with Cognito's default lets anyone sign up; an adopted pool
    // keeps its sign-up setting unless one is asked for.
    assert_eq!(doc["resources"]["userPool"], "adopted");
    assert_eq!(doc["resources"]["appClient"], "created");
    block_on(async {
        let pool = aws.describe_user_pool().user_pool_id(&pool_id).send().await.unwrap().user_pool.unwrap();
        assert!(pool.admin_create_user_config().is_none_or(|c| !c.allow_admin_create_user_only));
        assert!(
            pool.user_pool_tags().is_none_or(|t| t.is_empty()),
            "adopted pool was tagged: {:?}",
            pool.user_pool_tags()
        );
    });
    assert!(pools_named(&aws, &stack).is_empty(), "a managed pool was created besides the adopted one");
}

#[test]
fn bad_input_is_refused_before_any_aws_call() {
    let moto = MotoServer::shared();
    let proxy = AwsProxy::start(moto.endpoint());
    let ws = Workspace::new(proxy.url());
    let stack = unique_stack("bad");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--stack", "has space"], "invalid stack name"),
        (vec!["--stack=-dash"], "invalid stack name"),
        (vec!["--stack", &stack, "--domain-prefix", "my-aws-login"], "reserves the word \"aws\""),
        (vec!["--stack", &stack, "--domain-prefix", "Upper"], "lowercase"),
        (vec!["--stack", &stack, "--domain-prefix", "bad-"], "start and end"),
        (vec!["--stack", &stack, "--gateway-url", "http://gw.example.com"], "only for localhost"),
        (vec!["--stack", &stack, "--callback-url", "https://app.example.com/cb#frag"], "fragment"),
        (vec!["--stack", &stack, "--region", "useast1"], "invalid region"),
        (vec!["--stack", &stack, "--user-pool-id", "not-a-pool"], "invalid user pool id"),
        (vec!["--stack", &stack, "--ttl", "forever"], "invalid ttl"),
        (vec!["--stack", &stack, "--no-localhost-callback"], "no callback URLs"),
        (vec![], "no stack name"),
    ];
    for (args, says) in cases {
        let mut full = vec!["up"];
        full.extend(args);
        ws.run(&full).failure(64, says);
    }
    // Unknown flags are usage errors too.
    ws.run(&["up", "--stak", "x"]).failure(64, "--stak");
    assert!(proxy.calls().is_empty(), "AWS was called for bad input: {:?}", proxy.calls());
    assert!(pools_named(&sdk(moto.endpoint()), &stack).is_empty());
}

#[test]
fn missing_credentials_say_how_to_provide_them() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let run = crate::support::cli::Run::from(
        crate::support::cli::isolated_command(ws.dir.path())
            .args(["up", "--stack", "nocreds", "--region", "us-east-1", "--endpoint-url", moto.endpoint()])
            .output()
            .unwrap(),
    );
    let run = run.failure(1, "no AWS credentials found");
    assert!(run.stderr.contains("AWS_PROFILE") && run.stderr.contains("AWS_ACCESS_KEY_ID"), "{}", run.stderr);
}

#[test]
fn unreachable_endpoint_is_a_clear_error() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let ws = Workspace::bare(&format!("http://127.0.0.1:{port}"));
    ws.run(&["up", "--stack", &unique_stack("unreach")]).failure(1, "cannot reach");
}

/// An endpoint that answers like a web server, not like Cognito (an unknown
/// region's error page, a wrong proxy): every request gets an HTML 500.
fn html_error_server() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0u8; 65536];
            let _ = stream.read(&mut buffer);
            let body = "<html><body><h1>500 Internal Server Error</h1></body></html>";
            let _ = write!(
                stream,
                "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{address}")
}

#[test]
fn an_answer_that_is_not_cognitos_is_one_clear_line() {
    let ws = Workspace::bare(&html_error_server());
    let run = ws.run(&["up", "--stack", &unique_stack("html500")]).failure(1, "(HTTP 500)");
    let error: Vec<&str> = run.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(error.len(), 1, "more than one line:\n{}", run.stderr);
    let line = error[0];
    assert!(line.starts_with("error: DescribeUserPoolDomain got an answer that is not Cognito's"), "{line}");
    assert!(line.contains(&ws.endpoint) && line.contains("--endpoint-url"), "no hint: {line}");
    for dump in ["SdkError", "raw:", "Response {", "<html>"] {
        assert!(!line.contains(dump), "debug dump ({dump}) in: {line}");
    }
}

#[test]
fn domain_prefix_of_another_pool_is_refused_with_a_suggestion() {
    let moto = MotoServer::shared();
    let aws = sdk(moto.endpoint());
    let stack = unique_stack("taken");
    let prefix = format!("taken-{}", std::process::id());
    block_on(async {
        let other =
            aws.create_user_pool().pool_name("someone-else").send().await.unwrap().user_pool.unwrap().id.unwrap();
        aws.create_user_pool_domain().user_pool_id(&other).domain(&prefix).send().await.unwrap();
    });
    let ws = Workspace::new(moto.endpoint());
    let run = ws.run(&["up", "--stack", &stack, "--domain-prefix", &prefix]).failure(1, "already taken");
    assert!(run.stderr.contains(&format!("--domain-prefix {prefix}-")), "{}", run.stderr);
    assert!(pools_named(&aws, &stack).is_empty(), "a pool was created although the domain was taken");
    assert!(!ws.path(".env").exists());
}

#[test]
fn unreadable_policies_file_is_never_overwritten() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    ws.write("config/policies.json", "{ \"policies\": [ oops ] }");
    let run = ws.run(&["up", "--stack", &unique_stack("badjson")]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("line 1") && run.stderr.contains("does not overwrite"), "{}", run.stderr);
    assert_eq!(ws.read("config/policies.json"), "{ \"policies\": [ oops ] }");
    // The env file was still written: the secret is not lost.
    assert!(env_map(&ws.read(".env")).contains_key("COGNITO_CLIENT_SECRET"));
}

/// Ids in the env file are only a hint. One of another
/// region or not shaped like an id is ignored with a warning and never sent
/// (the strict peer would record a malformed ClientId as a violation).
#[test]
fn env_file_ids_of_the_wrong_shape_or_region_are_ignored_with_a_warning() {
    let moto = MotoServer::shared();
    let proxy = AwsProxy::start(moto.endpoint());
    let ws = Workspace::new(proxy.url());
    ws.write(".env", "COGNITO_USER_POOL_ID=eu-west-1_Abc123\nCOGNITO_CLIENT_ID=not a client id!\n");
    let run = ws.run(&["up", "--stack", &unique_stack("badhint"), "--output", "json"]).success();
    assert!(run.stderr.contains("ignoring COGNITO_USER_POOL_ID") && run.stderr.contains("eu-west-1"), "{}", run.stderr);
    assert!(run.stderr.contains("ignoring COGNITO_CLIENT_ID"), "{}", run.stderr);
    // Discovery by name took over: the stack was created, without a call on the hint.
    assert_eq!(proxy.count("DescribeUserPoolClient"), 0, "{:?}", proxy.calls());
    assert!(run.json()["userPoolId"].as_str().is_some_and(|id| id.starts_with("us-east-1_")));
}

/// A custom domain is served by CloudFront; `up` names the
/// distribution and the alias record to create, in JSON and in text (a
/// re-run reads it back from DescribeUserPoolDomain).
#[test]
fn custom_domain_prints_its_cloudfront_target_and_alias_record() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let stack = unique_stack("cfdomain");
    let host = format!("auth.{stack}.example.com");
    let args = [
        "up",
        "--stack",
        &stack,
        "--custom-domain",
        &host,
        "--certificate-arn",
        "arn:aws:acm:us-east-1:123456789012:certificate/0000",
    ];
    let doc = ws.run(&[&args[..], &["--output", "json"]].concat()).success().json();
    let target = doc["customDomain"]["cloudFrontDomain"].as_str().unwrap_or_default().to_owned();
    assert!(!target.is_empty(), "no CloudFront target: {doc}");
    assert_eq!(doc["customDomain"]["aliasRecord"]["name"], host.as_str());
    assert_eq!(doc["customDomain"]["aliasRecord"]["value"], target.as_str());
    let text = ws.run(&args).success().stdout;
    assert!(text.contains(&format!("CNAME {host} -> {target}")), "{text}");
}

/// The domain is created with ManagedLoginVersion 1 sent
/// explicitly (the strict peer, like Cognito, reports what it was given).
#[test]
fn domain_is_created_on_the_classic_hosted_ui_explicitly() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let prefix = format!("mlv1-{}", std::process::id());
    ws.run(&["up", "--stack", &unique_stack("mlv1"), "--domain-prefix", &prefix]).success();
    let aws = sdk(&ws.endpoint);
    let version = block_on(async {
        let described = aws.describe_user_pool_domain().domain(&prefix).send().await.unwrap();
        described.domain_description().and_then(|d| d.managed_login_version())
    });
    assert_eq!(version, Some(1));
}

/// An adopted pool whose domain is on managed login (v2)
/// gets Cognito's default branding style for the new app client, without
/// which its login pages do not work; a second run leaves it alone.
#[test]
fn adopted_managed_login_domain_gets_a_branding_style_for_the_client() {
    let moto = MotoServer::shared();
    let ws = Workspace::new(moto.endpoint());
    let aws = sdk(&ws.endpoint);
    let prefix = format!("mlv2-{}", std::process::id());
    let pool_id = block_on(async {
        let id = aws.create_user_pool().pool_name("adopted-v2").send().await.unwrap().user_pool.unwrap().id.unwrap();
        aws.create_user_pool_domain().user_pool_id(&id).domain(&prefix).managed_login_version(2).send().await.unwrap();
        id
    });
    let stack = unique_stack("mlv2");
    let doc = ws.run(&["up", "--stack", &stack, "--user-pool-id", &pool_id, "--output", "json"]).success().json();
    let client_id = doc["clientId"].as_str().unwrap().to_owned();
    let branding = block_on(async {
        aws.describe_managed_login_branding_by_client().user_pool_id(&pool_id).client_id(&client_id).send().await
    });
    let branding = branding.expect("no branding style for the client").managed_login_branding.unwrap();
    assert!(branding.use_cognito_provided_values());
    ws.run(&["up", "--stack", &stack, "--user-pool-id", &pool_id]).success();
}

//! The strict Cognito peer itself: it must refuse what real Cognito refuses
//! (or the provisioning suites prove nothing), and record each refusal under
//! the scope that sent it.

use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata;
use aws_sdk_cognitoidentityprovider::types::{
    DeletionProtectionType, ExplicitAuthFlowsType, OAuthFlowType, ResourceServerScopeType,
};

use crate::support::cli::{block_on, sdk};
use crate::support::moto::MotoServer;
use crate::support::strict::{scoped, violations};

/// A client under a scope of its own, and that scope's endpoint.
fn scoped_client() -> (Client, String) {
    let endpoint = scoped(MotoServer::shared().endpoint());
    (sdk(&endpoint), endpoint)
}

async fn pool(aws: &Client, protection: DeletionProtectionType) -> String {
    let pool = aws.create_user_pool().pool_name("strict-peer").deletion_protection(protection).send().await.unwrap();
    pool.user_pool.unwrap().id.unwrap()
}

/// The refusal's code and message, asserting it was recorded once in `endpoint`'s scope.
fn refused<E: ProvideErrorMetadata>(endpoint: &str, err: &E) -> (String, String) {
    let found = violations(endpoint).expect("the strict peer answers /strict/violations");
    assert_eq!(found.len(), 1, "one refusal, one violation: {found:?}");
    (err.code().unwrap_or_default().to_owned(), err.message().unwrap_or_default().to_owned())
}

#[test]
fn model_violations_are_refused_naming_the_operation_and_the_member() {
    let (aws, endpoint) = scoped_client();
    let err = block_on(aws.create_user_pool().pool_name("x".repeat(129)).send()).unwrap_err().into_service_error();
    let (code, message) = refused(&endpoint, &err);
    assert_eq!(code, "InvalidParameterException");
    assert!(message.contains("CreateUserPool") && message.contains("PoolName") && message.contains("128"), "{message}");

    let (aws, endpoint) = scoped_client();
    let err = block_on(aws.describe_user_pool().user_pool_id("no-underscore").send()).unwrap_err().into_service_error();
    let (_, message) = refused(&endpoint, &err);
    assert!(message.contains("UserPoolId") && message.contains("pattern"), "{message}");

    let (aws, endpoint) = scoped_client();
    let err = block_on(aws.create_user_pool_domain().user_pool_id("us-east-1_abc").domain("Upper.Example.com").send())
        .unwrap_err()
        .into_service_error();
    let (_, message) = refused(&endpoint, &err);
    assert!(message.contains("Domain"), "{message}");
}

#[test]
fn custom_domains_pass_the_domain_member_within_its_63_characters() {
    let (aws, endpoint) = scoped_client();
    block_on(async {
        let id = pool(&aws, DeletionProtectionType::Inactive).await;
        aws.create_user_pool_domain()
            .user_pool_id(&id)
            .domain("auth.strict-peer.example.com")
            .custom_domain_config(
                aws_sdk_cognitoidentityprovider::types::CustomDomainConfigType::builder()
                    .certificate_arn("arn:aws:acm:us-east-1:123456789012:certificate/abc")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let long = format!("{}.example.com", "a".repeat(60));
        let err = aws.create_user_pool_domain().user_pool_id(&id).domain(long).send().await.unwrap_err();
        assert!(err.into_service_error().message().unwrap_or_default().contains("63"));
    });
    assert_eq!(violations(&endpoint).unwrap().len(), 1);
}

#[test]
fn default_redirect_uri_outside_the_callback_urls_is_refused() {
    let (aws, endpoint) = scoped_client();
    let err = block_on(async {
        let id = pool(&aws, DeletionProtectionType::Inactive).await;
        aws.create_user_pool_client()
            .user_pool_id(&id)
            .client_name("c")
            .callback_urls("https://a.example.com/cb")
            .default_redirect_uri("https://b.example.com/cb")
            .send()
            .await
            .unwrap_err()
            .into_service_error()
    });
    let (code, message) = refused(&endpoint, &err);
    assert_eq!(code, "InvalidParameterException");
    assert!(message.contains("DefaultRedirectURI"), "{message}");
}

#[test]
fn callback_urls_must_be_https_except_localhost_and_carry_no_fragment() {
    for (url, says) in [("http://gw.example.com/cb", "https"), ("https://gw.example.com/cb#x", "fragment")] {
        let (aws, endpoint) = scoped_client();
        let err = block_on(async {
            let id = pool(&aws, DeletionProtectionType::Inactive).await;
            aws.create_user_pool_client()
                .user_pool_id(&id)
                .client_name("c")
                .callback_urls("http://localhost:9000/cb")
                .callback_urls(url)
                .send()
                .await
                .unwrap_err()
                .into_service_error()
        });
        let (_, message) = refused(&endpoint, &err);
        assert!(message.contains("CallbackURLs[1]") && message.contains(says), "{message}");
    }
}

#[test]
fn delete_user_pool_is_refused_while_a_domain_exists_or_protection_is_on() {
    let (aws, endpoint) = scoped_client();
    block_on(async {
        let id = pool(&aws, DeletionProtectionType::Inactive).await;
        let prefix = format!("strict-{}", std::process::id());
        aws.create_user_pool_domain().user_pool_id(&id).domain(&prefix).send().await.unwrap();
        let err = aws.delete_user_pool().user_pool_id(&id).send().await.unwrap_err().into_service_error();
        assert_eq!(err.code(), Some("InvalidParameterException"));
        assert!(err.message().unwrap_or_default().contains("domain configured"), "{err:?}");
        aws.delete_user_pool_domain().user_pool_id(&id).domain(&prefix).send().await.unwrap();
        aws.delete_user_pool().user_pool_id(&id).send().await.unwrap();

        let id = pool(&aws, DeletionProtectionType::Active).await;
        let err = aws.delete_user_pool().user_pool_id(&id).send().await.unwrap_err().into_service_error();
        assert!(err.message().unwrap_or_default().contains("deletion protection"), "{err:?}");
    });
    assert_eq!(violations(&endpoint).unwrap().len(), 2);
}

#[test]
fn update_user_pool_client_resets_what_it_is_not_sent() {
    let (aws, endpoint) = scoped_client();
    let client = block_on(async {
        let id = pool(&aws, DeletionProtectionType::Inactive).await;
        let created = aws
            .create_user_pool_client()
            .user_pool_id(&id)
            .client_name("c")
            .logout_urls("https://gw.example.com/logout")
            .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
            .send()
            .await
            .unwrap();
        let client_id = created.user_pool_client.unwrap().client_id.unwrap();
        aws.update_user_pool_client().user_pool_id(&id).client_id(&client_id).client_name("c").send().await.unwrap();
        aws.describe_user_pool_client().user_pool_id(&id).client_id(&client_id).send().await.unwrap()
    });
    let client = client.user_pool_client.unwrap();
    assert!(client.logout_urls().is_empty(), "omitted LogoutURLs were kept: {:?}", client.logout_urls());
    assert_eq!(client.explicit_auth_flows().len(), 3, "omitted ExplicitAuthFlows get Cognito's three defaults");
    assert!(violations(&endpoint).unwrap().is_empty());
}

#[test]
fn update_user_pool_resets_deletion_protection_it_is_not_sent() {
    let (aws, _) = scoped_client();
    let described = block_on(async {
        let id = pool(&aws, DeletionProtectionType::Active).await;
        aws.update_user_pool().user_pool_id(&id).send().await.unwrap();
        aws.describe_user_pool().user_pool_id(&id).send().await.unwrap()
    });
    assert_eq!(described.user_pool.unwrap().deletion_protection, Some(DeletionProtectionType::Inactive));
}

#[test]
fn a_client_holds_at_most_two_secrets_and_keeps_its_last() {
    let (aws, endpoint) = scoped_client();
    block_on(async {
        let id = pool(&aws, DeletionProtectionType::Inactive).await;
        let created = aws.create_user_pool_client().user_pool_id(&id).client_name("c").generate_secret(true);
        let client = created.send().await.unwrap().user_pool_client.unwrap();
        let client_id = client.client_id.unwrap();
        let added = aws.add_user_pool_client_secret().user_pool_id(&id).client_id(&client_id).send().await.unwrap();
        assert!(added.client_secret_descriptor.unwrap().client_secret_value.is_some());
        let err = aws.add_user_pool_client_secret().user_pool_id(&id).client_id(&client_id).send().await.unwrap_err();
        assert_eq!(err.into_service_error().code(), Some("LimitExceededException"));

        let listed = aws.list_user_pool_client_secrets().user_pool_id(&id).client_id(&client_id).send().await.unwrap();
        let ids: Vec<String> =
            listed.client_secrets().iter().map(|s| s.client_secret_id().unwrap().to_owned()).collect();
        assert_eq!(ids.len(), 2);
        let delete = |secret: &str| {
            aws.delete_user_pool_client_secret().user_pool_id(&id).client_id(&client_id).client_secret_id(secret).send()
        };
        delete(&ids[0]).await.unwrap();
        let err = delete(&ids[1]).await.unwrap_err().into_service_error();
        assert_eq!(err.code(), Some("InvalidParameterException"), "the last secret cannot go");
    });
    // The SDK retries LimitExceededException as if it were throttling, so the
    // third secret may be refused more than once.
    let found = violations(&endpoint).unwrap();
    let refused = |op: &str| found.iter().filter(|v| v["operation"] == op).count();
    assert!(refused("AddUserPoolClientSecret") >= 1, "the third secret is a violation: {found:?}");
    assert_eq!(refused("DeleteUserPoolClientSecret"), 1, "so is deleting the last one: {found:?}");
}

async fn resource_server(aws: &Client, pool_id: &str, identifier: &str) -> Result<(), String> {
    let scope = ResourceServerScopeType::builder().scope_name("mcp:all").scope_description("all").build().unwrap();
    aws.create_resource_server()
        .user_pool_id(pool_id)
        .identifier(identifier)
        .name("gateway")
        .scopes(scope)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("{}: {}", e.code().unwrap_or_default(), e.message().unwrap_or_default()))
}

#[test]
fn client_credentials_clients_follow_cognitos_rules() {
    let (aws, endpoint) = scoped_client();
    let id = block_on(pool(&aws, DeletionProtectionType::Inactive));
    block_on(resource_server(&aws, &id, "https://mcp.example.com")).unwrap();
    // The refusal's message, or `Ok` for a client Cognito takes.
    let client = |flows: &[OAuthFlowType], scopes: &[&str], secret: bool| -> Result<(), String> {
        block_on(
            aws.create_user_pool_client()
                .user_pool_id(&id)
                .client_name("machine")
                .generate_secret(secret)
                .set_allowed_o_auth_flows(Some(flows.to_vec()))
                .set_allowed_o_auth_scopes(Some(scopes.iter().map(|s| (*s).to_owned()).collect()))
                .allowed_o_auth_flows_user_pool_client(true)
                .send(),
        )
        .map(|_| ())
        .map_err(|e| e.into_service_error().message().unwrap_or_default().to_owned())
    };
    let all = "https://mcp.example.com/mcp:all";
    let cc = OAuthFlowType::ClientCredentials;
    let ok = client(std::slice::from_ref(&cc), &[all], true);
    assert!(ok.is_ok(), "a machine client as cognigate makes it: {ok:?}");
    assert!(violations(&endpoint).unwrap().is_empty());

    let refusals = [
        (client(&[cc.clone(), OAuthFlowType::Code], &[all], true), "along with code flow"),
        (client(std::slice::from_ref(&cc), &["openid", all], true), "openid is not supported"),
        (client(std::slice::from_ref(&cc), &[all], false), "client secret"),
        (client(std::slice::from_ref(&cc), &["https://mcp.example.com/mcp:nope"], true), "Invalid scope requested"),
    ];
    for (result, expected) in &refusals {
        assert!(result.as_ref().is_err_and(|m| m.contains(expected)), "{expected}: {result:?}");
    }
    let found = violations(&endpoint).unwrap();
    let codes: Vec<&str> = found.iter().filter_map(|v| v["code"].as_str()).collect();
    assert_eq!(
        codes,
        [
            "InvalidOAuthFlowException",
            "InvalidOAuthFlowException",
            "InvalidOAuthFlowException",
            "ScopeDoesNotExistException"
        ]
    );
}

#[test]
fn resource_servers_have_their_formats_and_a_quota_per_pool() {
    let (aws, endpoint) = scoped_client();
    let id = block_on(pool(&aws, DeletionProtectionType::Inactive));
    let bad = block_on(resource_server(&aws, &id, "has space")).unwrap_err();
    assert!(bad.contains("Identifier") && bad.contains("pattern"), "{bad}");
    let bad_scope = block_on(
        aws.create_resource_server()
            .user_pool_id(&id)
            .identifier("https://mcp.example.com")
            .name("gateway")
            .scopes(ResourceServerScopeType::builder().scope_name("a/b").scope_description("d").build().unwrap())
            .send(),
    )
    .unwrap_err();
    let message = bad_scope.as_service_error().and_then(|e| e.message()).unwrap_or_default().to_owned();
    assert!(message.contains("ScopeName"), "{message}");
    assert_eq!(violations(&endpoint).unwrap().len(), 2);

    for n in 0..25 {
        block_on(resource_server(&aws, &id, &format!("https://rs{n}.example.com"))).unwrap();
    }
    let over = block_on(resource_server(&aws, &id, "https://rs25.example.com")).unwrap_err();
    assert!(over.starts_with("LimitExceededException") && over.contains("25"), "{over}");
    let again = block_on(resource_server(&aws, &id, "https://rs0.example.com")).unwrap_err();
    assert!(again.contains("already exists"), "{again}");
    let listed = block_on(aws.list_resource_servers().user_pool_id(&id).max_results(50).send()).unwrap();
    assert_eq!(listed.resource_servers().len(), 25);
}

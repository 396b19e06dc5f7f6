//! Request-shape tests on the AWS SDK's replay client: a [`Cognito`] whose
//! calls are answered from a list and recorded, so a test can assert exactly
//! what cognigate would send to the real service (update semantics moto cannot
//! show).

use aws_sdk_cognitoidentityprovider::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_types::body::SdkBody;
use serde_json::Value;

use super::Cognito;

/// A client that sends through `replay`, without retries: one answer per request.
pub(crate) fn cognito(replay: &StaticReplayClient) -> Cognito {
    let config = aws_sdk_cognitoidentityprovider::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("a", "b", None, None, "test"))
        .http_client(replay.clone())
        .retry_config(aws_sdk_cognitoidentityprovider::config::retry::RetryConfig::disabled())
        .build();
    Cognito::from_conf(config)
}

/// A 200 answer with this JSON body.
pub(crate) fn answer(body: &str) -> ReplayEvent {
    answer_with(200, body)
}

pub(crate) fn answer_with(status: u16, body: &str) -> ReplayEvent {
    ReplayEvent::new(
        http::Request::builder().uri("https://cognito-idp.us-east-1.amazonaws.com/").body(SdkBody::empty()).unwrap(),
        http::Response::builder().status(status).body(SdkBody::from(body.to_owned())).unwrap(),
    )
}

/// What was sent: (operation, JSON body) per request, in order.
pub(crate) fn sent(replay: &StaticReplayClient) -> Vec<(String, Value)> {
    replay
        .actual_requests()
        .map(|r| {
            let target = r.headers().get("x-amz-target").unwrap_or_default().rsplit('.').next().unwrap_or_default();
            let body = r.body().bytes().map(|b| serde_json::from_slice(b).unwrap()).unwrap_or(Value::Null);
            (target.to_owned(), body)
        })
        .collect()
}

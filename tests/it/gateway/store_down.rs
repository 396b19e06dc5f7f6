//! Redis down or hanging: OAuth endpoints answer 503 with `Retry-After`
//! instead of a 500 or a request held open, the proxy keeps serving the
//! tokens it can verify without the store, and the endpoints recover when
//! Redis does.

use std::time::Duration;

use axum::http::{StatusCode, header};
use serde_json::{Value, json};

use super::harness::{Gateway, REDIRECT_URI, RedisServer, authorize_uri, bearer, json_body, pkce};
use axum::body::Body;

/// Guards the test against the very hang it checks for; not a timing
/// assertion (a correct gateway answers in a fraction of it).
const HANG_GUARD: Duration = Duration::from_secs(60);

async fn on_redis(redis: &RedisServer) -> Gateway {
    let routes =
        |up: std::net::SocketAddr| json!({"paths": {"/mcp/echo": super::harness::route(&format!("http://{up}/mcp"))}});
    Gateway::start_on(routes, Some(&redis.url)).await
}

fn register_body() -> Value {
    json!({"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none"})
}

/// The three kinds of OAuth endpoint (JSON API, browser page, token) all
/// answer 503 with `Retry-After`.
async fn assert_oauth_unavailable(gw: &Gateway, client_id: &str) {
    let register = tokio::time::timeout(HANG_GUARD, gw.post_json("/oauth/register", &register_body()))
        .await
        .expect("register hung");
    assert_eq!(register.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(register.headers().contains_key(header::RETRY_AFTER), "{:?}", register.headers());
    assert_eq!(json_body(register).await["error"], "temporarily_unavailable");

    let (_, challenge) = pkce();
    let authorize = tokio::time::timeout(HANG_GUARD, gw.get(&authorize_uri(client_id, &challenge, None)))
        .await
        .expect("authorize hung");
    assert_eq!(authorize.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(authorize.headers().contains_key(header::RETRY_AFTER));

    let token = tokio::time::timeout(HANG_GUARD, gw.refresh("rt", client_id)).await.expect("token hung");
    assert_eq!(token.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(token.headers().contains_key(header::RETRY_AFTER));
}

async fn assert_proxy_serves(gw: &Gateway, token: &str) {
    let response =
        tokio::time::timeout(HANG_GUARD, gw.send(bearer("/mcp/echo", token).body(Body::from("{}")).unwrap()))
            .await
            .expect("proxy hung");
    assert_eq!(response.status(), StatusCode::OK, "a token the gateway can verify is served without Redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_oauth_answers_503_and_the_proxy_keeps_serving() {
    let redis = RedisServer::start();
    let gw = on_redis(&redis).await;
    let client_id = gw.register().await;
    let token = gw.mint("echo", super::harness::now(), 600);
    drop(redis);
    assert_oauth_unavailable(&gw, &client_id).await;
    assert_proxy_serves(&gw, &token).await;
}

/// A Redis restarted with persistence answers `LOADING` until its data is
/// back in memory (seconds, with a large append-only file): a moment to wait
/// out (503), not a server error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_loading_its_data_after_a_restart_answers_503_not_500() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap().to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let redis = RedisServer::start_with(port, &["--dir", &dir_arg]);
    let gw = on_redis(&redis).await;
    let client_id = gw.register().await;
    let token = gw.mint("echo", super::harness::now(), 600);
    // Enough data that the next server, loading it with a delay per key,
    // stays in `LOADING` for the rest of the test.
    let mut conn = redis::Client::open(redis.url.as_str()).unwrap().get_connection().unwrap();
    let mut fill = redis::pipe();
    for i in 0..20_000 {
        fill.set(format!("filler:{i}"), "x".repeat(64)).ignore();
    }
    fill.query::<()>(&mut conn).unwrap();
    redis::cmd("SAVE").query::<()>(&mut conn).unwrap();
    drop(conn);
    drop(redis);
    let loading = RedisServer::start_with(
        port,
        &["--dir", &dir_arg, "--key-load-delay", "1000", "--loading-process-events-interval-bytes", "1024"],
    );
    let mut probe = redis::Client::open(loading.url.as_str()).unwrap().get_connection().unwrap();
    let answer = redis::cmd("PING").query::<String>(&mut probe).unwrap_err();
    assert_eq!(answer.code(), Some("LOADING"), "the restarted server is still loading: {answer}");
    // The gateway's connection died with the first server: one call finds
    // that out (503), then calls fail fast for the store's one-second
    // back-off. Wait it out, so the calls below reach the loading server.
    let _ = gw.post_json("/oauth/register", &register_body()).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_oauth_unavailable(&gw, &client_id).await;
    assert_proxy_serves(&gw, &token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_hanging_oauth_answers_503_and_recovers_when_it_resumes() {
    let redis = RedisServer::start();
    let gw = on_redis(&redis).await;
    let client_id = gw.register().await;
    let token = gw.mint("echo", super::harness::now(), 600);
    redis.signal("STOP");
    // Several at once: none may queue behind another's wait for Redis.
    let body = register_body();
    let concurrent: Vec<_> = (0..8).map(|_| gw.post_json("/oauth/register", &body)).collect();
    let answers = tokio::time::timeout(HANG_GUARD, futures_util::future::join_all(concurrent)).await.expect("hung");
    for answer in &answers {
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(answer.headers().contains_key(header::RETRY_AFTER));
    }
    assert_oauth_unavailable(&gw, &client_id).await;
    assert_proxy_serves(&gw, &token).await;

    redis.signal("CONT");
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    loop {
        let response = gw.post_json("/oauth/register", &register_body()).await;
        if response.status() == StatusCode::CREATED {
            break;
        }
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(tokio::time::Instant::now() < deadline, "the gateway did not recover after Redis resumed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

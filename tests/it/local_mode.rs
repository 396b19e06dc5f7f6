//! The local mode (`scripts/demo`) and the local login page (`local/login_page.py`).
//!
//! `scripts/demo --check` runs from nothing to a tool call on the debug
//! binaries (`COGNIGATE_BIN_DIR`) and free ports, and the interactive mode
//! stops every process it started on Ctrl-C. The login page is held to what a
//! person sees in a browser: headless Chromium signs in (a wrong password
//! first), the error page names what is wrong for an unknown client or
//! callback, and `/logout` ends the session. MCP Inspector, run as the demo
//! tells a person to run it, connects with no extra flag.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::e2e::{Cognito, EMAIL, PASSWORD, USERNAME, World};
use crate::support::peers::{self, Toolchain, block_on, http_client};

const DEMO_TIMEOUT: Duration = Duration::from_secs(300);
const CALLBACK: &str = "http://localhost:9/oauth/callback";

/// `scripts/demo` on the debug binaries, the test venv, a temp state folder and `port`.
fn demo(tools: &Toolchain, state: &Path, port: u16) -> Command {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_cognigate")).parent().expect("binary dir").to_owned();
    let mut cmd = Command::new(peers::repo_root().join("scripts/demo"));
    cmd.args(["--port", &port.to_string()])
        .env("COGNIGATE_BIN_DIR", bin_dir)
        .env("COGNIGATE_TEST_VENV", &tools.venv)
        .env("COGNIGATE_DEMO_STATE", state)
        .env("RUST_LOG", "info")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL");
    cmd
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// The ports of the `http://127.0.0.1:PORT` URLs the demo announced.
fn announced_ports(stdout: &str) -> Vec<u16> {
    stdout
        .split("http://127.0.0.1:")
        .skip(1)
        .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .collect()
}

fn assert_proved(stdout: &str, ctx: &str) {
    for line in [
        "username: demo",
        "password: Cognigate-Demo-1",
        "demo user       created in us-east-1_",
        "tools/list      add, echo, roll_dice, server_time",
        "tools/call      add(a=2, b=40) -> 42",
        "login page: sign in",
        "consent: approve",
        "The path works",
        "Added machine client demo-bot",
        "machine client  tools/call add(a=2, b=40) -> 42 (token without a refresh token: True)",
        "The machine path works",
    ] {
        assert!(stdout.contains(line), "the demo did not print {line:?}:\n{ctx}");
    }
}

#[test]
fn demo_check_goes_from_nothing_to_a_tool_call_and_leaves_nothing_running() {
    let tools = Toolchain::require();
    let state = tempfile::Builder::new().prefix("cognigate-demo-").tempdir().expect("temp dir");
    let port = peers::free_port();

    let mut cmd = demo(&tools, state.path(), port);
    cmd.arg("--check");
    let out = peers::run("scripts/demo --check", cmd, DEMO_TIMEOUT);
    let ctx = out.describe();
    assert!(out.status.success(), "scripts/demo --check failed:\n{ctx}");
    assert_proved(&out.stdout, &ctx);
    assert!(out.stdout.contains("Check passed; stopping."), "{ctx}");
    assert!(out.stdout.contains(&format!("http://localhost:{port}/mcp/example")), "{ctx}");

    // The env file keeps its secret to itself and points the browser leg at the login page.
    let env_file = state.path().join(".env");
    let env = std::fs::read_to_string(&env_file).expect("the demo's env file");
    let secret = env.lines().find_map(|l| l.strip_prefix("COGNITO_CLIENT_SECRET=")).expect("a client secret");
    assert!(!secret.is_empty() && !out.stdout.contains(secret) && !out.stderr.contains(secret), "secret printed");
    assert!(env.contains("COGNITO_USER_POOL_DOMAIN=127.0.0.1:"), "{env}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&env_file).expect("env file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the env file is private");

    // Every process it started is gone: the gateway's port and each announced one are free.
    let ports = announced_ports(&out.stdout);
    assert!(ports.len() >= 3, "moto, the example upstream and the login page announce ports: {ctx}");
    for p in ports.into_iter().chain([port]) {
        assert!(port_is_free(p), "port {p} is still taken after --check:\n{ctx}");
    }
}

/// `--help` is the script's opening comment and nothing of its code.
#[test]
fn demo_help_prints_the_opening_comment_only() {
    let out = Command::new(peers::repo_root().join("scripts/demo")).arg("--help").output().expect("run scripts/demo");
    assert!(out.status.success(), "scripts/demo --help failed: {out:?}");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.starts_with("The local mode:"), "help does not open with the summary:\n{help}");
    assert!(help.contains("COGNIGATE_TEST_VENV"), "help does not name the venv variable:\n{help}");
    let last = help.lines().last().unwrap_or_default();
    assert!(last.ends_with("(default: any free port)."), "help ends with a line of code: {last:?}");
    assert!(!help.contains("set -euo") && !help.contains("#!"), "help prints script code:\n{help}");
}

#[test]
fn demo_names_a_busy_gateway_port_and_how_to_pick_another() {
    let tools = Toolchain::require();
    let state = tempfile::tempdir().expect("temp dir");
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();

    let mut cmd = demo(&tools, state.path(), port);
    cmd.arg("--check");
    let out = peers::run("scripts/demo --check (busy port)", cmd, DEMO_TIMEOUT);
    assert_eq!(out.status.code(), Some(1), "{}", out.describe());
    assert!(out.stderr.contains(&format!("port {port} is busy")), "{}", out.describe());
    assert!(out.stderr.contains("--port"), "the message says how to choose another: {}", out.describe());
    assert!(!state.path().join(".env").exists(), "nothing was provisioned");
}

/// `scripts/demo` (interactive, with the test's node_modules for its OAuth
/// example) until it says it is up; the child and what it printed.
fn start_demo(tools: &Toolchain, state: &Path, port: u16) -> (Child, String) {
    let stdout_path = state.join("demo.stdout");
    let mut child = demo(tools, state, port)
        .env("COGNIGATE_TEST_NODE_MODULES", &tools.node_modules)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("start scripts/demo");
    let read = || std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let deadline = Instant::now() + DEMO_TIMEOUT;
    while !read().contains("Press Ctrl-C") {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
            panic!("scripts/demo exited with {status} before it was up:\n{}\n{err}", read());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("scripts/demo was not up within {DEMO_TIMEOUT:?}:\n{}", read());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, read())
}

/// Ctrl-C (SIGINT) stops the demo and every process it started: each port it
/// announced, and the gateway's, is free again.
fn stop_demo(mut child: Child, stdout: &str, port: u16) {
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let exit = peers::wait_until(Duration::from_secs(30), || matches!(child.try_wait(), Ok(Some(_))));
    assert!(exit.is_some(), "scripts/demo did not stop on SIGINT");
    for p in announced_ports(stdout).into_iter().chain([port]) {
        assert!(
            peers::wait_until(Duration::from_secs(5), || port_is_free(p)).is_some(),
            "port {p} is still taken after Ctrl-C:\n{stdout}"
        );
    }
}

#[test]
fn demo_stays_up_until_ctrl_c_then_stops_everything() {
    let tools = Toolchain::require();
    let state = tempfile::tempdir().expect("temp dir");
    let port = peers::free_port();
    let (child, stdout) = start_demo(&tools, state.path(), port);
    assert_proved(&stdout, &stdout);
    let inspector = format!(
        "npx @modelcontextprotocol/inspector --transport http --server-url http://localhost:{port}/mcp/example"
    );
    for client in ["claude mcp add --transport http", "~/.cursor/mcp.json", &inspector] {
        assert!(stdout.contains(client), "no instructions for {client}:\n{stdout}");
    }
    assert!(stdout.contains(&format!("npx mcp-remote http://localhost:{port}/mcp/example")), "{stdout}");
    // Every cognigate command the demo prints works when pasted after the
    // export line it prints, in another folder and a shell without AWS setup.
    let export = stdout.lines().map(str::trim).find(|l| l.starts_with("unset AWS_PROFILE")).expect("an export line");
    let shown =
        stdout.lines().map(str::trim).filter_map(|l| l.strip_prefix("$ cognigate ").map(|c| format!("cognigate {c}")));
    let more = stdout.split("More cognigate commands").nth(1).unwrap_or_default();
    let more = more.lines().take_while(|l| !l.starts_with("Logs:")).map(str::trim).filter(|l| l.contains("cognigate "));
    let pasted: Vec<String> = shown.chain(more.map(str::to_owned)).collect();
    assert!(pasted.len() >= 4, "fewer commands printed than expected:\n{stdout}");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_cognigate")).parent().expect("binary dir").to_owned();
    let elsewhere = tempfile::tempdir().expect("temp dir");
    for command in &pasted {
        let out = Command::new("bash")
            .args(["-c", &format!("{export}\n{command}")])
            .current_dir(elsewhere.path())
            .env_clear()
            .env("PATH", format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default()))
            .env("HOME", elsewhere.path())
            .env("AWS_PROFILE", "a-profile-of-this-machine")
            .stdin(Stdio::null())
            .output()
            .expect("run bash");
        assert!(
            out.status.success(),
            "`{command}` failed when pasted after the export line:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Still serving after the proof: the gateway answers a client with its 401 challenge.
    let status = peers::http_status(&format!("http://127.0.0.1:{port}/mcp/example"));
    assert_eq!(status, Some(401), "{stdout}");

    inspector_connects_with_no_extra_flag(&tools, port);

    stop_demo(child, &stdout, port);
}

/// MCP Inspector, which the demo suggests, as a person uses it: started with
/// nothing but the route's URL, it registers, sends the browser through the
/// login page and the consent page, connects and lists the route's tools. A
/// browser-side client on the Inspector's own loopback origin registers too.
fn inspector_connects_with_no_extra_flag(tools: &Toolchain, port: u16) {
    let mut cmd = tools.node_script("inspector.mjs");
    cmd.args(["--server-url", &format!("http://localhost:{port}/mcp/example")])
        .args(["--username", "demo", "--password", "Cognigate-Demo-1"])
        .arg("--executable-path")
        .arg(tools.chromium())
        .arg("--screenshot")
        .arg(artifact("inspector-connected.png"));
    let out = peers::run("inspector.mjs", cmd, DEMO_TIMEOUT);
    let ctx = out.describe();
    assert!(out.status.success(), "MCP Inspector did not connect to the local mode:\n{ctx}");
    let report = out.json().unwrap_or_else(|| panic!("inspector.mjs printed no JSON:\n{ctx}"));
    let consent = report["consent"]["text"].as_str().unwrap_or_default();
    assert!(consent.contains("MCP Inspector") && consent.contains("demo@example.com"), "{ctx}");
    assert_eq!(report["connected"], true, "{ctx}");
    let tools_listed: Vec<&str> = report["tools"].as_array().into_iter().flatten().filter_map(|t| t.as_str()).collect();
    for tool in ["add", "echo", "roll_dice", "server_time"] {
        assert!(tools_listed.contains(&tool), "the Inspector does not list {tool}:\n{ctx}");
    }
    assert_eq!(report["direct_registration"]["status"], 201, "registration from the Inspector's origin: {ctx}");
}

/// The local mode's OAuth-protected example, as a newcomer meets it: the
/// demo's own check shows the connect-required link; then, with the demo up,
/// the official Python SDK's first call gets it, Chromium walks the connect
/// page and the upstream's login, and the call goes through as that upstream
/// user; Ctrl-C stops the example's servers too.
#[test]
fn demo_oauth_example_sends_the_user_to_connect_once_then_calls_as_them() {
    let tools = Toolchain::require();
    let state = tempfile::tempdir().expect("temp dir");
    let port = peers::free_port();
    let (child, stdout) = start_demo(&tools, state.path(), port);
    assert!(stdout.contains("/mcp/example-oauth ->"), "the route is configured:\n{stdout}");
    assert!(stdout.contains("connect-required -32042"), "the demo shows the connect link:\n{stdout}");
    assert!(stdout.contains(&format!("http://localhost:{port}/oauth/upstream/connect?ticket=")), "{stdout}");

    let mut cmd = tools.python_script("tests/e2e/upstream_oauth_checks.py");
    cmd.args(["--url", &format!("http://localhost:{port}/mcp/example-oauth")])
        .args(["--username", "demo", "--password", "Cognigate-Demo-1", "--upstream-login", "newcomer"])
        .args(["--phase", "connect", "--elicitation"]);
    let out = peers::run_json("upstream_oauth_checks.py", cmd, DEMO_TIMEOUT);
    assert_eq!(out["first"]["error"]["code"], -32042, "{out:#}");
    assert_eq!(out["connect"]["page"]["display_name"], "Example OAuth upstream", "{out:#}");
    assert_eq!(out["connect"]["page"]["user"], "demo@example.com", "{out:#}");
    assert_eq!(out["second"]["ok"], true, "{out:#}");
    assert_eq!(out["second"]["whoami"]["sub"], "newcomer", "{out:#}");
    // No further prompt.
    let mut cmd = tools.python_script("tests/e2e/upstream_oauth_checks.py");
    cmd.args(["--url", &format!("http://localhost:{port}/mcp/example-oauth")]).args([
        "--username",
        "demo",
        "--password",
        "Cognigate-Demo-1",
        "--phase",
        "call",
        "--elicitation",
    ]);
    let again = peers::run_json("upstream_oauth_checks.py", cmd, DEMO_TIMEOUT);
    assert_eq!(again["first"]["whoami"]["sub"], "newcomer", "{again:#}");

    stop_demo(child, &stdout, port);
}

/// The consent screenshot's sibling: where the login page's own screenshots go.
fn artifact(name: &str) -> PathBuf {
    let path = World::artifacts_dir().join(name);
    let _ = std::fs::remove_file(&path);
    path
}

#[test]
fn chromium_signs_in_on_the_local_login_page() {
    let world = World::start();
    let login_shot = artifact("login-page-error.png");
    let consent_shot = artifact("login-page-consent.png");

    let mut cmd = world.tools().node_script("consent.mjs");
    cmd.args(["--gateway", &world.gateway_url, "--route", "/mcp/echo"])
        .args(["--username", USERNAME, "--password", PASSWORD, "--expect-user", EMAIL])
        .args(["--wrong-password", "not-the-password", "--decisions", "approve"])
        .arg("--executable-path")
        .arg(world.tools().chromium())
        .arg("--login-screenshot")
        .arg(&login_shot)
        .arg("--screenshot")
        .arg(&consent_shot);
    let out = world.run_json("consent.mjs", cmd);
    let ctx = || format!("{out:#}\n\n{}", world.logs());
    let run = &out["runs"][0];

    // A wrong password: the login page says so, and stays the login page.
    assert_eq!(run["login_error"]["text"], "Incorrect username or password.", "{}", ctx());
    assert_eq!(run["login_error"]["title"], "Sign in", "{}", ctx());
    assert!(
        run["login_error"]["url"].as_str().is_some_and(|u| u.starts_with(world.cognito.hosted_ui.url())),
        "{}",
        ctx()
    );
    // The right one: the gateway's consent page, then Approve lands on the client's redirect with a code.
    assert_eq!(run["checks"]["url_is_gateway"], true, "{}", ctx());
    assert_eq!(run["checks"]["shows_user"], true, "{}", ctx());
    assert!(run["redirect"]["code"].as_str().is_some_and(|c| !c.is_empty()), "{}", ctx());
    assert_eq!(run["redirect"]["state_matches"], true, "{}", ctx());
    assert_eq!(run["token"]["status"], 200, "{}", ctx());
    for shot in [&login_shot, &consent_shot] {
        let png = std::fs::read(shot).unwrap_or_else(|e| panic!("screenshot {}: {e}", shot.display()));
        assert!(png.starts_with(b"\x89PNG") && png.len() > 1000, "{} is not a real PNG", shot.display());
    }
}

struct Page {
    status: u16,
    location: Option<String>,
    set_cookie: Option<String>,
    body: String,
}

fn get(url: &str, cookie: Option<&str>) -> Page {
    block_on(async {
        let mut req = http_client().get(url);
        if let Some(cookie) = cookie {
            req = req.header("cookie", cookie);
        }
        let r = req.send().await.expect("GET");
        let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (location, set_cookie) = (header("location"), header("set-cookie"));
        Page { status: r.status().as_u16(), location, set_cookie, body: r.text().await.unwrap_or_default() }
    })
}

fn post_form(url: &str, pairs: &[(&str, &str)]) -> Page {
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
    block_on(async {
        let r = http_client()
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("POST");
        let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (location, set_cookie) = (header("location"), header("set-cookie"));
        Page { status: r.status().as_u16(), location, set_cookie, body: r.text().await.unwrap_or_default() }
    })
}

fn authorize(ui: &str, client_id: &str, callback: &str, scope: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("client_id", client_id),
            ("response_type", "code"),
            ("redirect_uri", callback),
            ("scope", scope),
            ("state", "st-9"),
        ])
        .finish();
    format!("{ui}/oauth2/authorize?{query}")
}

fn login_id(html: &str) -> String {
    let marker = "name=\"login_id\" value=\"";
    let start = html.find(marker).map(|i| i + marker.len()).expect("a login form");
    html[start..].split('"').next().unwrap_or_default().to_owned()
}

#[test]
fn login_page_error_pages_say_what_is_wrong() {
    let cognito = Cognito::start("http://localhost:9");
    let ui = cognito.hosted_ui.url();
    let client = cognito.provisioned.client_id.as_str();
    let ctx = || cognito.logs();

    // An unknown client: Cognito's error page (never a redirect), naming the fix.
    let page = get(&authorize(ui, "no-such-client", CALLBACK, "openid"), None);
    assert_eq!((page.status, page.location.as_deref()), (400, None), "{}", page.body);
    assert!(page.body.contains("An error was encountered with the requested page."), "{}", page.body);
    assert!(page.body.contains("client_not_found") && page.body.contains("COGNITO_CLIENT_ID"), "{}", page.body);

    // A callback URL the client does not have: redirect_mismatch, and how to register it.
    let page = get(&authorize(ui, client, "http://localhost:9/elsewhere", "openid"), None);
    assert_eq!((page.status, page.location.as_deref()), (400, None), "{}", page.body);
    assert!(page.body.contains("redirect_mismatch") && page.body.contains("--gateway-url"), "{}", page.body);

    // A scope the client may not ask for: back to the (registered) callback with
    // invalid_scope, as Cognito does, so the relying party can show it.
    let page = get(&authorize(ui, client, CALLBACK, "openid offline_access"), None);
    let location = page.location.unwrap_or_default();
    assert_eq!(page.status, 302, "{}", ctx());
    assert!(location.starts_with(CALLBACK) && location.contains("error=invalid_scope"), "{location}");
    assert!(location.contains("state=st-9"), "{location}");

    // A form that styles itself and refuses to be framed.
    let page = get(&authorize(ui, client, CALLBACK, "openid email"), None);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<style>") && page.body.contains("type=\"password\""), "{}", page.body);
    // Unknown login ids (an expired page) get the error page, not a crash.
    let page =
        post_form(&format!("{ui}/login"), &[("login_id", "gone"), ("username", USERNAME), ("password", PASSWORD)]);
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("session_expired"), "{}", page.body);
}

#[test]
fn login_page_session_and_logout() {
    let cognito = Cognito::start("http://localhost:9");
    let ui = cognito.hosted_ui.url();
    let client = cognito.provisioned.client_id.as_str();
    let signout = "http://localhost:9/signed-out";
    let other = cognito.extra_client(&["--name", "with-logout", "--callback", CALLBACK, "--logout-url", signout]);
    let other_id = other["client_id"].as_str().expect("client id");

    // Sign in: the redirect carries a code and starts a session (HttpOnly cookie).
    let form = get(&authorize(ui, client, CALLBACK, "openid email"), None);
    let signed_in = post_form(
        &format!("{ui}/login"),
        &[("login_id", &login_id(&form.body)), ("username", USERNAME), ("password", PASSWORD)],
    );
    assert_eq!(signed_in.status, 302, "{}", signed_in.body);
    let set_cookie = signed_in.set_cookie.expect("a session cookie");
    assert!(set_cookie.starts_with("cognito=") && set_cookie.contains("HttpOnly"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap_or_default().to_owned();

    // The same browser is not asked again: straight back with a fresh code…
    let again = get(&authorize(ui, client, CALLBACK, "openid email"), Some(&cookie));
    assert_eq!(again.status, 302, "{}", again.body);
    assert!(again.location.as_deref().is_some_and(|l| l.contains("code=")), "{:?}", again.location);
    // …unless the client asks for the form (prompt=login).
    let forced = get(&(authorize(ui, client, CALLBACK, "openid") + "&prompt=login"), Some(&cookie));
    assert_eq!(forced.status, 200, "{}", forced.body);

    // A logout_uri the client did not register: the error page, and the session survives.
    let bad = get(&format!("{ui}/logout?client_id={other_id}&logout_uri=http%3A%2F%2Fevil.example%2F"), Some(&cookie));
    assert_eq!((bad.status, bad.location.as_deref()), (400, None), "{}", bad.body);
    assert!(bad.body.contains("logout_mismatch"), "{}", bad.body);

    // A registered one: the cookie is cleared and the browser goes there.
    let out = get(&format!("{ui}/logout?client_id={other_id}&logout_uri={}", urlencode(signout)), Some(&cookie));
    assert_eq!((out.status, out.location.as_deref()), (302, Some(signout)), "{}", out.body);
    assert!(
        out.set_cookie.as_deref().is_some_and(|c| c.starts_with("cognito=;") && c.contains("Max-Age=0")),
        "{:?}",
        out.set_cookie
    );

    // Signed out: the old cookie no longer skips the form.
    let after = get(&authorize(ui, client, CALLBACK, "openid email"), Some(&cookie));
    assert_eq!(after.status, 200, "{}", after.body);
    assert!(after.body.contains("type=\"password\""), "{}", after.body);

    // Without a logout_uri: a signed-out page.
    let plain = get(&format!("{ui}/logout"), None);
    assert_eq!(plain.status, 200, "{}", plain.body);
    assert!(plain.body.contains("You are signed out."), "{}", plain.body);
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

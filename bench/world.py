"""The world the gateway benches share: a tiny upstream (nginx answering a
fixed JSON-RPC result), moto provisioned by `cognigate up`, a user, the hosted
UI stand-in, and helpers to start gateways, log in and read memory.

Imported by replicas.py, sse.py, aggregate.py and traces.py (process, port and nginx helpers come from
gateway.py); everything listens on
127.0.0.1 and lives in one temp dir.
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BODY = '{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}'
UPSTREAM_ANSWER = '{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}'
USERNAME, PASSWORD = "bench", "Bench-Passw0rd!"

sys.path.insert(0, HERE)
from gateway import (  # noqa: E402,F401  (shared helpers)
    free_port, http_ok, log, nginx_bin, nginx_conf, port_open, rss_kib, rss_peak_kib, start, stop_all,
)


def start_nginx(world, name, port, body, workers=2):
    conf = nginx_conf(os.path.join(world.work, name), body, workers, connections=16384)
    proc, _ = start([nginx_bin(), "-c", conf], ready=lambda: port_open(port))
    world.procs.append(proc)
    return proc


class World:
    """moto + `cognigate up` + a user + the hosted UI stand-in, with the route
    `/mcp/bench` pointing at `upstream_url`. `public` is the URL the gateways
    announce (the first gateway's port)."""

    def __init__(self, gateway_bin, venv, upstream_url):
        self.gateway_bin = gateway_bin
        self.cognigate = os.path.join(os.path.dirname(gateway_bin), "cognigate")
        self.venv = venv
        self.python = f"{venv}/bin/python"
        self.work = tempfile.mkdtemp(prefix="cognigate-bench-")
        self.procs = []
        self.gateway_port = free_port()
        self.public = f"http://localhost:{self.gateway_port}"
        moto, moto_url = start([f"{venv}/bin/moto_server", "-H", "127.0.0.1", "-p", "0"])
        self.procs.append(moto)
        self.env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1",
                        AWS_ENDPOINT_URL=moto_url, AWS_EC2_METADATA_DISABLED="true", RUST_LOG="warn")
        up = subprocess.run([self.cognigate, "up", "--stack", "bench-gateway", "--gateway-url", self.public, "--output",
                             "json", "--yes"], cwd=self.work, env=self.env, capture_output=True, text=True, check=True)
        pool_id = json.loads(up.stdout)["userPoolId"]
        subprocess.run([self.python, os.path.join(ROOT, "tests/e2e/provision.py"), "user", "--moto", moto_url,
                        "--pool-id", pool_id, "--username", USERNAME, "--password", PASSWORD, "--email",
                        "bench@example.com"], check=True, capture_output=True)
        hosted, hosted_url = start([self.python, os.path.join(ROOT, "local/login_page.py"), "--moto", moto_url,
                                    "--pool-id", pool_id])
        self.procs.append(hosted)
        env_file = os.path.join(self.work, ".env")
        lines = [l for l in open(env_file).read().splitlines() if not l.startswith("COGNITO_USER_POOL_DOMAIN=")]
        lines.append("COGNITO_USER_POOL_DOMAIN=" + hosted_url.split("://", 1)[1])
        open(env_file, "w").write("\n".join(lines) + "\n")
        routes_file = os.path.join(self.work, "config/routes.oas.json")
        routes = json.load(open(routes_file))
        route = routes["paths"].pop("/mcp/example")
        for method in route.values():
            if isinstance(method, dict) and "x-zuplo-route" in method:
                method["x-zuplo-route"]["handler"]["options"]["rewritePattern"] = upstream_url
        routes["paths"]["/mcp/bench"] = route
        json.dump(routes, open(routes_file, "w"), indent=2)

    def gateway_command(self, store, port=None, binary=None):
        """The command line of a gateway (`binary`, or the bench's) on `port` (the public one by default)."""
        return [binary or self.gateway_bin, "--config-dir", "config", "--env-file", ".env", "--listen",
                f"127.0.0.1:{port or self.gateway_port}", "--public-url", self.public, "--store", store]

    def gateway(self, store, port=None, extra=()):
        """Starts a gateway (on the public port unless `port`); returns (process, port)."""
        port = port or self.gateway_port
        proc, _ = start([*self.gateway_command(store, port), *extra],
                        env=self.env, cwd=self.work, ready=lambda: http_ok(f"http://127.0.0.1:{port}/healthz"))
        self.procs.append(proc)
        return proc, port

    def login(self, name="tokens", route="/mcp/bench"):
        """The whole OAuth flow through the public URL for `route`; returns {client_id, access_token, refresh_token}."""
        saved = os.path.join(self.work, f"{name}.json")
        subprocess.run([self.python, os.path.join(ROOT, "tests/e2e/token_checks.py"), "--gateway", self.public,
                        "--username", USERNAME, "--password", PASSWORD, "--route", route, "--save", saved],
                       check=True, capture_output=True, text=True)
        return json.load(open(saved))

    def close(self):
        stop_all(self.procs)


def upstream_nginx(world, port):
    """The tiny upstream: nginx answering a fixed JSON-RPC result."""
    return start_nginx(world, "upstream", port, f"""
  server {{ listen 127.0.0.1:{port}; keepalive_requests 1000000;
    location / {{ default_type application/json; return 200 '{UPSTREAM_ANSWER}'; }} }}""")

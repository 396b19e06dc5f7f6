#!/usr/bin/env python3
"""The cost of OpenTelemetry traces on the hot path: the same `tools/call` load
through one route (OAuth policy only) with the gateway built without traces
(`--baseline`, e.g. the commit before they came), the gateway with traces off
(no OTLP endpoint), traces on and sampled at 1 % (`traceidratio` 0.01, spans
posted to a real OTLP/HTTP receiver on this machine), sampled at 100 % for
scale, and at 1 % with no collector listening (the spans made and sent, the
send refused: the gateway's own cost without a receiver on its cores). Each contender is started on the same port and store, in turns, several
rounds; medians. Goals: off within 1 % of the baseline's requests/s, 1 % sampling
within 5 %.

    bench/traces.py --gateway target/release/cognigate-gateway --venv .venv \
        [--baseline /path/to/older/cognigate-gateway]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gateway as bench  # noqa: E402  (the shared helpers: start, nginx_conf, wrk, ...)

CALL = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}'
ANSWER = '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hi"}]}}'


def configure(work, upstream):
    routes_path = os.path.join(work, "config/routes.oas.json")
    routes = json.load(open(routes_path))
    route = routes["paths"].pop("/mcp/example")
    for method in route.values():
        if isinstance(method, dict) and "x-zuplo-route" in method:
            method["x-zuplo-route"]["handler"]["options"]["rewritePattern"] = upstream
    routes["paths"]["/mcp/bench"] = route
    json.dump(routes, open(routes_path, "w"), indent=2)


def spans_received(receiver):
    return len(json.load(urllib.request.urlopen(f"{receiver}/_test/spans")))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--baseline", help="a cognigate-gateway built without traces")
    parser.add_argument("--venv", required=True)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cognigate = os.path.join(os.path.dirname(args.gateway), "cognigate")
    python = f"{args.venv}/bin/python"
    work = tempfile.mkdtemp(prefix="cognigate-traces-bench-")
    procs = []
    try:
        up_port, gw_port = bench.free_port(), bench.free_port()
        conf = bench.nginx_conf(os.path.join(work, "upstream"), f"""
  server {{ listen 127.0.0.1:{up_port}; keepalive_requests 1000000;
    location / {{ default_type application/json; return 200 '{ANSWER}'; }} }}""")
        up_proc, _ = bench.start([bench.nginx_bin(), "-c", conf], ready=lambda: bench.port_open(up_port))
        procs.append(up_proc)
        receiver_proc, receiver = bench.start([python, os.path.join(bench.ROOT, "tests/support/otlp_receiver.py")])
        procs.append(receiver_proc)
        moto, moto_url = bench.start([f"{args.venv}/bin/moto_server", "-H", "127.0.0.1", "-p", "0"])
        procs.append(moto)
        env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1",
                   AWS_ENDPOINT_URL=moto_url, AWS_EC2_METADATA_DISABLED="true", RUST_LOG="warn")
        for name in list(env):
            if name.startswith("OTEL_"):
                del env[name]
        public = f"http://localhost:{gw_port}"
        up = subprocess.run([cognigate, "up", "--stack", "bench-traces", "--gateway-url", public, "--output", "json",
                             "--yes"], cwd=work, env=env, capture_output=True, text=True, check=True)
        pool_id = json.loads(up.stdout)["userPoolId"]
        subprocess.run([python, os.path.join(bench.ROOT, "tests/e2e/provision.py"), "user", "--moto", moto_url,
                        "--pool-id", pool_id, "--username", "bench", "--password", "Bench-Passw0rd!",
                        "--email", "bench@example.com"], check=True, capture_output=True)
        hosted, hosted_url = bench.start([python, os.path.join(bench.ROOT, "local/login_page.py"), "--moto", moto_url,
                                          "--pool-id", pool_id])
        procs.append(hosted)
        env_file = os.path.join(work, ".env")
        lines = [l for l in open(env_file).read().splitlines() if not l.startswith("COGNITO_USER_POOL_DOMAIN=")]
        lines.append("COGNITO_USER_POOL_DOMAIN=" + hosted_url.split("://", 1)[1])
        open(env_file, "w").write("\n".join(lines) + "\n")
        configure(work, f"http://127.0.0.1:{up_port}/mcp")

        sampled = dict(env, OTEL_EXPORTER_OTLP_ENDPOINT=receiver, OTEL_TRACES_SAMPLER="traceidratio",
                       OTEL_SERVICE_NAME="cognigate-bench")
        contenders = {}
        if args.baseline:
            contenders["baseline (built without traces)"] = (args.baseline, env)
        contenders["traces off"] = (args.gateway, env)
        contenders["traces on, 1 % sampled"] = (args.gateway, dict(sampled, OTEL_TRACES_SAMPLER_ARG="0.01"))
        contenders["traces on, 100 % sampled"] = (args.gateway, dict(sampled, OTEL_TRACES_SAMPLER_ARG="1"))
        # The same 1 % with nothing listening at the endpoint: every span is
        # made, batched and sent, the send fails at once. Tells the gateway's
        # own cost from that of a receiver sharing its cores.
        nowhere = f"http://127.0.0.1:{bench.free_port()}"
        contenders["traces on, 1 % sampled, no collector"] = (
            args.gateway, dict(sampled, OTEL_TRACES_SAMPLER_ARG="0.01", OTEL_EXPORTER_OTLP_ENDPOINT=nowhere))

        def run_gateway(binary, variables):
            proc, _ = bench.start([binary, "--config-dir", "config", "--env-file", ".env", "--listen",
                                   f"127.0.0.1:{gw_port}", "--public-url", public, "--store",
                                   f"sqlite:{work}/gateway.db"], env=variables, cwd=work,
                                  ready=lambda: bench.http_ok(f"http://127.0.0.1:{gw_port}/healthz"))
            return proc

        first = run_gateway(args.gateway, env)
        saved = os.path.join(work, "token.json")
        subprocess.run([python, os.path.join(bench.ROOT, "tests/e2e/token_checks.py"), "--gateway", public,
                        "--username", "bench", "--password", "Bench-Passw0rd!", "--route", "/mcp/bench",
                        "--save", saved], check=True, capture_output=True, text=True)
        token = json.load(open(saved))["access_token"]
        bench.stop_all([first])

        bench.BODY = CALL  # the wrk script of gateway.py posts BODY
        url = f"http://127.0.0.1:{gw_port}/mcp/bench"
        results = {name: [] for name in contenders}
        spans = {name: 0 for name in contenders}
        for r in range(args.rounds):
            names = list(contenders) if r % 2 == 0 else list(reversed(contenders))
            for name in names:
                binary, variables = contenders[name]
                proc = run_gateway(binary, variables)
                before = spans_received(receiver)
                request = urllib.request.Request(url, data=CALL.encode(), method="POST", headers={
                    "Content-Type": "application/json", "Accept": "application/json",
                    "Authorization": f"Bearer {token}"})
                assert json.load(urllib.request.urlopen(request)) == json.loads(ANSWER), name
                results[name].append(bench.wrk(url, token, args.seconds, args.connections, work, proc.pid))
                bench.stop_all([proc])  # SIGTERM: the exporter sends what it holds before exit
                spans[name] += spans_received(receiver) - before
                bench.log(f"round {r + 1}/{args.rounds} {name}: {results[name][-1][0]:.0f} req/s")

        med = lambda runs, i: statistics.median(run[i] for run in runs)
        reference = "baseline (built without traces)" if args.baseline else "traces off"
        base = med(results[reference], 0)
        print(f"wrk -t2 -c{args.connections} -d{args.seconds}s, {args.rounds} rounds, POST tools/call, "
              "one route (OAuth policy only); medians")
        print()
        print(f"| gateway | requests/s | vs {reference} | p50 latency | p99 latency | CPU per request | spans received |")
        print("|---|---|---|---|---|---|---|")
        for name, runs in results.items():
            print(f"| {name} | {med(runs, 0):,.0f} | {med(runs, 0) / base:.3f}× | {med(runs, 1):.2f} ms "
                  f"| {med(runs, 2):.2f} ms | {med(runs, 3):.1f} µs | {spans[name]:,} |")
        print()
        print("Goals: traces off ≥ 0.99× the baseline, 1 % sampled ≥ 0.95×.")
    finally:
        bench.stop_all(procs)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The cost of the access policies: the same `tools/call` load through a plain
route and through a route with a capability filter (rolesAndGroups) and
`allowedGroups`, on one gateway, one upstream (nginx answering a fixed JSON-RPC
result), one user in the allowed group. Prints a table row per route and the
ratio (goal: the filtered route at least 0.9x the plain route's requests/s).

    bench/access.py --gateway target/release/cognigate-gateway --venv .venv
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
    """`/mcp/plain` (the OAuth policy only) and `/mcp/filtered` (filter + allowedGroups)."""
    pol_path = os.path.join(work, "config/policies.json")
    policies = json.load(open(pol_path))
    cognito = next(p for p in policies["policies"] if p["policyType"] == "mcp-cognito-oauth-inbound")
    admins = json.loads(json.dumps(cognito))
    admins["name"] = "cognito-admins"
    admins["handler"]["options"]["gateway"] = {"allowedGroups": ["admins"]}
    policies["policies"] += [admins, {"name": "filter", "policyType": "mcp-capability-filter-inbound", "handler": {
        "export": "McpCapabilityFilterInboundPolicy", "module": "$import(@zuplo/runtime/mcp-gateway)",
        "options": {"tools": [{"name": "echo", "groups": ["admins"]}, {"name": "add", "public": True}],
                    "accessControl": {"mode": "rolesAndGroups", "groupClaim": "cognito:groups"}}}}]
    json.dump(policies, open(pol_path, "w"), indent=2)
    routes_path = os.path.join(work, "config/routes.oas.json")
    routes = json.load(open(routes_path))
    template = routes["paths"].pop("/mcp/example")
    for slug, inbound in (("plain", [cognito["name"]]), ("filtered", ["cognito-admins", "filter"])):
        route = json.loads(json.dumps(template))
        for method in route.values():
            if isinstance(method, dict) and "x-zuplo-route" in method:
                method["x-zuplo-route"]["handler"]["options"]["rewritePattern"] = upstream
                method["x-zuplo-route"]["policies"]["inbound"] = inbound
        routes["paths"][f"/mcp/{slug}"] = route
    json.dump(routes, open(routes_path, "w"), indent=2)


def wrk_call(url, token, seconds, connections, work, pid):
    bench.BODY = CALL  # the wrk script of gateway.py posts BODY
    return bench.wrk(url, token, seconds, connections, work, pid)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--venv", required=True)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cognigate = os.path.join(os.path.dirname(args.gateway), "cognigate")
    python = f"{args.venv}/bin/python"
    work = tempfile.mkdtemp(prefix="cognigate-access-bench-")
    procs = []
    try:
        up_port, gw_port = bench.free_port(), bench.free_port()
        conf = bench.nginx_conf(os.path.join(work, "upstream"), f"""
  server {{ listen 127.0.0.1:{up_port}; keepalive_requests 1000000;
    location / {{ default_type application/json; return 200 '{ANSWER}'; }} }}""")
        up_proc, _ = bench.start([bench.nginx_bin(), "-c", conf], ready=lambda: bench.port_open(up_port))
        procs.append(up_proc)
        moto, moto_url = bench.start([f"{args.venv}/bin/moto_server", "-H", "127.0.0.1", "-p", "0"])
        procs.append(moto)
        env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1",
                   AWS_ENDPOINT_URL=moto_url, AWS_EC2_METADATA_DISABLED="true", RUST_LOG="warn")
        public = f"http://localhost:{gw_port}"
        up = subprocess.run([cognigate, "up", "--stack", "bench-access", "--gateway-url", public, "--output", "json", "--yes"],
                            cwd=work, env=env, capture_output=True, text=True, check=True)
        pool_id = json.loads(up.stdout)["userPoolId"]
        subprocess.run([python, os.path.join(bench.ROOT, "tests/e2e/provision.py"), "user", "--moto", moto_url,
                        "--pool-id", pool_id, "--username", "bench", "--password", "Bench-Passw0rd!",
                        "--email", "bench@example.com", "--group", "admins"], check=True, capture_output=True)
        hosted, hosted_url = bench.start([python, os.path.join(bench.ROOT, "local/login_page.py"), "--moto", moto_url,
                                          "--pool-id", pool_id])
        procs.append(hosted)
        env_file = os.path.join(work, ".env")
        lines = [l for l in open(env_file).read().splitlines() if not l.startswith("COGNITO_USER_POOL_DOMAIN=")]
        lines.append("COGNITO_USER_POOL_DOMAIN=" + hosted_url.split("://", 1)[1])
        open(env_file, "w").write("\n".join(lines) + "\n")
        configure(work, f"http://127.0.0.1:{up_port}/mcp")
        gateway, _ = bench.start([args.gateway, "--config-dir", "config", "--env-file", ".env", "--listen",
                                  f"127.0.0.1:{gw_port}", "--public-url", public, "--store", f"sqlite:{work}/gateway.db"],
                                 env=env, cwd=work, ready=lambda: bench.http_ok(f"http://127.0.0.1:{gw_port}/healthz"))
        procs.append(gateway)
        tokens = {}
        for slug in ("plain", "filtered"):
            saved = os.path.join(work, f"{slug}.json")
            subprocess.run([python, os.path.join(bench.ROOT, "tests/e2e/token_checks.py"), "--gateway", public,
                            "--username", "bench", "--password", "Bench-Passw0rd!", "--route", f"/mcp/{slug}",
                            "--save", saved], check=True, capture_output=True, text=True)
            tokens[slug] = json.load(open(saved))["access_token"]
            # Sanity: the call goes through (the user is in the group the filter names).
            request = urllib.request.Request(f"http://127.0.0.1:{gw_port}/mcp/{slug}", data=CALL.encode(), method="POST",
                                             headers={"Content-Type": "application/json", "Accept": "application/json",
                                                      "Authorization": f"Bearer {tokens[slug]}"})
            assert json.load(urllib.request.urlopen(request)) == json.loads(ANSWER), slug
        results = {"plain": [], "filtered": []}
        for r in range(args.rounds):
            for slug in (["plain", "filtered"] if r % 2 == 0 else ["filtered", "plain"]):
                url = f"http://127.0.0.1:{gw_port}/mcp/{slug}"
                results[slug].append(wrk_call(url, tokens[slug], args.seconds, args.connections, work, gateway.pid))
                bench.log(f"round {r + 1}/{args.rounds} {slug}: {results[slug][-1][0]:.0f} req/s")
        med = lambda runs, i: statistics.median(r[i] for r in runs)
        print(f"wrk -t2 -c{args.connections} -d{args.seconds}s, {args.rounds} rounds, POST tools/call; medians")
        print()
        print("| route | requests/s | p50 latency | p99 latency | gateway CPU per request |")
        print("|---|---|---|---|---|")
        labels = {"plain": "plain (OAuth only)", "filtered": "capability filter + allowedGroups"}
        for slug, runs in results.items():
            print(f"| {labels[slug]} | {med(runs, 0):,.0f} | {med(runs, 1):.2f} ms | {med(runs, 2):.2f} ms | {med(runs, 3):.1f} µs |")
        print()
        print(f"- filtered vs plain: **{med(results['filtered'], 0) / med(results['plain'], 0):.2f}×** the requests/s "
              f"(goal ≥ 0.9×), p99 {med(results['filtered'], 2):.2f} ms vs {med(results['plain'], 2):.2f} ms, "
              f"CPU per request **{med(results['filtered'], 3) / med(results['plain'], 3):.2f}×** the plain route's")
    finally:
        bench.stop_all(procs)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The cost of an aggregated route: `tools/call` through `/mcp/all1` (an
aggregate of one member) against the same call on the member's plain route,
and `tools/list` through `/mcp/all8` (eight members, asked at once) against
`tools/list` through one member, on one gateway and one nginx answering fixed
JSON-RPC results (per `Mcp-Method`: initialize, tools/list, anything else).
The latency of `tools/list` is measured one request at a time against
members that take 5 ms to answer (as a real server does: `SlowMember`), so
what it shows is whether the eight are asked at once; under load against
nginx, the table shows what the fan-out costs in CPU.
Goals: the aggregate's `tools/call` at least 0.8x the plain route's
requests/s; `tools/list` over eight members under 2x one member's latency.

    bench/aggregate.py --gateway target/release/cognigate-gateway --venv .venv
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gateway as bench  # noqa: E402  (the shared helpers: start, nginx_conf, wrk, ...)
import world as w  # noqa: E402

CALL = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}'
LIST = '{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}'
INITIALIZE = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}
ANSWERS = {
    "initialize": '{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},'
                  '"serverInfo":{"name":"nginx","version":"1"}}}',
    "tools/list": '{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo","inputSchema":{"type":"object"}},'
                  '{"name":"add","inputSchema":{"type":"object"}}]}}',
    "default": '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hi"}]}}',
}
MEMBERS = 8
SLOW_MS = 5


class SlowMember:
    """An HTTP/1.1 keep-alive server answering like the nginx member, after
    SLOW_MS milliseconds, on its own thread."""

    def __init__(self, port):
        self.port = port
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(asyncio.start_server(self.serve, "127.0.0.1", port), loop).result()

    async def serve(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if ": " in line)
                headers = {k.lower(): v for k, v in headers.items()}
                await reader.readexactly(int(headers.get("content-length", "0")))
                await asyncio.sleep(SLOW_MS / 1000)
                body = ANSWERS.get(headers.get("mcp-method", ""), ANSWERS["default"]).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\n\r\n" + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def route_entry(template, handler, inbound):
    route = json.loads(json.dumps(template))
    for method in route.values():
        if isinstance(method, dict) and "x-zuplo-route" in method:
            method["x-zuplo-route"]["handler"] = handler
            method["x-zuplo-route"]["policies"]["inbound"] = inbound
    return route


def configure(work, upstream, slow):
    """`/mcp/m1` ... `/mcp/m8` (plain routes), `/mcp/all1` over m1 and `/mcp/all8` over all eight;
    `/mcp/s1` ... `/mcp/s8` and `/mcp/slow8` the same over the slow member."""
    policies = json.load(open(os.path.join(work, "config/policies.json")))
    cognito = next(p for p in policies["policies"] if p["policyType"] == "mcp-cognito-oauth-inbound")["name"]
    routes_path = os.path.join(work, "config/routes.oas.json")
    routes = json.load(open(routes_path))
    template = routes["paths"].pop("/mcp/bench")
    module = "$import(@zuplo/runtime/mcp-gateway)"
    for i in range(1, MEMBERS + 1):
        handler = {"export": "McpProxyHandler", "module": module, "options": {"rewritePattern": f"{upstream}/m{i}"}}
        routes["paths"][f"/mcp/m{i}"] = route_entry(template, handler, [cognito])
        handler = {"export": "McpProxyHandler", "module": module, "options": {"rewritePattern": f"{slow}/s{i}"}}
        routes["paths"][f"/mcp/s{i}"] = route_entry(template, handler, [cognito])
    for slug, members, mode in (("all1", ["/mcp/m1"], "never"),
                                ("all8", [f"/mcp/m{i}" for i in range(1, MEMBERS + 1)], "always"),
                                ("slow8", [f"/mcp/s{i}" for i in range(1, MEMBERS + 1)], "always")):
        handler = {"export": "McpAggregateHandler", "module": "$import(cognigate)",
                   "options": {"members": members, "prefixMode": mode}}
        routes["paths"][f"/mcp/{slug}"] = route_entry(template, handler, [cognito])
    json.dump(routes, open(routes_path, "w"), indent=2)


def post(url, token, body, session=None):
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "Authorization": f"Bearer {token}"}
    if session:
        headers["Mcp-Session-Id"] = session
    response = urllib.request.urlopen(urllib.request.Request(url, data=body.encode(), method="POST", headers=headers))
    return response.headers.get("Mcp-Session-Id"), json.load(response)


def load(url, token, body, headers, args, work, pid, connections):
    bench.BODY = body  # the wrk script of gateway.py posts BODY
    return bench.wrk(url, token, args.seconds, connections, work, pid, headers=headers)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--venv", required=True)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    up_port, slow_port = bench.free_port(), bench.free_port()
    world = w.World(args.gateway, args.venv, f"http://127.0.0.1:{up_port}/m1")
    work, gw_port = world.work, world.gateway_port
    try:
        SlowMember(slow_port)
        answers = "\n".join(f"    {'default' if k == 'default' else json.dumps(k)} '{v}';" for k, v in ANSWERS.items())
        w.start_nginx(world, "upstream", up_port, f"""
  map $http_mcp_method $mcp_answer {{
{answers}
  }}
  server {{ listen 127.0.0.1:{up_port}; keepalive_requests 1000000;
    location / {{ default_type application/json; return 200 $mcp_answer; }} }}""")
        configure(work, f"http://127.0.0.1:{up_port}", f"http://127.0.0.1:{slow_port}")
        gateway, _ = world.gateway(f"sqlite:{work}/gateway.db")
        tokens, sessions = {}, {}
        for slug in ("m1", "all1", "all8", "s1", "slow8"):
            tokens[slug] = world.login(slug, route=f"/mcp/{slug}")["access_token"]
            if slug.startswith(("all", "slow")):
                url = f"http://127.0.0.1:{gw_port}/mcp/{slug}"
                sessions[slug], _ = post(url, tokens[slug], json.dumps(INITIALIZE))
        # Sanity: the aggregates answer what the members do.
        base = f"http://127.0.0.1:{gw_port}/mcp"
        _, called = post(f"{base}/all1", tokens["all1"], CALL, sessions["all1"])
        assert called == json.loads(ANSWERS["default"]), called
        _, listed = post(f"{base}/all8", tokens["all8"], LIST, sessions["all8"])
        assert len(listed["result"]["tools"]) == 2 * MEMBERS, listed
        cases = {
            "call plain": (f"{base}/m1", tokens["m1"], CALL, {}),
            "call aggregate": (f"{base}/all1", tokens["all1"], CALL, {"Mcp-Session-Id": sessions["all1"]}),
            "list one member": (f"{base}/m1", tokens["m1"], LIST, {"Mcp-Method": "tools/list"}),
            "list eight members": (f"{base}/all8", tokens["all8"], LIST, {"Mcp-Session-Id": sessions["all8"]}),
            "latency one member": (f"{base}/s1", tokens["s1"], LIST, {"Mcp-Method": "tools/list"}),
            "latency eight members": (f"{base}/slow8", tokens["slow8"], LIST, {"Mcp-Session-Id": sessions["slow8"]}),
        }
        one_at_a_time = {"latency one member", "latency eight members"}
        results = {name: [] for name in cases}
        for r in range(args.rounds):
            for name in (list(cases) if r % 2 == 0 else list(reversed(cases))):
                url, token, body, headers = cases[name]
                connections = 1 if name in one_at_a_time else args.connections
                results[name].append(load(url, token, body, headers, args, work, gateway.pid, connections))
                bench.log(f"round {r + 1}/{args.rounds} {name}: {results[name][-1][0]:.0f} req/s")
        med = lambda name, i: statistics.median(r[i] for r in results[name])
        print(f"wrk -t2 -c{args.connections} -d{args.seconds}s (the latency rows: -t1 -c1, members answering after "
              f"{SLOW_MS} ms), {args.rounds} rounds; medians")
        print()
        print("| request | route | requests/s | p50 latency | p99 latency | gateway CPU per request |")
        print("|---|---|---|---|---|---|")
        routes = {"call plain": "/mcp/m1 (plain)", "call aggregate": "/mcp/all1 (aggregate of m1)",
                  "list one member": "/mcp/m1 (plain)", "list eight members": "/mcp/all8 (aggregate of 8)",
                  "latency one member": "/mcp/s1 (plain, 5 ms member)",
                  "latency eight members": "/mcp/slow8 (aggregate of 8 5 ms members)"}
        for name in cases:
            request = "tools/call" if name.startswith("call") else "tools/list"
            print(f"| {request} | {routes[name]} | {med(name, 0):,.0f} | {med(name, 1):.2f} ms | {med(name, 2):.2f} ms "
                  f"| {med(name, 3):.1f} µs |")
        print()
        print(f"- tools/call, aggregate vs plain: **{med('call aggregate', 0) / med('call plain', 0):.2f}×** the "
              f"requests/s (goal ≥ 0.8×)")
        print(f"- tools/list latency, eight members vs one (one request at a time, {SLOW_MS} ms members): p50 "
              f"**{med('latency eight members', 1) / med('latency one member', 1):.2f}×** (goal < 2×), p99 "
              f"{med('latency eight members', 2):.2f} ms vs {med('latency one member', 2):.2f} ms")
        print(f"- tools/list under load against nginx (no member latency): eight members cost "
              f"{med('list eight members', 3) / med('list one member', 3):.1f}× the gateway CPU per request of one "
              f"({med('list eight members', 0):,.0f} vs {med('list one member', 0):,.0f} requests/s)")
    finally:
        world.close()


if __name__ == "__main__":
    main()

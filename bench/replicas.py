"""Replicas under load, and a soak with Redis restarted in the middle.

Two cognigate-gateway replicas share one redis-server (AOF on, fsync always,
so grants survive a restart). For a fixed time:

- MCP traffic: one `wrk` per replica, `--connections` concurrent keep-alive
  connections each (sessions), POSTing `tools/list` with a bearer token
  obtained through the real OAuth flow (checked on every request);
- OAuth traffic: `--families` refresh-token families, each rotated in a loop
  on alternating replicas (every rotation reads and writes Redis), plus a
  dynamic registration per loop.

`load`: Redis stays up. `soak`: Redis is stopped (SIGTERM) a third of the way
in and started again (same AOF) a little later. Reported: MCP requests
served, errors by kind, p50/p99; OAuth operations by outcome, p50/p99; each
replica's RSS at start and end.

Usage: replicas.py --gateway PATH --venv PATH [--mode load|soak] [--seconds N] [--connections N] [--families N]
"""
import argparse
import asyncio
import collections
import os
import re
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import world as w  # noqa: E402

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '%s'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2025-06-18"
wrk.headers["Authorization"] = "Bearer %s"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do total[status] = (total[status] or 0) + n end
  end
  for status, n in pairs(total) do io.write(string.format("status %%d %%d\\n", status, n)) end
end
"""


def start_redis(world, port, directory):
    os.makedirs(directory, exist_ok=True)
    proc, _ = w.start(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", directory,
                       "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
                      ready=lambda: w.port_open(port))
    world.procs.append(proc)
    return proc


def run_wrk(url, script, seconds, connections, out):
    result = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "--latency", "-s",
                             script, url], capture_output=True, text=True)
    out.append(result.stdout + result.stderr)


def parse_wrk(text):
    requests = int(re.search(r"(\d+) requests in", text).group(1))
    percentiles = {}
    for p, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M):
        percentiles[p] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    errors = collections.Counter()
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        for kind, n in zip(("connect", "read", "write", "timeout"), map(int, m.groups())):
            if n:
                errors[f"socket {kind}"] += n
    statuses = collections.Counter({int(s): int(n) for s, n in re.findall(r"^status (\d+) (\d+)$", text, re.M)})
    for status, n in statuses.items():
        if status != 200:
            errors[f"HTTP {status}"] += n
    return requests, statuses[200], percentiles.get("50", 0.0), percentiles.get("99", 0.0), errors


async def oauth_churn(replicas, families, stop_at, results):
    import httpx2
    async with httpx2.AsyncClient(timeout=10.0) as http:
        async def family(index, tokens):
            refresh = tokens["refresh_token"]
            turn = index
            while time.monotonic() < stop_at:
                base = replicas[turn % len(replicas)]
                turn += 1
                started = time.monotonic()
                try:
                    resp = await http.post(base + "/oauth/token", data={
                        "grant_type": "refresh_token", "refresh_token": refresh, "client_id": tokens["client_id"]})
                    kind = f"refresh {resp.status_code}"
                    if resp.status_code == 200:
                        refresh = resp.json()["refresh_token"]
                    elif resp.status_code == 400:
                        kind += " " + resp.json().get("error", "?")
                except Exception as exc:  # noqa: BLE001 - counted by kind
                    kind = f"refresh {type(exc).__name__}"
                results.append((kind, (time.monotonic() - started) * 1000))
                refreshed = kind
                started = time.monotonic()
                try:
                    resp = await http.post(base + "/oauth/register", json={
                        "redirect_uris": ["http://127.0.0.1:9/cb"], "token_endpoint_auth_method": "none"})
                    kind = f"register {resp.status_code}"
                except Exception as exc:  # noqa: BLE001
                    kind = f"register {type(exc).__name__}"
                results.append((kind, (time.monotonic() - started) * 1000))
                if refreshed.endswith("invalid_grant"):
                    return  # the family is gone (e.g. a rotation lost with Redis)
                if refreshed != "refresh 200":
                    await asyncio.sleep(0.2)  # Redis down: do not spin
        await asyncio.gather(*(family(i, t) for i, t in enumerate(families)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--venv", required=True)
    parser.add_argument("--mode", choices=["load", "soak"], default="load")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--connections", type=int, default=128, help="concurrent MCP connections per replica")
    parser.add_argument("--families", type=int, default=8)
    args = parser.parse_args()

    up_port, redis_port = w.free_port(), w.free_port()
    world = w.World(args.gateway, args.venv, f"http://127.0.0.1:{up_port}/mcp")
    try:
        w.upstream_nginx(world, up_port)
        redis_dir = os.path.join(world.work, "redis")
        redis = start_redis(world, redis_port, redis_dir)
        store = f"redis://127.0.0.1:{redis_port}/"
        a, a_port = world.gateway(store)
        b, b_port = world.gateway(store, port=w.free_port())
        replicas = [f"http://127.0.0.1:{a_port}", f"http://127.0.0.1:{b_port}"]
        families = [world.login(f"family-{i}") for i in range(args.families)]
        token = families[0]["access_token"]
        script = os.path.join(world.work, "post.lua")
        open(script, "w").write(WRK_SCRIPT % (w.BODY, token))
        rss_start = [w.rss_kib(a.pid), w.rss_kib(b.pid)]
        w.log(f"{args.mode}: {args.seconds}s, 2 replicas x {args.connections} connections, {args.families} families")

        outputs = []
        wrks = [threading.Thread(target=run_wrk, args=(url + "/mcp/bench", script, args.seconds, args.connections,
                                                       outputs)) for url in replicas]
        for t in wrks:
            t.start()
        oauth = []
        stop_at = time.monotonic() + args.seconds
        outage = {}

        def restart_redis():
            nonlocal redis
            time.sleep(args.seconds / 3)
            outage["stopped"] = time.monotonic()
            redis.terminate()
            redis.wait()
            time.sleep(min(5, args.seconds / 10))
            redis = start_redis(world, redis_port, redis_dir)
            outage["restarted"] = time.monotonic()

        restarter = threading.Thread(target=restart_redis) if args.mode == "soak" else None
        if restarter:
            restarter.start()
        asyncio.run(oauth_churn(replicas, families, stop_at, oauth))
        for t in wrks:
            t.join()
        if restarter:
            restarter.join()
        rss_end = [w.rss_kib(a.pid), w.rss_kib(b.pid)]

        served = ok = 0
        errors = collections.Counter()
        p50s, p99s = [], []
        for text in outputs:
            requests, good, p50, p99, errs = parse_wrk(text)
            served += requests
            ok += good
            errors.update(errs)
            p50s.append(p50)
            p99s.append(p99)
        kinds = collections.Counter(kind for kind, _ in oauth)
        latencies = sorted(ms for _, ms in oauth)
        q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else 0.0
        title = "soak (Redis stopped and restarted in the middle)" if args.mode == "soak" else "load"
        down = f"; Redis down for {outage['restarted'] - outage['stopped']:.1f} s" if outage else ""
        print(f"**Replicas, {title}**: 2 replicas on one redis-server, {args.seconds} s, "
              f"{args.connections} MCP connections per replica, {args.families} refresh families rotating{down}")
        print()
        print("| traffic | served | errors by kind | p50 | p99 |")
        print("|---|---|---|---|---|")
        err_text = ", ".join(f"{k}: {n:,}" for k, n in errors.most_common()) or "none"
        print(f"| MCP `tools/list` (wrk) | {served:,} ({served / args.seconds:,.0f}/s), {ok:,} × 200 | {err_text} | "
              f"{max(p50s):.2f} ms | {max(p99s):.2f} ms |")
        oauth_ok = sum(n for k, n in kinds.items() if k.endswith(" 200") or k.endswith(" 201"))
        oauth_err = ", ".join(f"{k}: {n:,}" for k, n in kinds.most_common() if not (k.endswith(" 200") or
                                                                                    k.endswith(" 201"))) or "none"
        print(f"| OAuth refresh + register | {len(oauth):,}, {oauth_ok:,} OK | {oauth_err} | {q(0.5):.1f} ms | "
              f"{q(0.99):.1f} ms |")
        print()
        for name, start_kib, end_kib in zip(("replica A", "replica B"), rss_start, rss_end):
            print(f"- {name} RSS: {start_kib / 1024:.1f} MiB at start, {end_kib / 1024:.1f} MiB at end")
    finally:
        world.close()


if __name__ == "__main__":
    main()

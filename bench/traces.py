#!/usr/bin/env python3
"""The cost of OpenTelemetry traces on the hot path: the same `tools/call` load
through one route (OAuth policy only) with the gateway built without traces
(`--baseline`, e.g. the commit before they came), the gateway with traces off
(no OTLP endpoint), traces on and sampled at 1 % (`traceidratio` 0.01, spans
posted to a real OTLP/HTTP receiver on this machine), sampled at 100 % for
scale, at 1 % with no collector listening (the spans made and sent, the
send refused), and at 1 % sent to a sink (nginx taking the exports without
decoding them: the gateway's own cost, without a Python receiver's decoding
on the load's CPU).

Two measures, because a 1 % goal is below what throughput on a shared
machine can resolve:

- Throughput: each contender is started on the same port and store, in
  turns, several rounds; medians. On a machine with two or more CPUs the
  gateway runs one serving thread pinned to a CPU of its own and everything
  else (wrk, the upstream, the receiver) on another (`--no-pin` to share
  them), so the gateway is the bottleneck and its neighbours do not steal
  its cycles.
- `--instructions N`: each contender under valgrind's callgrind, counting
  the instructions the gateway's process executes (every thread) for N
  sequential requests after a warm-up, and dividing. Deterministic to a
  fraction of a percent: what the code costs, apart from the machine.

Goals: off within 1 % of the baseline, 1 % sampling within 5 %.

    bench/traces.py --gateway target/release/cognigate-gateway --venv .venv \
        [--baseline /path/to/older/cognigate-gateway] [--instructions 2000]
"""

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gateway as bench  # noqa: E402  (the shared helpers: start, nginx_conf, wrk, ...)
import world as w  # noqa: E402

CALL = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}'
ANSWER = '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hi"}]}}'


def spans_received(receiver):
    return json.load(urllib.request.urlopen(f"{receiver}/_test/count"))


class Token:
    """The bench user's access token, refreshed (refresh-token grant) once it
    has been used for a while: a run with many rounds outlives one token."""

    def __init__(self, saved, public, route):
        self.client_id, self.access, self.refresh = saved["client_id"], saved["access_token"], saved["refresh_token"]
        self.public, self.route, self.issued = public, route, time.monotonic()

    def fresh(self):
        """The access token; call with a gateway running."""
        if time.monotonic() - self.issued > 240:
            form = urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": self.refresh,
                                           "client_id": self.client_id, "resource": self.public + self.route})
            answer = json.load(urllib.request.urlopen(f"{self.public}/oauth/token", data=form.encode()))
            self.access, self.refresh, self.issued = answer["access_token"], answer["refresh_token"], time.monotonic()
        return self.access


def user_and_system_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / os.sysconf("SC_CLK_TCK"), int(fields[12]) / os.sysconf("SC_CLK_TCK")


def post_in_turn(port, token, count):
    """`count` tools/call requests one after another on one connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Content-Type": "application/json", "Accept": "application/json",
               "MCP-Protocol-Version": "2025-06-18", "Authorization": f"Bearer {token}"}
    for _ in range(count):
        connection.request("POST", "/mcp/bench", body=CALL, headers=headers)
        response = connection.getresponse()
        if response.status != 200 or json.loads(response.read()) != json.loads(ANSWER):
            raise SystemExit(f"the gateway answered {response.status} under callgrind")
    connection.close()


def instructions_per_request(command, env, cwd, port, token, count, out):
    """Instructions the gateway executes per request (all its threads, SHA-256
    compression left out, see below), under callgrind: counters zeroed after
    a warm-up and dumped after `count` requests, so boot and shutdown are not
    counted. The dumps stay at `out` and `out.1` for `callgrind_annotate`."""
    requested = out + ".1"  # the dump asked for; `out` is the one at exit
    for old in (out, requested):
        if os.path.exists(old):
            os.remove(old)
    proc, _ = bench.start(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                           *command], env=env, cwd=cwd, ready=lambda: bench.http_ok(f"http://127.0.0.1:{port}/healthz"),
                          timeout=300)
    try:
        post_in_turn(port, token, 200)
        subprocess.run(["callgrind_control", "--zero", str(proc.pid)], check=True, capture_output=True)
        post_in_turn(port, token, count)
        subprocess.run(["callgrind_control", "--dump", str(proc.pid)], check=True, capture_output=True)
    finally:
        bench.stop_all([proc])
    if not os.path.exists(requested):
        raise SystemExit(f"callgrind wrote no dump for the measured requests ({requested})")
    total = next(int(line.split()[1]) for line in open(requested) if line.startswith("totals:"))
    # SHA-256's compression is taken out: valgrind's CPU has no SHA
    # extensions, so the token cache's digest runs in software there, at
    # several times the instructions it takes on the CPUs the gateway runs
    # on, and would swell every contender alike.
    annotated = subprocess.run(["callgrind_annotate", "--threshold=100", requested], capture_output=True,
                               text=True, check=True).stdout
    sha = sum(int(line.split()[0].replace(",", "")) for line in annotated.splitlines()
              if "sha256::compress" in line and line.strip()[:1].isdigit())
    return (total - sha) / count


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--baseline", help="a cognigate-gateway built without traces")
    parser.add_argument("--control", help="the baseline's source built again with a change off the hot path: "
                        "how far two builds of the same code drift apart (code layout)")
    parser.add_argument("--only", help="comma-separated words: only the contenders whose name has one")
    parser.add_argument("--venv", required=True)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-pin", action="store_true", help="let the gateway share the CPUs with the load")
    parser.add_argument("--instructions", type=int, default=0, metavar="N",
                        help="also count instructions per request under callgrind, over N requests")
    parser.add_argument("--instruction-rounds", type=int, default=1, metavar="K",
                        help="count each contender's instructions K times")
    args = parser.parse_args()
    pin = not args.no_pin and len(os.sched_getaffinity(0)) >= 2
    if pin:
        # The bench and what it starts (wrk, nginx, moto, the receiver) on
        # one CPU; the gateway gets another to itself (see run_gateway).
        cpus = sorted(os.sched_getaffinity(0))
        gateway_cpu = cpus[-1]
        os.sched_setaffinity(0, {cpus[0]})
    if args.instructions and not shutil.which("valgrind"):
        raise SystemExit("--instructions needs valgrind (Debian: apt-get install valgrind)")
    up_port, sink_port = bench.free_port(), bench.free_port()
    world = w.World(args.gateway, args.venv, f"http://127.0.0.1:{up_port}/mcp")
    work, gw_port = world.work, world.gateway_port
    try:
        # The upstream, and a span sink: an OTLP endpoint that takes every
        # export and answers an empty ExportTraceServiceResponse (zero bytes)
        # without decoding, so the collector's own work does not weigh on
        # the load's CPU.
        w.start_nginx(world, "upstream", up_port, f"""
  server {{ listen 127.0.0.1:{up_port}; keepalive_requests 1000000;
    location / {{ default_type application/json; return 200 '{ANSWER}'; }} }}
  server {{ listen 127.0.0.1:{sink_port}; keepalive_requests 1000000; client_max_body_size 64m;
    location /v1/traces {{ default_type application/x-protobuf; return 200 ''; }} }}""")
        receiver_proc, receiver = bench.start([world.python,
                                               os.path.join(bench.ROOT, "tests/support/otlp_receiver.py")])
        world.procs.append(receiver_proc)
        env = {name: value for name, value in world.env.items() if not name.startswith("OTEL_")}

        sampled = dict(env, OTEL_EXPORTER_OTLP_ENDPOINT=receiver, OTEL_TRACES_SAMPLER="traceidratio",
                       OTEL_SERVICE_NAME="cognigate-bench")
        contenders = {}
        if args.baseline:
            contenders["baseline (built without traces)"] = (args.baseline, env)
        if args.control:
            contenders["control (the baseline's code, built again)"] = (args.control, env)
        contenders["traces off"] = (args.gateway, env)
        # Every request takes the unsampled path (ids drawn, traceparent sent
        # upstream) and none is exported: that path's cost alone.
        contenders["traces on, 0 % sampled"] = (args.gateway, dict(sampled, OTEL_TRACES_SAMPLER_ARG="0"))
        contenders["traces on, 1 % sampled"] = (args.gateway, dict(sampled, OTEL_TRACES_SAMPLER_ARG="0.01"))
        contenders["traces on, 100 % sampled"] = (args.gateway, dict(sampled, OTEL_TRACES_SAMPLER_ARG="1"))
        # The same 1 % with nothing listening at the endpoint: every span is
        # made, batched and sent, the send fails at once. Tells the gateway's
        # own cost from that of a receiver sharing its cores.
        nowhere = f"http://127.0.0.1:{bench.free_port()}"
        contenders["traces on, 1 % sampled, no collector"] = (
            args.gateway, dict(sampled, OTEL_TRACES_SAMPLER_ARG="0.01", OTEL_EXPORTER_OTLP_ENDPOINT=nowhere))
        # The same 1 % exported for real to the sink: the gateway's whole
        # cost, the collector's left out.
        contenders["traces on, 1 % sampled, to a sink"] = (
            args.gateway, dict(sampled, OTEL_TRACES_SAMPLER_ARG="0.01",
                               OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{sink_port}"))

        reference = "baseline (built without traces)" if args.baseline else "traces off"
        if args.only:
            words = args.only.split(",")
            contenders = {name: c for name, c in contenders.items()
                          if name == reference or any(word in name for word in words)}

        def gateway_command(binary):
            return world.gateway_command(f"sqlite:{work}/gateway.db", binary=binary)

        def run_gateway(binary, variables):
            command = gateway_command(binary)
            if pin:
                command = ["taskset", "-c", str(gateway_cpu), *command, "--workers", "1"]
            proc, _ = bench.start(command, env=variables, cwd=work,
                                  ready=lambda: bench.http_ok(f"http://127.0.0.1:{gw_port}/healthz"))
            return proc

        first = run_gateway(args.gateway, env)
        token = Token(world.login(), world.public, "/mcp/bench")
        bench.stop_all([first])

        bench.BODY = CALL  # the wrk script of gateway.py posts BODY
        url = f"http://127.0.0.1:{gw_port}/mcp/bench"
        results = {name: [] for name in contenders}
        spans = {name: 0 for name in contenders}
        kernel = {name: [] for name in contenders}  # the kernel's share of the gateway's CPU time
        for r in range(args.rounds):
            names = list(contenders) if r % 2 == 0 else list(reversed(contenders))
            for name in names:
                binary, variables = contenders[name]
                proc = run_gateway(binary, variables)
                before = spans_received(receiver)
                access = token.fresh()
                request = urllib.request.Request(url, data=CALL.encode(), method="POST", headers={
                    "Content-Type": "application/json", "Accept": "application/json",
                    "Authorization": f"Bearer {access}"})
                assert json.load(urllib.request.urlopen(request)) == json.loads(ANSWER), name
                user, system = user_and_system_seconds(proc.pid)
                results[name].append(bench.wrk(url, access, args.seconds, args.connections, work, proc.pid))
                user_after, system_after = user_and_system_seconds(proc.pid)
                kernel[name].append((system_after - system) / max(user_after - user + system_after - system, 1e-9))
                bench.stop_all([proc])  # SIGTERM: the exporter sends what it holds before exit
                spans[name] += spans_received(receiver) - before
                bench.log(f"round {r + 1}/{args.rounds} {name}: {results[name][-1][0]:.0f} req/s, "
                          f"{results[name][-1][3]:.2f} µs CPU per request")

        instructions = {name: [] for name in contenders}
        for r in range(args.instruction_rounds if args.instructions else 0):
            names = list(contenders) if r % 2 == 0 else list(reversed(contenders))
            for name in names:
                binary, variables = contenders[name]
                refresher = run_gateway(binary, variables)
                access = token.fresh()
                bench.stop_all([refresher])
                words = "".join(c if c.isalnum() else " " for c in name).split()
                dump = os.path.join(work, "callgrind." + "-".join(words))
                instructions[name].append(instructions_per_request(
                    gateway_command(binary) + ["--workers", "1"], variables, work, gw_port, access, args.instructions,
                    dump))
                bench.log(f"{name}: {instructions[name][-1]:,.0f} instructions per request (profile: {dump}.1)")

        med = lambda runs, i: statistics.median(run[i] for run in runs)
        base = med(results[reference], 0)
        base_cpu = med(results[reference], 3)
        where = ("the gateway alone on one CPU (one serving thread), the load on another" if pin
                 else "the gateway and the load sharing the CPUs")
        print(f"wrk -t2 -c{args.connections} -d{args.seconds}s, {args.rounds} rounds, POST tools/call, "
              f"one route (OAuth policy only), {where}; medians")
        print()
        print(f"| gateway | requests/s | vs {reference} | p50 latency | p99 latency | CPU per request | vs {reference} "
              "| in the kernel | spans received |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, runs in results.items():
            print(f"| {name} | {med(runs, 0):,.0f} | {med(runs, 0) / base:.3f}× | {med(runs, 1):.2f} ms "
                  f"| {med(runs, 2):.2f} ms | {med(runs, 3):.2f} µs | {med(runs, 3) / base_cpu:.3f}× "
                  f"| {statistics.median(kernel[name]):.0%} | {spans[name]:,} |")
        if args.instructions:
            print()
            print(f"Instructions per request in user space under callgrind, {args.instructions:,} sequential requests "
                  f"after 200 of warm-up, {args.instruction_rounds} rounds (median, min–max), SHA-256 compression "
                  "left out:")
            print()
            print(f"| gateway | instructions per request | vs {reference} |")
            print("|---|---|---|")
            base_instructions = statistics.median(instructions[reference])
            for name, counts in instructions.items():
                middle = statistics.median(counts)
                print(f"| {name} | {middle:,.0f} ({min(counts):,.0f}–{max(counts):,.0f}) "
                      f"| {middle / base_instructions:.4f}× |")
        print()
        print("Goals: traces off within 1 % of the baseline, 1 % sampled within 5 %.")
    finally:
        world.close()


if __name__ == "__main__":
    main()

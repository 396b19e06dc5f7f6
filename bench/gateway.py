"""Gateway hot-path benchmark: the same load against a tiny upstream directly,
through nginx with a plain `proxy_pass` (its defaults: a new upstream
connection per request), through nginx tuned with upstream keepalive (the
stronger baseline), and through cognigate-gateway with a real bearer token
checked on every request.

The world is the end-to-end one: moto provisioned by `cognigate up`, the hosted
UI stand-in, a user who logs in through the real OAuth flow to get the token.
The upstream is nginx answering a fixed JSON-RPC result, so the proxy is what
is measured. Contenders alternate, several rounds; medians and min–max are
reported, plus the proxies' peak RSS. Prints a markdown table on stdout.

Usage: gateway.py --gateway PATH --venv PATH [--seconds N] [--connections N] [--rounds N]
"""
import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
COGNIGATE = None  # path of the cognigate binary, next to the gateway's
BODY = '{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}'
UPSTREAM_ANSWER = '{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}'


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, env=None, ready=None, cwd=None, timeout=60):
    """Starts a process; waits (`timeout` seconds at most) for 'Running on URL' in its output or for `ready()`."""
    out = tempfile.NamedTemporaryFile("w+", delete=False)
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = open(out.name).read()
        if ready is None and "Running on " in text:
            return proc, text.split("Running on ")[1].split()[0].rstrip("/")
        if ready is not None and ready():
            return proc, None
        if proc.poll() is not None:
            raise SystemExit(f"{cmd[0]} exited: {text}")
        time.sleep(0.05)
    raise SystemExit(f"{cmd[0]} did not start: {open(out.name).read()}")


def http_ok(url):
    try:
        return urllib.request.urlopen(url, timeout=1).status == 200
    except Exception:
        return False


def nginx_conf(directory, body, workers=2, connections=4096):
    """An nginx config in `directory` serving `body` (server and upstream blocks).
    `connections` per worker: nginx allocates for them up front, so its RSS grows
    with it; the SSE bench needs many, the hot-path bench keeps the default."""
    os.makedirs(directory, exist_ok=True)
    conf = os.path.join(directory, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
daemon off;
worker_processes {workers};
worker_rlimit_nofile 65536;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections {connections}; }}
http {{
  access_log off;
  client_body_temp_path {directory}/body;
  proxy_temp_path {directory}/proxy;
  fastcgi_temp_path {directory}/fastcgi;
  uwsgi_temp_path {directory}/uwsgi;
  scgi_temp_path {directory}/scgi;
  {body}
}}
""")
    return conf


def nginx_bin():
    return shutil.which("nginx") or "/usr/sbin/nginx"


def pids_of(pid):
    """A process and its children (nginx's workers)."""
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        pids.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return pids


def status_kib(pid, field):
    """A /proc status field (VmRSS, VmHWM) in KiB, summed over the process and its children."""
    total = 0
    for p in pids_of(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(l.split()[1]) for l in f if l.startswith(field + ":"))
        except (OSError, StopIteration):
            pass
    return total


def rss_peak_kib(pid):
    return status_kib(pid, "VmHWM")


def rss_kib(pid):
    return status_kib(pid, "VmRSS")


def cpu_seconds(pid):
    """User plus system CPU time of a process and its children (nginx's workers), in seconds."""
    ticks = 0
    for p in pids_of(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def stop_all(procs):
    """Terminates the processes a bench started (the last first), killing any that linger."""
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def wrk(url, token, seconds, connections, script_dir, pid=None, headers=None):
    """requests/s, p50 and p99 (ms), and the CPU time `pid` (with its
    children) spent per request (µs): the figure that survives a loaded
    machine, where throughput ratios move with whatever else runs.
    `headers`: more request headers (name → value)."""
    script = os.path.join(script_dir, "post.lua")
    extra = "".join(f'wrk.headers["{name}"] = "{value}"\n' for name, value in (headers or {}).items())
    with open(script, "w") as f:
        f.write(f"""
wrk.method = "POST"
wrk.body = '{BODY}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2025-06-18"
wrk.headers["Authorization"] = "Bearer {token}"
{extra}""")
    cpu_before = cpu_seconds(pid) if pid else None
    result = subprocess.run(["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script, url],
                            capture_output=True, text=True, check=True)
    text = result.stdout
    if "Non-2xx or 3xx responses" in text:
        raise SystemExit(f"{url} answered errors under load:\n{text}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    percentiles = {}
    for p, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M):
        percentiles[p] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    requests = int(re.search(r"(\d+) requests in", text).group(1))
    cpu = (cpu_seconds(pid) - cpu_before) * 1e6 / requests if pid and requests else float("nan")
    return rps, percentiles["50"], percentiles["99"], cpu


def main():
    global COGNIGATE
    parser = argparse.ArgumentParser()
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--venv", required=True)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hold", action="store_true",
                        help="set up the world, print its URLs, token and pids as JSON, and wait (for profiling)")
    args = parser.parse_args()
    COGNIGATE = os.path.join(os.path.dirname(args.gateway), "cognigate")
    python = f"{args.venv}/bin/python"
    work = tempfile.mkdtemp(prefix="cognigate-gw-bench-")
    procs = []
    try:
        # The tiny upstream and the nginx proxy in front of it.
        up_port, nginx_port, plain_port, gw_port = free_port(), free_port(), free_port(), free_port()
        upstream_conf = nginx_conf(os.path.join(work, "upstream"), f"""
  server {{ listen 127.0.0.1:{up_port}; keepalive_requests 1000000;
    location / {{ default_type application/json; return 200 '{UPSTREAM_ANSWER}'; }} }}""")
        proxy_conf = nginx_conf(os.path.join(work, "proxy"), f"""
  upstream mcp {{ server 127.0.0.1:{up_port}; keepalive 64; }}
  server {{ listen 127.0.0.1:{nginx_port}; keepalive_requests 1000000;
    location / {{ proxy_pass http://mcp; proxy_http_version 1.1; proxy_set_header Connection ""; }} }}""")
        plain_conf = nginx_conf(os.path.join(work, "plain"), f"""
  server {{ listen 127.0.0.1:{plain_port};
    location / {{ proxy_pass http://127.0.0.1:{up_port}; }} }}""")
        up_proc, _ = start([nginx_bin(), "-c", upstream_conf], ready=lambda: port_open(up_port))
        procs.append(up_proc)
        nginx_proc, _ = start([nginx_bin(), "-c", proxy_conf], ready=lambda: port_open(nginx_port))
        procs.append(nginx_proc)
        plain_proc, _ = start([nginx_bin(), "-c", plain_conf], ready=lambda: port_open(plain_port))
        procs.append(plain_proc)

        # moto, provisioned by cognigate itself, a user, the hosted UI stand-in.
        moto, moto_url = start([f"{args.venv}/bin/moto_server", "-H", "127.0.0.1", "-p", "0"])
        procs.append(moto)
        env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1",
                   AWS_ENDPOINT_URL=moto_url, AWS_EC2_METADATA_DISABLED="true", RUST_LOG="warn")
        public = f"http://localhost:{gw_port}"
        up = subprocess.run([COGNIGATE, "up", "--stack", "bench-gateway", "--gateway-url", public, "--output", "json", "--yes"],
                            cwd=work, env=env, capture_output=True, text=True, check=True)
        pool_id = json.loads(up.stdout)["userPoolId"]
        subprocess.run([python, os.path.join(ROOT, "tests/e2e/provision.py"), "user", "--moto", moto_url, "--pool-id", pool_id,
                        "--username", "bench", "--password", "Bench-Passw0rd!", "--email", "bench@example.com"],
                       check=True, capture_output=True)
        hosted, hosted_url = start([python, os.path.join(ROOT, "local/login_page.py"), "--moto", moto_url, "--pool-id", pool_id])
        procs.append(hosted)
        env_file = os.path.join(work, ".env")
        lines = [l for l in open(env_file).read().splitlines() if not l.startswith("COGNITO_USER_POOL_DOMAIN=")]
        lines.append("COGNITO_USER_POOL_DOMAIN=" + hosted_url.split("://", 1)[1])
        open(env_file, "w").write("\n".join(lines) + "\n")
        routes = json.load(open(os.path.join(work, "config/routes.oas.json")))
        route = routes["paths"].pop("/mcp/example")
        for method in route.values():
            if isinstance(method, dict) and "x-zuplo-route" in method:
                method["x-zuplo-route"]["handler"]["options"]["rewritePattern"] = f"http://127.0.0.1:{up_port}/mcp"
        routes["paths"]["/mcp/bench"] = route
        json.dump(routes, open(os.path.join(work, "config/routes.oas.json"), "w"), indent=2)

        gateway, _ = start([args.gateway, "--config-dir", "config", "--env-file", ".env", "--listen", f"127.0.0.1:{gw_port}",
                            "--public-url", public, "--store", f"sqlite:{work}/gateway.db"],
                           env=env, cwd=work, ready=lambda: http_ok(f"http://127.0.0.1:{gw_port}/healthz"))
        procs.append(gateway)

        saved = os.path.join(work, "tokens.json")
        subprocess.run([python, os.path.join(ROOT, "tests/e2e/token_checks.py"), "--gateway", public, "--username", "bench",
                        "--password", "Bench-Passw0rd!", "--route", "/mcp/bench", "--save", saved],
                       check=True, capture_output=True, text=True)
        token = json.load(open(saved))["access_token"]

        # Sanity: the gateway refuses without the token, and proxies with it.
        request = urllib.request.Request(f"http://127.0.0.1:{gw_port}/mcp/bench", data=BODY.encode(), method="POST",
                                         headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            urllib.request.urlopen(request)
            raise SystemExit("the gateway proxied a request without a token")
        except urllib.error.HTTPError as e:
            assert e.code == 401, e.code
        request.add_header("Authorization", f"Bearer {token}")
        assert json.load(urllib.request.urlopen(request)) == json.loads(UPSTREAM_ANSWER)

        if args.hold:
            print(json.dumps({"gateway": f"http://127.0.0.1:{gw_port}/mcp/bench", "gateway_pid": gateway.pid,
                              "nginx": f"http://127.0.0.1:{nginx_port}/mcp/bench", "nginx_pid": nginx_proc.pid,
                              "direct": f"http://127.0.0.1:{up_port}/mcp", "token": token, "work": work}), flush=True)
            while True:
                time.sleep(3600)

        contenders = {
            "direct (upstream)": f"http://127.0.0.1:{up_port}/mcp",
            "nginx proxy_pass (plain)": f"http://127.0.0.1:{plain_port}/mcp/bench",
            "nginx proxy_pass + keepalive": f"http://127.0.0.1:{nginx_port}/mcp/bench",
            "cognigate-gateway": f"http://127.0.0.1:{gw_port}/mcp/bench",
        }
        pids = {"direct (upstream)": up_proc.pid, "nginx proxy_pass (plain)": plain_proc.pid,
                "nginx proxy_pass + keepalive": nginx_proc.pid, "cognigate-gateway": gateway.pid}
        names = list(contenders)
        results = {name: [] for name in names}
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                results[name].append(wrk(contenders[name], token, args.seconds, args.connections, work, pids[name]))
                log(f"round {r + 1}/{args.rounds} {name}: {results[name][-1][0]:.0f} req/s")
        rss = {"nginx proxy_pass (plain)": rss_peak_kib(plain_proc.pid),
               "nginx proxy_pass + keepalive": rss_peak_kib(nginx_proc.pid),
               "cognigate-gateway": rss_peak_kib(gateway.pid)}
        print_table(results, rss, args)
    finally:
        stop_all(procs)


def port_open(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def print_table(results, rss, args):
    med = lambda xs: statistics.median(xs)
    span = lambda xs, f: f"{f(med(xs))} ({f(min(xs))}–{f(max(xs))})"
    print(f"wrk -t2 -c{args.connections} -d{args.seconds}s, {args.rounds} rounds, POST tools/list with a bearer token; "
          "medians (min–max)")
    print()
    print("| contender | requests/s | p50 latency | p99 latency | CPU per request | peak RSS |")
    print("|---|---|---|---|---|---|")
    for name, runs in results.items():
        rps = [r[0] for r in runs]
        p50 = [r[1] for r in runs]
        p99 = [r[2] for r in runs]
        cpu = [r[3] for r in runs]
        peak = f"{rss[name] / 1024:.1f} MiB" if name in rss else "—"
        print(f"| {name} | {span(rps, lambda v: f'{v:,.0f}')} | {span(p50, lambda v: f'{v:.2f} ms')} | "
              f"{span(p99, lambda v: f'{v:.2f} ms')} | {span(cpu, lambda v: f'{v:.1f} µs')} | {peak} |")
    m = lambda runs, i: med([r[i] for r in runs])
    direct, gw = results["direct (upstream)"], results["cognigate-gateway"]
    print()
    for name in ("nginx proxy_pass (plain)", "nginx proxy_pass + keepalive"):
        nginx = results[name]
        print(f"- cognigate-gateway vs {name}: **{m(gw, 0) / m(nginx, 0):.2f}×** the requests/s, "
              f"p99 {m(gw, 2):.2f} ms vs {m(nginx, 2):.2f} ms (**{m(gw, 2) / m(nginx, 2):.2f}×**), "
              f"CPU per request {m(gw, 3):.1f} µs vs {m(nginx, 3):.1f} µs (**{m(gw, 3) / m(nginx, 3):.2f}×**), "
              f"peak RSS {rss['cognigate-gateway'] / 1024:.1f} MiB vs {rss[name] / 1024:.1f} MiB")
    print(f"- added latency over calling the upstream directly: cognigate p50 +{m(gw, 1) - m(direct, 1):.2f} ms, "
          f"p99 {m(gw, 2) - m(direct, 2):+.2f} ms")


if __name__ == "__main__":
    main()

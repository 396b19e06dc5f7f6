"""Provisioning benchmark: cognigate vs a shell script around the aws CLI.

Both talk to one moto server through one counting proxy, alternating run by
run, several rounds; reports medians and min–max of wall time and the AWS calls
of each run. Scenarios: a cold `up` (new stack), a no-op re-run, and gc of
50 stacks. Prints a markdown table on stdout; progress on stderr.

Usage: provision.py --cognigate PATH --venv PATH --aws-venv PATH [--rounds N] [--gc-stacks N] [--gc-rounds N]
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def start(cmd, env=None):
    """Starts a server that prints 'Running on URL'; returns (process, url)."""
    log_file = tempfile.NamedTemporaryFile("w+", delete=False)
    proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + 60
    while time.time() < deadline:
        text = open(log_file.name).read()
        if "Running on " in text:
            return proc, text.split("Running on ")[1].split()[0].rstrip("/")
        time.sleep(0.05)
    raise SystemExit(f"{cmd[0]} did not start: {open(log_file.name).read()}")


class Proxy:
    def __init__(self, url):
        self.url = url

    def reset(self):
        urllib.request.urlopen(urllib.request.Request(self.url + "/_reset", method="POST")).read()

    def calls(self):
        return json.load(urllib.request.urlopen(self.url + "/_calls"))


def mutating(calls):
    return [c for c in calls if not c["op"].startswith(("Describe", "List", "Get"))]


def timed(cmd, env, cwd):
    started = time.perf_counter()
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return elapsed


def summary(values, unit="s"):
    if unit == "s":
        fmt = lambda v: f"{v * 1000:.0f} ms" if v < 10 else f"{v:.1f} s"
    else:
        fmt = lambda v: f"{v:.0f}"
    return f"{fmt(statistics.median(values))} ({fmt(min(values))}–{fmt(max(values))})"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cognigate", required=True)
    parser.add_argument("--venv", required=True, help="venv with moto[server] and boto3")
    parser.add_argument("--aws-venv", required=True, help="venv with the aws CLI")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--gc-stacks", type=int, default=50)
    parser.add_argument("--gc-rounds", type=int, default=3)
    args = parser.parse_args()

    moto, moto_url = start([f"{args.venv}/bin/moto_server", "-H", "127.0.0.1", "-p", "0"])
    proxy_proc, proxy_url = start([f"{args.venv}/bin/python", os.path.join(HERE, "counting_proxy.py"), moto_url])
    proxy = Proxy(proxy_url)
    env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1",
               AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=proxy_url, AWS_EC2_METADATA_DISABLED="true",
               PATH=f"{args.aws_venv}/bin:" + os.environ["PATH"])
    work = tempfile.mkdtemp(prefix="cognigate-bench-")
    try:
        # moto imports Cognito lazily on the first call; keep that out of the numbers.
        timed([args.cognigate, "up", "--stack", "warmup", "--yes"], env, work)

        results = {}  # (scenario, contender) -> list of (seconds, calls, mutating)

        def record(scenario, contender, seconds):
            calls = proxy.calls()
            results.setdefault((scenario, contender), []).append((seconds, calls))

        for i in range(args.rounds):
            order = ["cognigate", "aws-cli"] if i % 2 == 0 else ["aws-cli", "cognigate"]
            for contender in order:
                stack = f"bench-{contender}-{i}-{os.getpid()}"
                prefix = f"b{i}-{contender}-{os.getpid()}"
                cwd = os.path.join(work, stack)
                os.makedirs(cwd)
                if contender == "cognigate":
                    cold = [args.cognigate, "up", "--stack", stack, "--domain-prefix", prefix,
                            "--gateway-url", "https://gw.example.com", "--yes"]
                else:
                    cold = [os.path.join(HERE, "aws-cli-up.sh"), stack, prefix, os.path.join(cwd, ".env")]
                proxy.reset()
                record("cold up", contender, timed(cold, env, cwd))
                proxy.reset()
                record("no-op re-run", contender, timed(cold, env, cwd))
                log(f"round {i + 1}/{args.rounds} {contender}: done")

        for i in range(args.gc_rounds):
            order = ["cognigate", "aws-cli"] if i % 2 == 0 else ["aws-cli", "cognigate"]
            for contender in order:
                prefix = f"gc{i}{contender[0]}{os.getpid()}-"
                seed_stacks(moto_url, prefix, args.gc_stacks)
                if contender == "cognigate":
                    cmd = [args.cognigate, "gc", "--prefix", prefix, "--older-than", "1h"]
                else:
                    cmd = [os.path.join(HERE, "aws-cli-gc.sh"), prefix]
                proxy.reset()
                record(f"gc of {args.gc_stacks} stacks", contender, timed(cmd, env, work))
                left = remaining(moto_url, prefix)
                if left:
                    raise SystemExit(f"{contender} gc left {left} pools behind")
                log(f"gc round {i + 1}/{args.gc_rounds} {contender}: done")

        print_table(results)
    finally:
        for proc in (proxy_proc, moto):
            proc.terminate()


def boto(moto_url):
    import boto3
    return boto3.client("cognito-idp", endpoint_url=moto_url, region_name="us-east-1",
                        aws_access_key_id="bench", aws_secret_access_key="bench")


def seed_stacks(moto_url, prefix, count):
    """Managed stacks created two hours ago, each with a domain and a client."""
    client = boto(moto_url)
    created = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for n in range(count):
        name = f"{prefix}{n}"
        pool = client.create_user_pool(PoolName=name, UserPoolTags={
            "cognigate:stack": name, "cognigate:managed": "true", "cognigate:created-at": created})["UserPool"]["Id"]
        client.create_user_pool_domain(Domain=f"{name}-d", UserPoolId=pool)
        client.create_user_pool_client(UserPoolId=pool, ClientName=f"{name}-gateway", GenerateSecret=True)


def remaining(moto_url, prefix):
    client = boto(moto_url)
    pools = []
    for page in client.get_paginator("list_user_pools").paginate(MaxResults=60):
        pools += [p for p in page["UserPools"] if p["Name"].startswith(prefix)]
    return len(pools)


def print_table(results):
    scenarios = []
    for scenario, _ in results:
        if scenario not in scenarios:
            scenarios.append(scenario)
    print("| scenario | contender | wall time, median (min–max) | AWS calls (mutating) | speed-up |")
    print("|---|---|---|---|---|")
    for scenario in scenarios:
        base = statistics.median(s for s, _ in results[(scenario, "aws-cli")])
        for contender in ("cognigate", "aws-cli"):
            runs = results[(scenario, contender)]
            seconds = [s for s, _ in runs]
            calls = statistics.median(len(c) for _, c in runs)
            mut = statistics.median(len(mutating(c)) for _, c in runs)
            ratio = base / statistics.median(seconds)
            speed = f"**{ratio:.0f}×**" if contender == "cognigate" else "1×"
            print(f"| {scenario} | {contender} | {summary(seconds)} | {calls:.0f} ({mut:.0f}) | {speed} |")
    # The floor: the dependent chain of cognigate's cold up, at the proxy's latencies.
    cold = results[("cold up", "cognigate")]
    op_latency = {}
    for _, calls in cold:
        for c in calls:
            op_latency.setdefault(c["op"], []).append(c["seconds"])
    med = {op: statistics.median(v) for op, v in op_latency.items()}
    chain = [("ListUserPools", "DescribeUserPoolDomain"), ("CreateUserPool",), ("ListUserPools",),
             ("CreateUserPoolDomain", "CreateUserPoolClient"), ("DescribeUserPoolDomain", "ListUserPoolClients")]
    floor = sum(max(med.get(op, 0) for op in step) for step in chain)
    necessary = sum(max(med.get(op, 0) for op in step) for i, step in enumerate(chain) if i != 2)
    print()
    print(f"cognigate cold `up`: {len(chain)} dependent round trips (4 needed by the data, 1 twin check for concurrent runs); "
          f"the chain alone costs {floor * 1000:.1f} ms at moto's median latencies "
          f"({necessary * 1000:.1f} ms without the twin check), against a median wall time of "
          f"{statistics.median(s for s, _ in cold) * 1000:.1f} ms.")


if __name__ == "__main__":
    main()

"""Long sessions: many SSE streams held open through a proxy.

An upstream (asyncio, in this process) answers every GET with an SSE stream
that sends a comment carrying its send time every `--interval` seconds; the
clients (also here, same clock) open `--streams` streams through the proxy,
each with the bearer token (checked by the gateway on each), wait until every
stream has had a comment, then measure for `--measure` seconds. Per stream:
the proxy's RSS growth (after − before, over the streams; nginx: master plus
workers) and the comments' latency (upstream send → client receipt).

Contenders, alternating, fresh processes each round: nginx with
`proxy_buffering off` (2 workers), and cognigate-gateway.

Usage: sse.py --gateway PATH --venv PATH [--streams N] [--interval S] [--measure S] [--rounds N]
"""
import argparse
import asyncio
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import world as w  # noqa: E402


class Upstream:
    """Every request gets an endless SSE stream of timestamped comments."""

    def __init__(self, interval):
        self.interval = interval
        self.writers = set()

    async def handle(self, reader, writer):
        try:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                         b"Connection: close\r\n\r\n")
            self.writers.add(writer)
            await reader.read()  # until the proxy closes
        except (ConnectionError, OSError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()

    async def tick(self):
        """Spreads each interval's comments evenly over it."""
        while True:
            writers = list(self.writers)
            if not writers:
                await asyncio.sleep(0.05)
                continue
            slot = self.interval / len(writers)
            for writer in writers:
                try:
                    writer.write(f": t={time.monotonic_ns()}\n\n".encode())
                except (ConnectionError, OSError, RuntimeError):
                    pass
                await asyncio.sleep(slot if slot >= 0.001 else 0)


async def open_stream(port, token, latencies, first, sem):
    async with sem:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write((f"GET /mcp/bench HTTP/1.1\r\nHost: localhost:{port}\r\nAccept: text/event-stream\r\n"
                      f"Authorization: Bearer {token}\r\n\r\n").encode())
        status = await reader.readline()
        if b" 200 " not in status:
            raise SystemExit(f"stream refused: {status!r}")
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
    return asyncio.create_task(read_stream(reader, writer, latencies, first))


async def read_stream(reader, writer, latencies, first):
    seen = False
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            marker = line.find(b": t=")
            if marker >= 0:
                now = time.monotonic_ns()
                sent = int(line[marker + 4:].split(b"\n")[0].strip() or b"0")
                if latencies is not None:
                    latencies.append((now - sent) / 1e6)
                if not seen:
                    seen = True
                    first.add(id(writer))
    finally:
        writer.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--venv", required=True)
    parser.add_argument("--streams", type=int, default=5000)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--measure", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.streams + 1000)), hard))

    up_port = w.free_port()
    world = w.World(args.gateway, args.venv, f"http://127.0.0.1:{up_port}/mcp")
    results = {"nginx proxy_buffering off": [], "cognigate-gateway": []}
    try:
        # The gateway's first run also makes the store (signing key) the token needs.
        first_gw, _ = world.gateway(f"sqlite:{world.work}/gateway.db")
        token = world.login()["access_token"]
        first_gw.terminate()
        first_gw.wait()
        nginx_port = w.free_port()
        nginx_body = f"""
  server {{ listen 127.0.0.1:{nginx_port};
    location / {{ proxy_pass http://127.0.0.1:{up_port}; proxy_http_version 1.1; proxy_buffering off;
                  proxy_read_timeout 1h; }} }}"""
        for r in range(args.rounds):
            order = list(results) if r % 2 == 0 else list(reversed(results))
            for name in order:
                if name.startswith("nginx"):
                    proc = w.start_nginx(world, f"sse-nginx-{r}", nginx_port, nginx_body)
                    port = nginx_port
                else:
                    proc, port = world.gateway(f"sqlite:{world.work}/gateway.db")
                results[name].append(asyncio.run(one_round(proc.pid, port, token, up_port, args)))
                w.log(f"round {r + 1}/{args.rounds} {name}: {results[name][-1][0]:.1f} KiB/stream, "
                      f"p99 {results[name][-1][2]:.1f} ms")
                proc.terminate()
                proc.wait()
        print_table(results, args)
    finally:
        world.close()


async def one_round(pid, port, token, up_port, args):
    upstream = Upstream(args.interval)
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", up_port, backlog=4096)
    ticker = asyncio.create_task(upstream.tick())
    try:
        await asyncio.sleep(1)
        before = w.rss_kib(pid)
        first = set()
        sem = asyncio.Semaphore(200)
        warm = []
        readers = await asyncio.gather(*(open_stream(port, token, warm, first, sem) for _ in range(args.streams)))
        deadline = time.monotonic() + args.interval * 4 + 60
        while len(first) < args.streams and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        if len(first) < args.streams:
            raise SystemExit(f"only {len(first)} of {args.streams} streams got a comment through port {port}")
        warm.clear()
        await asyncio.sleep(args.measure)
        latencies = sorted(warm)
        after = w.rss_kib(pid)
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        per_stream = (after - before) / args.streams
        q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else float("nan")
        return per_stream, q(0.5), q(0.99), before, after
    finally:
        ticker.cancel()
        server.close()
        for writer in list(upstream.writers):
            writer.close()
        # Let the handlers see their connections close before the loop ends.
        await asyncio.sleep(0.5)


def print_table(results, args):
    med = statistics.median
    span = lambda xs, f: f"{f(med(xs))} ({f(min(xs))}–{f(max(xs))})"
    print(f"{args.streams:,} SSE streams held open, a comment every {args.interval:g} s on each, "
          f"{args.rounds} rounds, latency over {args.measure:g} s; medians (min–max)")
    print()
    print("| contender | RSS growth per stream | RSS before → with the streams | comment latency p50 | p99 |")
    print("|---|---|---|---|---|")
    for name, runs in results.items():
        print(f"| {name} | {span([r[0] for r in runs], lambda v: f'{v:.1f} KiB')} | "
              f"{med([r[3] for r in runs]) / 1024:.1f} → {med([r[4] for r in runs]) / 1024:.1f} MiB | "
              f"{span([r[1] for r in runs], lambda v: f'{v:.2f} ms')} | {span([r[2] for r in runs], lambda v: f'{v:.2f} ms')} |")
    gw, nginx = results["cognigate-gateway"], results["nginx proxy_buffering off"]
    print()
    print(f"- cognigate-gateway per stream: **{med([r[0] for r in gw]) / med([r[0] for r in nginx]):.2f}×** nginx's")


if __name__ == "__main__":
    main()

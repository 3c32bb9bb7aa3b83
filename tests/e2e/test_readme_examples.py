"""The README's "Alerts" and "OpenTelemetry" examples, run as written: each code block is taken from
README.md and run by bash in an empty directory, as a person pastes it. Only the ports change (free
ones instead of 8000, 9099 and 4318, so that the test never meets another server), nothing else;
the processes the block starts in the background are stopped with its process group."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelmeter.config import load_settings
from tests.helpers import ROOT, free_port, http_json, wait_for

ADMIN = "mm-admin-readme-test-key"


def readme_blocks(section: str) -> list[tuple[str, str]]:
    """(language, text) of each fenced block under the README's ``## section`` heading."""
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```(\w*)\n(.*?)```", text[start : end if end > 0 else None], re.S)


def block(section: str, lang: str, needle: str) -> str:
    found = [b for lg, b in readme_blocks(section) if lg == lang and needle in b]
    assert len(found) == 1, f"README {section!r}: one {lang} block with {needle!r}, found {len(found)}"
    return found[0]


class Shell:
    """A README block running under bash in its own process group; its stdout, line by line."""

    def __init__(self, script: str, cwd: Path) -> None:
        env = {**os.environ, "MODELMETER_ADMIN_KEY": ADMIN}
        env.pop("MODELMETER_DATABASE", None)
        env.pop("MODELMETER_OTEL_ENDPOINT", None)
        (cwd / "block.sh").write_text(script)
        self.err = (cwd / "stderr.txt").open("w")
        self.proc = subprocess.Popen(
            ["bash", "block.sh"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self.err,
            text=True,
            start_new_session=True,  # its own process group: the background jobs are stopped with it
        )
        self.out: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.out.append(line)

    def json_lines(self) -> list[dict[str, Any]]:
        got = []
        for line in list(self.out):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                got.append(value)
        return got

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.err.close()


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[list[Shell]]:
    started: list[Shell] = []
    yield started
    for sh in started:
        sh.stop()


def test_the_alerts_config_example_loads(tmp_path: Path) -> None:
    config = tmp_path / "modelmeter.toml"
    config.write_text(block("Alerts", "toml", "[[alerts]]"))
    settings = load_settings(config)
    assert settings.public_url == "https://mm.example.com" and settings.alert_interval == 30
    assert [(r.name, r.kind, r.scope, r.target, r.threshold, r.format) for r in settings.alerts] == [
        ("gpt-errors", "error_rate", "deployment", "gpt", 5.0, "json"),
        ("team-a-budget", "key_budget", "key", "team-a", 80.0, "slack"),
    ]
    assert (settings.alerts[0].window_s, settings.alerts[0].for_s) == (600, 120)


def test_the_alerts_try_it_example_delivers_the_documented_body(tmp_path: Path, shell: list[Shell]) -> None:
    gateway, receiver = free_port(), free_port()
    script = block("Alerts", "sh", "alerts-demo.toml")
    script = (
        script.replace("127.0.0.1:8000", f"127.0.0.1:{gateway}")
        .replace("9099", str(receiver))
        .replace(
            "modelmeter serve --config alerts-demo.toml", f"modelmeter serve --config alerts-demo.toml --port {gateway}"
        )
    )
    sh = Shell(script, tmp_path)
    shell.append(sh)
    wait_for(lambda: any(j.get("status") == "firing" for j in sh.json_lines()), 60, message="the receiver to print")
    answer = next(j for j in sh.json_lines() if "error" in j)  # the curl's answer: the upstream is down
    assert answer["error"]["message"]  # OpenAI's error shape
    body = next(j for j in sh.json_lines() if j.get("status") == "firing")
    documented = json.loads(block("Alerts", "json", '"status": "firing"'))
    assert set(body) == set(documented)  # the fields the README shows, no more, no fewer
    assert (body["rule"], body["kind"], body["scope"], body["deployment"], body["key"]) == (
        "gpt-errors",
        "error_rate",
        "deployment",
        "gpt",
        None,
    )
    assert (body["value"], body["threshold"], body["unit"], body["window_seconds"]) == (100.0, 5.0, "percent", 600.0)
    assert body["link"].startswith(f"http://127.0.0.1:{gateway}/models/gpt?start=") and body["resolved_at"] is None
    # Recorded as delivered: one attempt, answered 200 by the README's receiver.
    status, history = http_json(
        "GET",
        f"http://127.0.0.1:{gateway}/api/alerts/gpt-errors/history",
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    assert status == 200
    firing = next(e for e in history["data"] if e["status"] == "firing")
    assert [(d["attempt"], d["http_status"], d["ok"]) for d in firing["deliveries"]] == [(1, 200, True)]
    assert (tmp_path / "modelmeter.db").exists()  # the demo's database, in the directory it ran in


@pytest.mark.model
@pytest.mark.timeout(300)
def test_the_otel_example_prints_the_span_and_the_metrics(tmp_path: Path, shell: list[Shell]) -> None:
    gateway, otlp = free_port(), free_port()
    script = block("OpenTelemetry", "bash", "modelmeter.otel.receiver")
    script = (
        script.replace("127.0.0.1:8000", f"127.0.0.1:{gateway}")
        .replace("4318", str(otlp))
        .replace("modelmeter serve &", f"modelmeter serve --port {gateway} &")
    )
    sh = Shell(script, tmp_path)
    shell.append(sh)

    def span() -> dict[str, Any] | None:
        return next((j for j in sh.json_lines() if "span" in j), None)

    wait_for(lambda: span() is not None, 240, message="the receiver to print the span")
    s = span()
    assert s is not None
    answer = next(j for j in sh.json_lines() if j.get("object") == "chat.completion")
    assert s["span"] == "chat smollm2-135m-instruct" and s["service"] == "modelmeter" and s["kind"] == "client"
    assert (s["trace_id"], s["parent_span_id"]) == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    attrs = s["attributes"]
    assert attrs["gen_ai.operation.name"] == "chat" and attrs["gen_ai.response.id"] == answer["id"]
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (
        answer["usage"]["prompt_tokens"],
        answer["usage"]["completion_tokens"],
    )
    wait_for(
        lambda: (
            {j.get("metric") for j in sh.json_lines()}
            >= {"gen_ai.client.token.usage", "gen_ai.client.operation.duration"}
        ),
        30,
        message="the metrics (every 10 s)",
    )
    usage = {
        j["attributes"]["gen_ai.token.type"]: j["sum"]
        for j in sh.json_lines()
        if j.get("metric") == "gen_ai.client.token.usage"
    }
    assert usage == {"input": answer["usage"]["prompt_tokens"], "output": answer["usage"]["completion_tokens"]}

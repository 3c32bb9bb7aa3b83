"""Bad arguments and unusable targets: one clear line on stderr, exit status 2, no traceback."""

from __future__ import annotations

import pytest

from tests.fakes.upstream import FakeUpstream
from tests.helpers import closed_port_url, run_cli


def one_line_error(args: list[str], expect: str) -> None:
    done = run_cli(*args, timeout=60)
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr and expect in lines[0], lines[0]
    assert lines[0].startswith(f"modelmeter {args[0]}"), lines[0]
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("extra", "expect"),
    [
        (["--concurrency", "-3"], "--concurrency must be at least 1 (got -3)"),
        (["--requests", "0"], "--requests must be at least 1"),
        (["--rate", "0"], "--rate must be more than 0"),
        (["--duration", "soon"], "bad duration 'soon'"),
        (["--goodput", "ttft=5"], "bad SLO"),
        (["--concurrency", "many"], "'many' is not a valid integer"),
        (["--endpoint", "images"], "'images' is not one of"),
        (["--frobnicate"], "No such option '--frobnicate'"),
        (["--base-url", "localhost:8000"], "--base-url must be an http(s) URL"),
    ],
)
def test_bad_arguments(extra: list[str], expect: str) -> None:
    one_line_error(["bench", "--model", "m", *extra], expect)


def test_missing_model() -> None:
    one_line_error(["bench", "--requests", "3"], "--model is required")
    one_line_error(["eval"], "--model is required")


def test_unreachable_url() -> None:
    url = closed_port_url()
    one_line_error(["bench", "--base-url", url, "--model", "m", "-q"], f"cannot reach {url}")
    one_line_error(["eval", "--base-url", url, "--model", "m", "-q"], f"cannot reach {url}")


def test_unknown_model(fake_upstream: FakeUpstream) -> None:
    one_line_error(
        ["bench", "--base-url", fake_upstream.base_url, "--model", "no-such-model", "-q"],
        "unknown model 'no-such-model'",
    )
    one_line_error(
        ["eval", "--base-url", fake_upstream.base_url, "--model", "no-such-model", "-q"],
        "unknown model 'no-such-model'",
    )


def test_bad_dataset(fake_upstream: FakeUpstream, tmp_path: object) -> None:
    one_line_error(
        [
            "bench",
            "--base-url",
            fake_upstream.base_url,
            "--model",
            "fake-model",
            "-q",
            "--dataset",
            "/nonexistent/data.jsonl",
        ],
        "cannot read data set",
    )


def test_compare_unknown_runs() -> None:
    one_line_error(["bench", "compare", "nope-1", "nope-2", "--url", closed_port_url()[:-3]], "no run 'nope-1'")

"""The Runs page's "Import run" (a file from `modelmeter runs export` of another server, chosen in
the file picker) and the comparison's latency-over-time overlay: one line per run compared, its
table equal to the runs' stored timelines; at desktop size and on a 390 px phone."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import api, shot
from tests.fakes.upstream import FakeUpstream
from tests.helpers import ADMIN_KEY, ROOT, ServerProcess, run_cli, sqlite_url, write_config

pytestmark = pytest.mark.browser
MODEL = "overlay-model"  # in conftest's DEPLOYMENTS; the other server has one of the same name


def bench(server: ServerProcess, rate: float, requests: int = 10) -> str:
    """A bench run on the server spread over a few seconds (Poisson arrivals at ``rate``)."""
    body = {"kind": "bench", "model": MODEL, "requests": requests, "rate": rate, "output_tokens": 4}
    status, run = server.api("POST", "/api/runs", body)
    assert status == 201, run
    return str(run["id"])


def finished(server: ServerProcess, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 40
    while True:
        run = server.api("GET", f"/api/runs/{run_id}")[1]
        if run["report"]["status"] != "running" or time.monotonic() > deadline:
            assert run["report"]["status"] == "done", run["report"]
            return dict(run)
        time.sleep(0.25)


@pytest.fixture(scope="module")
def exported(fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A run file written by `modelmeter runs export` on another modelmeter instance."""
    tmp = tmp_path_factory.mktemp("other-server")
    config = write_config(
        tmp / "other.toml",
        database=sqlite_url(tmp / "other.db"),
        deployments=[{"name": MODEL, "model": "fake-model", "api_base": fake_upstream.base_url}],
    )
    with ServerProcess(config, log_dir=tmp / "logs") as other:
        run_id = bench(other, rate=4, requests=14)
        finished(other, run_id)
        path = tmp / f"{run_id}.json"
        env = {"MODELMETER_ADMIN_KEY": ADMIN_KEY}
        done = run_cli("runs", "export", run_id, "-o", str(path), "--url", other.url, env=env)
        assert done.returncode == 0, done.stderr
    yield path


def choose(page: Page, name: str, content: bytes) -> None:
    """As a person does: the Import run button opens the file picker, a file is chosen."""
    with page.expect_file_chooser() as chooser:
        page.locator("#import-run").click()
    chooser.value.set_files({"name": name, "mimeType": "application/json", "buffer": content})


def test_import_a_run_from_another_server_then_compare_it(page: Page, server: ServerProcess, exported: Path) -> None:
    theirs = json.loads(exported.read_text())
    ours = [bench(server, rate, requests=14) for rate in (3, 6)]
    page.goto("/runs")
    expect(page.locator("#import-run")).to_be_visible()

    choose(page, "broken.json", b'{"id": "half a file"')
    expect(page.locator("[data-role=import-error]")).to_contain_text("broken.json")
    expect(page.locator("[data-role=import-error]")).to_contain_text("not JSON")
    future = json.dumps({**theirs, "format_version": 99}).encode()
    choose(page, "future.json", future)
    expect(page.locator("[data-role=import-error]")).to_contain_text("format version is 99")
    expect(page.locator("#import-copy")).to_have_count(0)
    assert theirs["id"] not in {r["id"] for r in api(server, "/api/runs?limit=200")["data"]}

    choose(page, exported.name, exported.read_bytes())
    expect(page.locator("[data-role=imported]")).to_contain_text(f"Imported run {theirs['id']}")
    row = page.locator(f'tr[data-run="{theirs["id"]}"]')
    expect(row).to_be_visible()
    stored = api(server, f"/api/runs/{theirs['id']}")
    assert stored["report"] == theirs["report"] and stored["created_us"] == theirs["created_us"]
    expect(row.locator('td[data-metric="req_s"]')).not_to_have_text("—")

    choose(page, exported.name, exported.read_bytes())  # again: its id is now taken here
    error = page.locator("[data-role=import-error]")
    expect(error).to_contain_text("already exists")
    page.locator("#import-copy").click()
    expect(page.locator("[data-role=imported]")).to_contain_text("as a copy")
    copies = [r for r in api(server, "/api/runs?limit=200")["data"] if r["params"].get("imported_from") == theirs["id"]]
    assert len(copies) == 1 and copies[0]["report"] == theirs["report"]

    for run_id in ours:
        finished(server, run_id)
    page.reload()
    for run_id in (theirs["id"], *ours):
        page.get_by_label(f"Select {run_id}", exact=True).check()
    expect(page.locator("#compare-runs")).to_have_text(re.compile(r"\(3\)"))
    page.locator("#compare-runs").click()
    expect(page).to_have_url(re.compile(r"/runs\?compare="))
    check_overlay(page, server)
    deltas = page.eval_on_selector_all(".compare-table td.delta", "els => els.map(e => e.dataset.run)")
    assert sorted(set(deltas)) == sorted(ours) and len(deltas) == 2 * 13  # B − A and C − A, every metric
    shot(page, "runs-overlay", full_page=True)
    page.locator("[data-role=latency-overlay]").screenshot(path=str(ROOT / "docs" / "runs-overlay.png"))


def check_overlay(page: Page, server: ServerProcess) -> None:
    """One trace per run compared, named by its id; the Numbers table equals the stored timelines."""
    expect(page.locator(".compare-table")).to_be_visible()
    ids = page.eval_on_selector_all(".compare-table thead a.mono", "els => els.map(e => e.textContent)")
    assert 2 <= len(ids) <= 6, ids
    timelines = {i: api(server, f"/api/runs/{i}")["report"].get("latency_timeline") for i in ids}
    runs = {i: tl for i, tl in timelines.items() if tl}
    drawn = [i for i in ids if i in runs]
    assert drawn, timelines
    plot = page.locator("[data-overlay=latency]")
    expect(plot.locator(".scatterlayer .trace")).to_have_count(len(drawn), timeout=20_000)  # plotly: 4.8 MB
    traces = plot.evaluate("el => el.data.map(t => ({name: t.name, x: t.x, y: t.y}))")
    assert [t["name"] for t in traces] == drawn
    for t in traces:
        assert t["x"] == runs[t["name"]]["t_s"] and t["y"] == runs[t["name"]]["p50_ms"]
    legend = plot.locator(".legendtext").all_text_contents()
    assert legend == drawn, legend
    note = page.locator("[data-role=no-timeline]")
    if len(drawn) < len(ids):  # a run stored before reports had a timeline is named, not drawn
        expect(note).to_contain_text(", ".join(i for i in ids if i not in runs))
    else:
        expect(note).to_have_count(0)
    section = page.locator("[data-role=latency-overlay]")
    section.locator("summary", has_text="Numbers").click()
    table = section.locator("table.overlay-numbers")
    expect(table).to_be_visible()
    heads = table.locator("thead th[data-run]").evaluate_all("els => els.map(e => e.dataset.run)")
    assert heads == drawn
    seconds = sorted({t for tl in runs.values() for t in tl["t_s"]})
    assert table.locator("tbody tr").evaluate_all("els => els.map(e => +e.dataset.second)") == seconds
    ms = "async v => (await import('/static/js/format.js')).ms(v)"
    for run_id, tl in runs.items():
        cells = dict(zip(seconds, table.locator(f'tbody td[data-run="{run_id}"]').all_text_contents(), strict=True))
        for t, p50 in zip(tl["t_s"], tl["p50_ms"], strict=True):
            assert cells[t] == page.evaluate(ms, p50), (run_id, t)
        assert sum(1 for t in seconds if cells[t] != "—") == len(tl["t_s"])


def test_import_and_overlay_on_a_phone(page: Page, server: ServerProcess) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    ids = [bench(server, rate, requests=8) for rate in (3, 6)]
    old = finished(server, ids[0])  # as a run stored before reports had a latency timeline
    del old["report"]["latency_timeline"]
    status, stored = server.api("POST", "/api/runs/import", {**old, "id": f"{old['id']}-old"})
    assert status == 201, stored
    page.goto("/runs")
    button = page.locator("#import-run")
    expect(button).to_be_visible()
    box = button.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    choose(page, "notes.txt", b"hello")
    expect(page.locator("[data-role=import-error]")).to_contain_text("not JSON")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "runs-import-phone")
    for run_id in ids:
        finished(server, run_id)
    page.goto(f"/runs?compare={','.join([*ids, stored['id']])}")
    check_overlay(page, server)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # the tables scroll in their cards
    plot = page.locator("[data-overlay=latency]").bounding_box()
    assert plot is not None and plot["x"] >= 0 and plot["x"] + plot["width"] <= 390
    shot(page, "runs-overlay-phone", full_page=True)

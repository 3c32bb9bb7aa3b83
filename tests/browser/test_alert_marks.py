"""The markers on the Usage tab's charts where an alert fired and resolved, at desktop width and on a
phone (390 px): one dotted line per change on each chart, at the change's moment on the time axis,
with the rule's name on hover."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import openai
import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import TZ, chat, shot
from tests.helpers import ServerProcess, wait_for

MODEL = "marks-model"
RULE = "marks-dead"


def _state(server: ServerProcess) -> str:
    return next(r["state"] for r in server.api("GET", "/api/alerts")[1]["data"] if r["name"] == RULE)


@pytest.fixture(scope="module")
def changes(server: ServerProcess, client: openai.OpenAI) -> Iterator[dict[str, str]]:
    """The rule fires on MODEL (no calls), then, some seconds later, one call resolves it: the two
    moments, from the rule's history."""
    rule = {"name": RULE, "kind": "no_traffic", "deployment": MODEL, "window": "1m"}
    assert server.api("POST", "/api/alerts", rule)[0] == 201
    wait_for(lambda: _state(server) == "firing", 10, message="the no_traffic rule to fire")
    time.sleep(8)  # the two markers some pixels apart, even on a phone
    chat(client, MODEL)
    wait_for(lambda: _state(server) == "ok", 10, message="the rule to resolve")
    events = server.api("GET", f"/api/alerts/{RULE}/history")[1]["data"]
    yield {e["status"]: e["at"] for e in events}
    server.api("DELETE", f"/api/alerts/{RULE}")


def _parse(at: str) -> datetime:
    return datetime.fromisoformat(at.replace("Z", "+00:00"))


@pytest.mark.parametrize("width", [1440, 390])
def test_markers_where_the_alert_fired_and_resolved(
    page: Page, server: ServerProcess, changes: dict[str, str], width: int
) -> None:
    assert set(changes) == {"firing", "resolved"}
    fired, resolved = _parse(changes["firing"]), _parse(changes["resolved"])
    start = fired.replace(second=0, microsecond=0)
    end = start + timedelta(minutes=2)  # the resolution comes ~8 s after the firing
    iso = lambda d: d.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    # What the page asks for (the API alone): the deployment's two changes in this window, not others.
    status, marks = server.api("GET", f"/api/alerts/marks?deployment={MODEL}&start={iso(start)}&end={iso(end)}")
    assert status == 200
    assert [(m["rule"], m["status"], m["at"]) for m in marks["data"] if m["rule"] == RULE] == [
        (RULE, "firing", changes["firing"]),
        (RULE, "resolved", changes["resolved"]),
    ]
    assert not any(m["deleted"] for m in marks["data"] if m["rule"] == RULE)
    assert server.api("GET", f"/api/alerts/marks?deployment=cards-model&start={iso(start)}&end={iso(end)}")[1] == {
        "data": []
    }

    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"/models/{MODEL}?start={iso(start)}&end={iso(end)}")
    # The range, given in UTC as an alert's link gives it, is shown in the viewer's time.
    expect(page.locator("input[aria-label=From]")).to_have_value(
        start.astimezone(ZoneInfo(TZ)).strftime("%Y-%m-%dT%H:%M")
    )
    for chart in ("requests", "tokens", "spend", "latency"):
        plot = page.locator(f'.plot[data-chart="{chart}"]')
        lines = plot.locator(".shapelayer path")
        expect(lines).to_have_count(2)
        # Each line at its change's moment: the axis's own position for that instant (the page's
        # time zone), against where the line is drawn.
        where = plot.evaluate(
            """(gd, ats) => {
              const xa = gd._fullLayout.xaxis;
              const local = (iso) => {
                const d = new Date(iso), p = (n, w = 2) => String(n).padStart(w, "0");
                return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:`
                  + `${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
              };
              const box = gd.getBoundingClientRect();
              const drawn = [...gd.querySelectorAll(".shapelayer path")].map((el) => {
                const r = el.getBoundingClientRect();
                return r.left + r.width / 2 - box.left;
              }).sort((a, b) => a - b);
                return { drawn, want: ats.map((a) => xa._offset + xa.d2p(local(a))) };
            }""",
            [changes["firing"], changes["resolved"]],
        )
        for drawn, want in zip(where["drawn"], where["want"], strict=True):
            assert abs(drawn - want) < 1.5, (chart, where)
        assert where["want"][1] - where["want"][0] > 5  # two distinct markers, not one
    wide = page.evaluate(
        """(w) => [...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > w + 1)
          .slice(0, 5).map((e) => `${e.tagName}.${e.className}`)""",
        width,
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= width, wide

    # The rule's name on hover, over the pin at the top of the firing line.
    plot = page.locator('.plot[data-chart="requests"]')
    plot.scroll_into_view_if_needed()
    pin = plot.locator(".scatterlayer .trace path.point").first
    box = pin.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(plot.locator(".hoverlayer")).to_contain_text(f"Alert fired: {RULE}")
    shot(page, f"alert-marks-{width}")
    assert fired < resolved

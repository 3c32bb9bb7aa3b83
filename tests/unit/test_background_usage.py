"""apis/background.py: a background response's usage is counted once, on the by-id call that first
sees it finished; the ids waiting for it are bounded."""

from __future__ import annotations

import time
from typing import Any

from modelmeter.apis.background import PendingUsage
from modelmeter.config import Deployment
from modelmeter.metering.record import CallRecord, new_record_id
from modelmeter.metering.usage import Usage

DEP = Deployment(name="resp", model="m", provider="openai", api_base="http://127.0.0.1:9/v1")
USAGE = {"input_tokens": 5, "output_tokens": 4, "output_tokens_details": {"reasoning_tokens": 1}}


def rec(body: Any, status: int = 200) -> CallRecord:
    r = CallRecord(id=new_record_id(), deployment=DEP, model="resp", call_type="x", start=time.time())
    r.response_body, r.http_status = body, status
    r.status = "success" if status == 200 else "error"
    return r


def test_usage_counted_once_on_the_call_that_sees_it_finished() -> None:
    pending = PendingUsage()
    created = rec({"id": "resp_1", "status": "queued", "usage": None})
    pending.created(created)
    assert created.usage == Usage(reported=True)  # zero, not to be estimated
    running = rec({"id": "resp_1", "status": "in_progress"})
    running.usage = Usage(reported=True)
    pending.settled(running, running.response_body)
    assert running.usage.total_tokens == 0
    done = rec({"id": "resp_1", "status": "completed", "usage": USAGE})
    pending.settled(done, done.response_body)
    assert (done.usage.prompt_tokens, done.usage.completion_tokens, done.usage.reasoning_tokens) == (5, 4, 1)
    again = rec({"id": "resp_1", "status": "completed", "usage": USAGE})
    again.usage = Usage(reported=True)
    pending.settled(again, again.response_body)
    assert again.usage.total_tokens == 0


def test_finished_answers_and_failures_wait_for_nothing() -> None:
    pending = PendingUsage()
    whole = rec({"id": "resp_2", "status": "completed", "usage": USAGE})
    whole.usage = Usage(5, 4, 9, reported=True)
    pending.created(whole)
    failed = rec({"id": "resp_3", "status": "queued"}, status=500)
    pending.created(failed)
    later = rec({"id": "resp_2", "status": "completed", "usage": USAGE})
    later.usage = Usage(reported=True)
    pending.settled(later, later.response_body)
    assert later.usage.total_tokens == 0


def test_bounded() -> None:
    pending = PendingUsage(limit=2)
    for i in range(3):
        pending.created(rec({"id": f"resp_{i}", "status": "queued"}))
    oldest = rec({"id": "resp_0", "status": "completed", "usage": USAGE})
    oldest.usage = Usage(reported=True)
    pending.settled(oldest, oldest.response_body)
    assert oldest.usage.total_tokens == 0  # forgotten: never counted twice
    newest = rec({"id": "resp_2", "status": "completed", "usage": USAGE})
    pending.settled(newest, newest.response_body)
    assert newest.usage.total_tokens == 9

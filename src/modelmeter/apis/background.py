"""Background responses (``background: true``): the create call answers at once, ``queued`` and
without usage; the usage comes later, in the finished response a retrieve (or cancel) returns.

So the creating call is recorded with a usage of zero (not an estimate), and the first by-id call
that sees the response finished carries its usage: counted once, on the call that got it. Which ids
still wait for their usage is kept in memory (bounded); after a restart it is lost, and the finished
response's usage goes unrecorded rather than counted twice."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from modelmeter.apis.responses import usage_from
from modelmeter.metering.record import CallRecord
from modelmeter.metering.usage import Usage

UNFINISHED = frozenset({"queued", "in_progress"})
MAX_PENDING = 100_000


class PendingUsage:
    """Ids of background responses whose usage has not been recorded yet; the newest MAX_PENDING."""

    def __init__(self, limit: int = MAX_PENDING) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._limit = limit

    def created(self, rec: CallRecord) -> None:
        """After a create call: an unfinished answer without usage waits for it."""
        body = rec.response_body
        if rec.status != "success" or not isinstance(body, dict) or body.get("status") not in UNFINISHED:
            return
        rid = body.get("id")
        if isinstance(rid, str) and not rec.usage.reported:
            rec.usage = Usage(reported=True)  # nothing yet: zero, not an estimate
            self._ids[rid] = None
            if len(self._ids) > self._limit:
                self._ids.popitem(last=False)

    def settled(self, rec: CallRecord, body: Any) -> None:
        """After a by-id call: a finished response still waiting gives this record its usage."""
        if rec.http_status != 200 or not isinstance(body, dict) or body.get("status") in UNFINISHED:
            return
        rid = body.get("id")
        if isinstance(rid, str) and rid in self._ids:
            del self._ids[rid]
            usage = usage_from(body.get("usage"))
            rec.usage = usage if usage.reported else Usage(reported=True)

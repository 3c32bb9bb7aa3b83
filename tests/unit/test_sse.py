"""The SSE parser: whole events from network chunks split anywhere, any line ending, comments."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from modelmeter.sse import DONE, SSEEvent, SSEParser, encode_event


def feed_all(chunks: list[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    events = [e for c in chunks for e in parser.feed(c)]
    return events + parser.flush()


def datas(events: list[SSEEvent]) -> list[bytes | None]:
    return [e.data for e in events]


def test_one_data_line_per_event() -> None:
    parser = SSEParser()
    events = parser.feed(b'data: {"a":1}\n\ndata: [DONE]\n\n')
    assert datas(events) == [b'{"a":1}', DONE]
    assert events[0].raw == b'data: {"a":1}\n\n' and events[1].raw == b"data: [DONE]\n\n"
    assert parser.pending == b"" and parser.flush() == []


def test_split_anywhere() -> None:
    raw = b'data: {"a":1}\n\n: keep-alive\n\ndata: {"b":2}\n\ndata: [DONE]\n\n'
    for cut in range(1, len(raw)):
        assert datas(feed_all([raw[:cut], raw[cut:]])) == [b'{"a":1}', None, b'{"b":2}', DONE], cut
    assert datas(feed_all([bytes([b]) for b in raw])) == [b'{"a":1}', None, b'{"b":2}', DONE]


def test_partial_event_waits_for_its_blank_line() -> None:
    parser = SSEParser()
    assert parser.feed(b'data: {"a"') == []
    assert parser.feed(b":1}\n") == []
    assert parser.pending == b'data: {"a":1}\n'
    (event,) = parser.feed(b"\n")
    assert event.data == b'{"a":1}'


def test_crlf_and_cr_line_endings() -> None:
    assert datas(feed_all([b"data: a\r\n\r\ndata: b\r\rdata: c\n\n"])) == [b"a", b"b", b"c"]
    # a CRLF split between two chunks is one line end, not two
    assert datas(feed_all([b"data: a\r", b"\n\r\n"])) == [b"a"]
    assert datas(feed_all([b"data: a\r\n\r", b"\ndata: b\r\n\r\n"])) == [b"a", b"b"]
    # a lone CR at the very end of a chunk followed by CR: two line ends
    assert datas(feed_all([b"data: a\r", b"\rdata: b\n\n"])) == [b"a", b"b"]


def test_comments_and_other_fields() -> None:
    events = feed_all([b": OPENROUTER PROCESSING\n\nevent: message\nid: 7\nretry: 10\ndata: x\n\n"])
    assert datas(events) == [None, b"x"]
    assert events[0].raw == b": OPENROUTER PROCESSING\n\n"
    assert datas(feed_all([b"event: ping\n\n"])) == [None]


def test_multi_line_data_is_joined_with_newlines() -> None:
    (event,) = feed_all([b'data: {\ndata:  "a": 1\ndata:}\n\n'])
    assert event.data == b'{\n "a": 1\n}'  # one optional space after the colon is removed


def test_data_without_space_and_empty_data() -> None:
    assert datas(feed_all([b"data:x\n\ndata:\n\n"])) == [b"x", b""]


def test_extra_blank_lines() -> None:
    assert datas(feed_all([b"\n\ndata: a\n\n\n\ndata: b\n\n"])) == [None, b"a", None, b"b"]


def test_flush_returns_a_last_event_without_its_blank_line() -> None:
    for tail in (b"data: [DONE]", b"data: [DONE]\n", b"data: [DONE]\r\n", b"data: [DONE]\r"):
        parser = SSEParser()
        assert datas(parser.feed(b"data: a\n\n" + tail)) == [b"a"]
        assert datas(parser.flush()) == [DONE], tail
        assert parser.pending == b"" and parser.flush() == []
    parser = SSEParser()
    parser.feed(b"data: a\n\n\n")
    assert parser.flush() == []  # only line ends left: nothing


def test_encode_event_round_trip() -> None:
    assert encode_event(b'{"x":1}') == b'data: {"x":1}\n\n'
    assert datas(feed_all([encode_event(b'{"x":1}')])) == [b'{"x":1}']


payloads = st.lists(
    st.binary(min_size=0, max_size=40).filter(lambda b: b"\n" not in b and b"\r" not in b), min_size=1, max_size=8
)


@settings(max_examples=150, deadline=None)
@given(payloads, st.sampled_from([b"\n", b"\r\n", b"\r"]), st.randoms(use_true_random=False))
def test_any_split_any_line_end(data: list[bytes], eol: bytes, rnd: random.Random) -> None:
    raw = b"".join(b"data: " + d + eol + eol for d in data)
    cuts = sorted(rnd.sample(range(1, len(raw)), min(len(raw) - 1, rnd.randint(0, 6))))
    chunks = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    assert datas(feed_all(chunks)) == data

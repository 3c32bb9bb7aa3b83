"""Translation between the three wire APIs the front doors speak (issue 12 item 3).

Pure functions and small stateful stream translators, one direction per module; nothing here does
I/O, so the gateway can call them on the hot path. Requests come in as the client's parsed JSON,
answers and streams go out as dicts / SSE bytes that the official SDKs parse (the tests check that
with ``anthropic.types.Message``, ``openai.types.responses.Response`` and the SDKs' stream
accumulators).

- ``messages_to_chat`` / ``messages_stream``: Anthropic Messages client -> OpenAI chat upstream.
- ``responses_to_chat`` / ``responses_stream``: OpenAI Responses client -> chat upstream.
- ``chat_to_messages`` / ``chat_stream``: chat client -> Anthropic Messages upstream.
- ``chat_to_responses`` / ``responses_chat_stream``: chat client -> OpenAI Responses upstream.
- ``chained``: Responses <-> Messages, two of the above in a row through chat.
"""

from modelmeter.apis.translate.wire import TranslationError

__all__ = ["TranslationError"]

"""A one-tool agent on the OpenAI Agents SDK's default model (the Responses API), as the README runs it:

    OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_API_KEY=<key> OPENAI_AGENTS_DISABLE_TRACING=1 \\
        python weather_agent.py <deployment> "What is the weather in Paris?" [--stream]

The SDK's default client reads OPENAI_BASE_URL and OPENAI_API_KEY; tracing is off so nothing is
sent anywhere but the gateway. The SDK names no session: with MODELMETER_SESSION set, the default
client is one that sends it as ``x-modelmeter-session``. Prints the agent's final answer.
"""

from __future__ import annotations

import asyncio
import os
import sys

from agents import Agent, Runner, function_tool, set_default_openai_client
from openai import AsyncOpenAI


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


async def main(model: str, question: str, stream: bool) -> None:
    if session := os.environ.get("MODELMETER_SESSION"):
        set_default_openai_client(AsyncOpenAI(default_headers={"x-modelmeter-session": session}))
    agent = Agent(name="weather", instructions="Answer with the tool's result.", model=model, tools=[get_weather])
    if stream:
        run = Runner.run_streamed(agent, question)
        async for _ in run.stream_events():
            pass
        print(run.final_output)
    else:
        print((await Runner.run(agent, question)).final_output)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], "--stream" in sys.argv[3:]))

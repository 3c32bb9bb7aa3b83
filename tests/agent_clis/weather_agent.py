"""A one-tool agent on the OpenAI Agents SDK's default model (the Responses API), as the README runs it:

    OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_API_KEY=<key> OPENAI_AGENTS_DISABLE_TRACING=1 \\
        python weather_agent.py <deployment> "What is the weather in Paris?" [--stream] [--force-tool]

The SDK's default client reads OPENAI_BASE_URL and OPENAI_API_KEY; tracing is off so nothing is
sent anywhere but the gateway. The SDK names no session: with MODELMETER_SESSION set, the default
client is one that sends it as ``x-modelmeter-session``. ``--force-tool`` is for a small model
(the embedded one): the first turn must call a tool (the SDK resets the choice once a tool ran),
and answers are kept short. Prints the agent's final answer.
"""

from __future__ import annotations

import asyncio
import os
import sys

from agents import Agent, ModelSettings, Runner, function_tool, set_default_openai_client
from openai import AsyncOpenAI


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


async def main(model: str, question: str, stream: bool, force_tool: bool) -> None:
    if session := os.environ.get("MODELMETER_SESSION"):
        set_default_openai_client(AsyncOpenAI(default_headers={"x-modelmeter-session": session}))
    settings = ModelSettings(tool_choice="required", max_tokens=64, temperature=0) if force_tool else ModelSettings()
    agent = Agent(
        name="weather",
        instructions="Answer with the tool's result.",
        model=model,
        tools=[get_weather],
        model_settings=settings,
    )
    if stream:
        run = Runner.run_streamed(agent, question)
        async for _ in run.stream_events():
            pass
        print(run.final_output)
    else:
        print((await Runner.run(agent, question)).final_output)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], "--stream" in sys.argv[3:], "--force-tool" in sys.argv[3:]))

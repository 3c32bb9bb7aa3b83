"""modelmeter: a metered OpenAI-compatible gateway with a Usage tab."""

__version__ = "0.1.0"

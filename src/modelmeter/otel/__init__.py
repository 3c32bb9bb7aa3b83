"""OpenTelemetry export (off by default): a GenAI span and metrics per finished call, over OTLP/HTTP.

``context`` runs on the hot path (a traceparent per call, only when export is on); everything else
runs in the recorder's finisher thread and the SDK's own export threads (``export``).
"""

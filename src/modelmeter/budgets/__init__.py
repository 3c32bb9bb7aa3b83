"""Spend limits beyond virtual keys: per end user (``users``)."""

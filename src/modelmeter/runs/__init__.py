"""Runs the server starts itself (``POST /api/runs``): the CLI's runner, in a thread of its own."""

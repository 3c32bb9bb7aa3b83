"""What ``serve`` says about signing in when it starts with a key it did not just generate."""

from __future__ import annotations


def reminder(dashboard_url: str, from_settings: bool) -> str:
    """How to sign in: the stored key is only a hash, so the server cannot show it again."""
    if from_settings:
        return (
            f"modelmeter: dashboard at {dashboard_url} - sign in with the admin key set in "
            "MODELMETER_ADMIN_KEY (or admin_key in [server])"
        )
    return (
        f"modelmeter: dashboard at {dashboard_url} - sign in with the admin key printed at the first "
        "start (only its hash is kept).\n  Lost it? Set MODELMETER_ADMIN_KEY (or admin_key in "
        "[server]) to a key of your choice and restart: the server then takes that key instead."
    )

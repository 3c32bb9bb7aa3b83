"""0016_upstream_rollups and 0017_topn_breakdowns, frozen: their tables (their data steps are
``migration_steps.fill_upstream_rollups_0016`` and ``migration_steps.backfill_top_0017``).

Never edit this once shipped: it holds its own SQL and never calls today's application code.
"""

from __future__ import annotations


def statements_0016() -> tuple[str, ...]:
    """Rollups per (deployment, upstream, minute / hour) of routed calls."""
    return tuple(
        f"""CREATE TABLE rollup_upstream_{name} (
            deployment TEXT NOT NULL,
            upstream TEXT NOT NULL,
            bucket_us BIGINT NOT NULL,
            requests BIGINT NOT NULL,
            succeeded BIGINT NOT NULL,
            rescued BIGINT NOT NULL,
            latency_us BIGINT NOT NULL,
            spend_pusd BIGINT NOT NULL,
            PRIMARY KEY (deployment, bucket_us, upstream)
        )/*WITHOUT_ROWID*/"""
        for name in ("minute", "hour")
    )


def statements_0017() -> tuple[str, ...]:
    """Per deployment, dimension and hour: the listed values' rows and one "others" row."""
    return (
        """CREATE TABLE rollup_top_hour (
            deployment TEXT NOT NULL,
            dim TEXT NOT NULL,
            bucket_us BIGINT NOT NULL,
            other SMALLINT NOT NULL,
            value TEXT NOT NULL,
            requests BIGINT NOT NULL,
            succeeded BIGINT NOT NULL,
            prompt_tokens BIGINT NOT NULL,
            completion_tokens BIGINT NOT NULL,
            total_tokens BIGINT NOT NULL,
            spend_pusd BIGINT NOT NULL,
            latency_bins /*JSON*/,
            PRIMARY KEY (deployment, dim, bucket_us, other, value)
        )/*WITHOUT_ROWID*/""",
    )

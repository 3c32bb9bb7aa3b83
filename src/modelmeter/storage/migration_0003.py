"""0003_rollups, frozen: the per-minute and per-hour rollup tables and their first
latency histograms (the backfill is ``migration_steps.backfill_rollups_0003``).

Never edit this once shipped: it holds its own SQL and never calls today's application code.
"""

from __future__ import annotations


def statements_0003() -> tuple[str, ...]:
    out: list[str] = []
    for name in ("minute", "hour"):
        out.append(
            f"""CREATE TABLE rollup_{name} (
                deployment TEXT NOT NULL,
                bucket_us BIGINT NOT NULL,
                requests BIGINT NOT NULL,
                succeeded BIGINT NOT NULL,
                prompt_tokens BIGINT NOT NULL,
                completion_tokens BIGINT NOT NULL,
                total_tokens BIGINT NOT NULL,
                cached_tokens BIGINT NOT NULL,
                reasoning_tokens BIGINT NOT NULL,
                spend_pusd BIGINT NOT NULL,
                latency_sum DOUBLE PRECISION NOT NULL,
                ttft_sum DOUBLE PRECISION NOT NULL,
                ttft_count BIGINT NOT NULL,
                PRIMARY KEY (deployment, bucket_us)
            )/*WITHOUT_ROWID*/"""
        )
        # One row per latency bin (0005 folds these into the bucket's row; 0006 drops them).
        out.append(
            f"""CREATE TABLE rollup_hist_{name} (
                deployment TEXT NOT NULL,
                bucket_us BIGINT NOT NULL,
                bin SMALLINT NOT NULL,
                n BIGINT NOT NULL,
                PRIMARY KEY (deployment, bucket_us, bin)
            )/*WITHOUT_ROWID*/"""
        )
    return tuple(out)

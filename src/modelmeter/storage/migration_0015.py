"""0015_insights, frozen: failed requests counted by class in every rollup bucket (errors
by type over time), and rollups per call type (breakdowns), filled from the records.

Never edit this once shipped: it holds its own SQL and never calls today's application code.
"""

from __future__ import annotations

_ERROR_CLASSES_0015 = {
    "err_rate_limited": "http_status = 429",
    "err_hangup": "http_status = 499",
    "err_timeout": "http_status IN (408, 504)",
    "err_client": "http_status BETWEEN 400 AND 499 AND http_status NOT IN (408, 429, 499)",
    "err_upstream": "http_status BETWEEN 500 AND 599 AND http_status <> 504",
    "err_other": "(http_status < 400 OR http_status > 599)",
}


def statements_0015() -> tuple[str, ...]:
    out: list[str] = []
    for name, size in (("minute", 60_000_000), ("quarter", 900_000_000), ("hour", 3_600_000_000)):
        for col in _ERROR_CLASSES_0015:
            out.append(f"ALTER TABLE rollup_{name} ADD COLUMN {col} BIGINT NOT NULL DEFAULT 0")
        # Buckets of the records stored before: counted from them.
        sums = ", ".join(
            f"SUM(CASE WHEN status <> 'success' AND {cond} THEN 1 ELSE 0 END) AS {col}"
            for col, cond in _ERROR_CLASSES_0015.items()
        )
        sets = ", ".join(f"{col} = e.{col}" for col in _ERROR_CLASSES_0015)
        out.append(
            f"UPDATE rollup_{name} SET {sets} FROM (SELECT deployment, start_us - start_us % {size} AS bucket_us, "
            f"{sums} FROM records WHERE status <> 'success' GROUP BY 1, 2) AS e "
            f"WHERE rollup_{name}.deployment = e.deployment AND rollup_{name}.bucket_us = e.bucket_us"
        )
    # Per call type (issue 14 breakdowns), per minute and hour, filled from the records.
    for name, size in (("minute", 60_000_000), ("hour", 3_600_000_000)):
        out.append(
            f"""CREATE TABLE rollup_dim_{name} (
            deployment TEXT NOT NULL,
            dim TEXT NOT NULL,
            value TEXT NOT NULL,
            bucket_us BIGINT NOT NULL,
            requests BIGINT NOT NULL,
            succeeded BIGINT NOT NULL,
            prompt_tokens BIGINT NOT NULL,
            completion_tokens BIGINT NOT NULL,
            total_tokens BIGINT NOT NULL,
            spend_pusd BIGINT NOT NULL,
            PRIMARY KEY (deployment, dim, value, bucket_us)
        )/*WITHOUT_ROWID*/"""
        )
        for dim, col in (("call_type", "call_type"),):
            out.append(
                f"INSERT INTO rollup_dim_{name} SELECT deployment, '{dim}', COALESCE({col}, ''), "
                f"start_us - start_us % {size}, COUNT(*), SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END), "
                "SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens), SUM(spend_pusd) "
                "FROM records GROUP BY 1, 2, 3, 4"
            )
    return tuple(out)

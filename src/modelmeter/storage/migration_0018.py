"""0018_panel_sums, frozen: the rollup sums of the cost, cache and retries panels, added to every
resolution and filled from the records stored before (in SQL, as each database reads JSON).

Never edit this once shipped. It repeats, in SQL, the arithmetic the writer used when it shipped
(``storage/panel_sums.py`` then): pico-dollars as ``int(x + 0.5)`` of a non-negative double, so a
bucket filled here equals one the writer fills from the same rows.
"""

from __future__ import annotations

from typing import Any

from modelmeter.storage.database import Database

_COLUMNS_0018 = (
    "cost_input_pusd",
    "cost_cached_pusd",
    "cost_cache_write_pusd",
    "cost_output_pusd",
    "cost_reasoning_pusd",
    "cache_write_tokens",
    "cached_saved_pusd",
    "cache_hits",
    "cache_hit_saved_pusd",
    "cache_hit_prompt_tokens",
    "cache_hit_cached_tokens",
    "retried",
    "rescued",
    "retry_attempts",
)
_RESOLUTIONS_0018 = (("minute", 60_000_000), ("quarter", 900_000_000), ("hour", 3_600_000_000))

# One breakdown line's fields, and the input rate of its record, per database.
_SQLITE_0018 = {
    "lines": "json_each(r.cost_breakdown) AS j",
    "component": "json_extract(j.value, '$.component')",
    "tokens": "json_extract(j.value, '$.tokens')",
    "rate": "json_extract(j.value, '$.usd_per_million')",
    "cost": "json_extract(j.value, '$.cost')",
    "input_rate": "(SELECT json_extract(k.value, '$.usd_per_million') FROM json_each(r.cost_breakdown) AS k "
    "WHERE json_extract(k.value, '$.component') = 'input' LIMIT 1)",
    "round": "CAST(({x}) + 0.5 AS INTEGER)",
}
_POSTGRES_0018 = {
    "lines": "jsonb_array_elements(r.cost_breakdown::jsonb) AS j(value)",
    "component": "(j.value ->> 'component')",
    "tokens": "(j.value ->> 'tokens')::bigint",
    "rate": "(j.value ->> 'usd_per_million')::double precision",
    "cost": "(j.value ->> 'cost')::double precision",
    "input_rate": "(SELECT (k.value ->> 'usd_per_million')::double precision "
    "FROM jsonb_array_elements(r.cost_breakdown::jsonb) AS k(value) WHERE k.value ->> 'component' = 'input' LIMIT 1)",
    "round": "trunc(({x}) + 0.5)::bigint",
}


def _line_sums_0018(d: dict[str, str]) -> dict[str, str]:
    """Per column, the SUM over breakdown lines (joined to their records) that gives it."""

    def rnd(x: str) -> str:
        return d["round"].format(x=x)

    comp, tokens, rate, cost = d["component"], d["tokens"], d["rate"], d["cost"]
    pusd = rnd(f"{cost} * 1e12")
    out = {
        f"cost_{name}_pusd": f"SUM(CASE WHEN {comp} IN ({parts}) THEN {pusd} ELSE 0 END)"
        for name, parts in (
            ("input", "'input'"),
            ("cached", "'cached_input'"),
            ("cache_write", "'cache_write', 'cache_write_1h'"),
            ("output", "'output'"),
            ("reasoning", "'reasoning'"),
        )
    }
    out["cache_write_tokens"] = (
        f"SUM(CASE WHEN {comp} IN ('cache_write', 'cache_write_1h') AND r.cache_hit = 0 THEN {tokens} ELSE 0 END)"
    )
    input_rate = d["input_rate"]
    saved = f"{rnd(f'{tokens} * {input_rate} * 1e6')} - {pusd}"
    out["cached_saved_pusd"] = (
        f"SUM(CASE WHEN {comp} = 'cached_input' AND r.cache_hit = 0 AND {input_rate} IS NOT NULL "
        f"THEN {saved} ELSE 0 END)"
    )
    out["cache_hit_saved_pusd"] = f"SUM(CASE WHEN r.cache_hit <> 0 THEN {rnd(f'{tokens} * {rate} * 1e6')} ELSE 0 END)"
    return out


_ROW_SUMS_0018 = {
    "cache_hits": "SUM(CASE WHEN cache_hit <> 0 THEN 1 ELSE 0 END)",
    "cache_hit_prompt_tokens": "SUM(CASE WHEN cache_hit <> 0 THEN prompt_tokens ELSE 0 END)",
    "cache_hit_cached_tokens": "SUM(CASE WHEN cache_hit <> 0 THEN cached_tokens ELSE 0 END)",
    "retried": "SUM(CASE WHEN retries > 0 THEN 1 ELSE 0 END)",
    "rescued": "SUM(CASE WHEN retries > 0 AND status = 'success' THEN 1 ELSE 0 END)",
    "retry_attempts": "SUM(CASE WHEN retries > 0 THEN retries ELSE 0 END)",
}


def _update_0018(table: str, sums: dict[str, str], source: str) -> str:
    sets = ", ".join(f"{col} = COALESCE(e.{col}, 0)" for col in sums)
    cols = ", ".join(f"{expr} AS {col}" for col, expr in sums.items())
    return (
        f"UPDATE {table} SET {sets} FROM (SELECT {source.format(cols=cols)}) AS e "
        f"WHERE {table}.deployment = e.deployment AND {table}.bucket_us = e.bucket_us"
    )


def statements_0018() -> tuple[str, ...]:
    return tuple(
        f"ALTER TABLE rollup_{name} ADD COLUMN {col} BIGINT NOT NULL DEFAULT 0"
        for name, _ in _RESOLUTIONS_0018
        for col in _COLUMNS_0018
    )


def backfill_0018(db: Database, tx: Any) -> None:
    """Buckets of the records stored before 0018: their panel sums, from the records. The records
    (and their JSON) are read once, into minute sums; quarters and hours are summed from those."""
    d = _SQLITE_0018 if db.dialect == "sqlite" else _POSTGRES_0018
    minute = "r.start_us - r.start_us % 60000000"
    lines, rows = _line_sums_0018(d), _ROW_SUMS_0018
    for temp, sums, source in (
        ("mm_lines_0018", lines, f"records AS r, {d['lines']}"),
        ("mm_rows_0018", rows, "records AS r WHERE r.retries > 0 OR r.cache_hit <> 0"),
    ):
        cols = ", ".join(f"{expr} AS {col}" for col, expr in sums.items())
        tx.execute(
            f"CREATE TEMP TABLE {temp} AS SELECT r.deployment AS deployment, {minute} AS bucket_us, {cols} "
            f"FROM {source} GROUP BY 1, 2"
        )
    for name, size in _RESOLUTIONS_0018:
        for temp, sums in (("mm_lines_0018", lines), ("mm_rows_0018", rows)):
            tx.execute(
                _update_0018(
                    f"rollup_{name}",
                    {col: f"SUM(m.{col})" for col in sums},
                    f"m.deployment AS deployment, m.bucket_us - m.bucket_us % {size} AS bucket_us, {{cols}} "
                    f"FROM {temp} AS m GROUP BY 1, 2",
                )
            )
    tx.execute("DROP TABLE mm_lines_0018")
    tx.execute("DROP TABLE mm_rows_0018")

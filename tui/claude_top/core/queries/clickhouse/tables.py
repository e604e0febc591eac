"""claude-top's typed tables beside the exporter's: what the panes read, as columns.

The exporter keeps every attribute in a Map, and reading one key reads the whole Map: at
millions of events a pane would scan gigabytes. `claude_top_events` and `claude_top_spans` hold
the attributes the panes need as typed columns (the very expressions the source otherwise runs
on the Maps, `reader.Exprs`), filled by materialized views as the collector inserts, and once
from what is already there. ReplacingMergeTree by record identity, so the collector's retries
merge away (the queries still count each record once before that). Their per-hour rollups
(`rollups`) are made beside them. A lead with CREATE rights runs `claude-top team-tables
--source clickhouse://...` once, and again after an upgrade (what is there is kept, what is new
is made and filled); the source uses them when found and says so.
"""

from __future__ import annotations

from claude_top.core.queries.clickhouse import rollups
from claude_top.core.queries.clickhouse.exprs import Exprs
from claude_top.core.queries.clickhouse.layout import EVENTS_TABLE, SPANS_TABLE, Layout

_EVENTS_SKIP = ("attributes", "body", "scope_name", "service_name", "severity_number")
_SPANS_SKIP = ("attributes", "ev_times", "ev_names", "ev_attrs", "ln_traces", "ln_spans")
_SPANS_SKIP += ("ln_attrs", "status_message", "scope_name", "service_name")


def _select(exprs: dict[str, str], skip: tuple[str, ...], source: str, extra: str = "") -> str:
    cols = ", ".join(f"{e} AS `{c}`" for c, e in exprs.items() if c not in skip)
    return f"SELECT Timestamp, {cols}{extra} FROM {source}"


def statements(layout: Layout) -> list[tuple[str, str]]:
    """(what, SQL) to create the typed tables and their rollups, their views, and fill them
    from what is there; each CREATE is IF NOT EXISTS. A rollup's view is made before its typed
    table is filled (which fills the rollup too); a rollup made beside a typed table that was
    already there is filled from it."""
    x = Exprs(layout)
    db = f"`{layout.database}`"
    out: list[tuple[str, str]] = []
    if x.logs:
        select = _select(x.ev, _EVENTS_SKIP, x.logs, f", {x.event_key()} AS _key")
        out += _table(db, EVENTS_TABLE, "_key", select, layout)
    if x.traces:
        select = _select(x.sp, _SPANS_SKIP, x.traces)
        out += _table(db, SPANS_TABLE, "trace_id, span_id", select, layout)
    once: dict[str, str] = {}
    for what, sql in out:  # the resources table is made with the first typed table
        once.setdefault(what, sql)
    return list(once.items())


def drop_statements(layout: Layout) -> list[tuple[str, str]]:
    """(what, SQL) to drop every table and view of claude-top's in the database (the exporter's
    are never touched), views first, so that `statements` makes them afresh."""
    db = f"`{layout.database}`"
    names = sorted(layout.ours, key=lambda n: (not n.endswith("_mv"), n))
    return [(f"drop {n}", f"DROP TABLE IF EXISTS {db}.`{n}`") for n in names]


def _table(db: str, name: str, key: str, select: str, layout: Layout) -> list[tuple[str, str]]:
    there = name in {t.name for t in (layout.events_table, layout.spans_table) if t}
    views = rollups.resource_statements(
        db, name, there and rollups.resource_view(name) not in layout.ours
    )
    for rollup in rollups.ROLLUPS:
        if rollup.typed == name:
            views += rollups.statements(db, rollup, there and rollup.name not in layout.ours)
    return [
        (
            f"table {name}",
            f"CREATE TABLE IF NOT EXISTS {db}.`{name}` "
            "ENGINE = ReplacingMergeTree PARTITION BY toDate(Timestamp) "
            f"ORDER BY (toStartOfFiveMinutes(Timestamp), {key}) "
            f"SETTINGS allow_nullable_key = 1 EMPTY AS {select}",
        ),
        *views,
        (
            f"view {name}_mv",
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.`{name}_mv` TO {db}.`{name}` AS {select}",
        ),
        *([] if there else [(f"fill {name}", f"INSERT INTO {db}.`{name}` {select}")]),
    ]

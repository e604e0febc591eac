"""`claude-top team-tables --source clickhouse://...`: make claude-top's typed tables beside
the exporter's (`core.queries.clickhouse.tables`), once, with a user allowed to CREATE; or
`--print` the SQL for whoever runs the database; `--rebuild` drops claude-top's own tables
first (after an upgrade that changed them)."""

from __future__ import annotations

import dataclasses
import sys
import time

from claude_top.commands.common import EXIT_OK, EXIT_USAGE, fail
from claude_top.core.queries.reader import SourceUnavailable


def run_team_tables(args) -> int:
    from claude_top.core.queries.clickhouse import ClickHouseSource
    from claude_top.core.queries.clickhouse.tables import drop_statements, statements

    try:
        source = ClickHouseSource.open(args.source)
    except ValueError as exc:
        return fail("team-tables", str(exc))
    try:
        if source.problem:
            return fail("team-tables", f"{source.label}: {source.problem}")
        print(source.describe(), file=sys.stderr)
        layout = source.layout
        todo = []
        if args.rebuild:
            todo = drop_statements(layout)
            layout = dataclasses.replace(
                layout, events_table=None, spans_table=None, ours={}, rollups=set()
            )
        todo += statements(layout)
        if args.print:
            print(";\n\n".join(sql for _, sql in todo) + ";")
            return EXIT_OK
        for t in (layout.events_table, layout.spans_table):
            if t is not None:
                print(f"fill {t.name}: already there, not filled again", file=sys.stderr)
        for what, sql in todo:
            started = time.monotonic()
            source.runner.command(sql)
            print(f"{what}: done in {time.monotonic() - started:.1f} s", file=sys.stderr)
    except SourceUnavailable as exc:
        return fail("team-tables", str(exc))
    finally:
        source.close()
    return EXIT_OK if todo else EXIT_USAGE

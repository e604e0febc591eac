"""The team's commands as docs/team.md gives them, run for real: `claude-top export --source
clickhouse://...` through clickhouse-connect over HTTP to the ClickHouse engine (chdb behind
`clickhouse_http.py`), against `claude-top export --db` of the same captures; wrong credentials
and a missing database say what failed."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest

import clickhouse_rows as cr
from claude_top.core.sources.otlp.decode import decode_protobuf
from claude_top.core.store.commit import write_rows
from claude_top.core.store.database import Store
from clickhouse_http import ClickHouseHTTP
from truth import GRPC_FIXTURES, Truth, grpc_requests

REQUESTS = [r for name in GRPC_FIXTURES for r in grpc_requests(name)]


def claude_top(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "claude_top.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def team_db():
    session, db = cr.session(), cr.new_database("cli")
    cr.create_tables(session, "current", db)
    cr.load(session, REQUESTS, "current", db)
    return db


def rows(path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_export_from_the_team_clickhouse_matches_the_local_export(tmp_path, team_db):
    db = tmp_path / "local.duckdb"
    store = Store.open(str(db))
    for signal, body in REQUESTS:
        write_rows(store, [decode_protobuf(signal, body)])
    store.close()
    with ClickHouseHTTP({"lead": "s3cret"}) as ch:
        url = f"clickhouse://lead:s3cret@127.0.0.1:{ch.port}/{team_db}"
        team = claude_top("export", "--source", url, "--out", str(tmp_path / "team"))
        assert team.returncode == 0, team.stderr
        assert "exporter layout in" in team.stdout and "otel_logs with EventName" in team.stdout
        assert "s3cret" not in team.stdout + team.stderr
    local = claude_top("export", "--db", str(db), "--out", str(tmp_path / "local"))
    assert local.returncode == 0, local.stderr
    truth = Truth(*GRPC_FIXTURES)
    for name in ("sessions", "models", "tools"):
        assert rows(tmp_path / "team" / f"{name}.csv") == rows(tmp_path / "local" / f"{name}.csv")
    assert len(rows(tmp_path / "team" / "events.csv")) == len(truth.events)
    assert len(rows(tmp_path / "team" / "spans.csv")) == len(truth.spans)


def test_wrong_credentials_and_a_missing_database_are_named(tmp_path, team_db):
    with ClickHouseHTTP({"lead": "s3cret"}) as ch:
        bad = claude_top(
            "export",
            "--source",
            f"clickhouse://lead:nope@127.0.0.1:{ch.port}/{team_db}",
            "--out",
            str(tmp_path / "a"),
        )
        assert bad.returncode == 2
        assert "wrong user or password for 'lead'" in bad.stderr
        assert "nope" not in bad.stderr
        missing = claude_top(
            "export",
            "--source",
            f"clickhouse://lead:s3cret@127.0.0.1:{ch.port}/nothing_here",
            "--out",
            str(tmp_path / "b"),
        )
        assert missing.returncode == 2
        assert "there is no database 'nothing_here'" in missing.stderr
    assert not (tmp_path / "a").exists()


def test_team_tables_made_by_the_command_give_the_same_export(tmp_path):
    session, db = cr.session(), cr.new_database("cli_typed")
    cr.create_tables(session, "five_minutes", db)
    half = len(REQUESTS) // 2
    cr.load(session, REQUESTS[:half], "five_minutes", db)
    with ClickHouseHTTP({"lead": "pw"}) as ch:
        url = f"clickhouse://lead:pw@127.0.0.1:{ch.port}/{db}"
        shown = claude_top("team-tables", "--source", url, "--print")
        assert shown.returncode == 0, shown.stderr
        assert f"CREATE MATERIALIZED VIEW IF NOT EXISTS `{db}`.`claude_top_events_mv`" in (
            shown.stdout
        )
        assert "no typed tables" in shown.stderr
        made = claude_top("team-tables", "--source", url)
        assert made.returncode == 0, made.stderr
        assert "fill claude_top_events: done" in made.stderr
        cr.load(session, REQUESTS[half:], "five_minutes", db)  # the views fill these
        again = claude_top("team-tables", "--source", url)
        assert "already there, not filled again" in again.stderr
        team = claude_top("export", "--source", url, "--out", str(tmp_path / "team"))
        assert team.returncode == 0, team.stderr
        assert (
            "claude-top's typed tables: claude_top_events, claude_top_spans, "
            "claude_top_event_models, claude_top_event_sessions, claude_top_event_tools, "
            "claude_top_span_sessions"
        ) in team.stdout
    truth = Truth(*GRPC_FIXTURES)
    sessions = {r["session_id"]: r for r in rows(tmp_path / "team" / "sessions.csv")}
    assert set(sessions) == truth.sessions()
    for sid, r in sessions.items():
        assert float(r["cost_usd"]) == truth.cost(sid)
        assert int(r["api_requests"]) == len(truth.api_requests(sid))
    tools = {r["tool_name"]: int(r["calls"]) for r in rows(tmp_path / "team" / "tools.csv")}
    assert tools == truth.tool_calls()


def test_team_tables_rebuild_makes_an_earlier_claude_tops_tables_again(tmp_path, monkeypatch):
    """Typed tables an earlier claude-top made (no `input`), rebuilt by `team-tables --rebuild`:
    claude-top's tables and views dropped and made again, the exporter's untouched, nothing
    counted twice."""
    from claude_top.core.queries.clickhouse import ChdbRunner, ClickHouseSource, tables

    session, db = cr.session(), cr.new_database("cli_rebuild")
    cr.create_tables(session, "current", db)
    cr.load(session, REQUESTS, "current", db)
    with monkeypatch.context() as m:
        m.setattr(tables, "_EVENTS_SKIP", (*tables._EVENTS_SKIP, "input"))
        earlier = ClickHouseSource(ChdbRunner(session, db), "chdb")
        for _, sql in tables.statements(earlier.layout):
            session.query(sql)
    exporter_rows = _exporter_rows(session, db)
    with ClickHouseHTTP({"lead": "pw"}) as ch:
        url = f"clickhouse://lead:pw@127.0.0.1:{ch.port}/{db}"
        before = claude_top("export", "--source", url, "--out", str(tmp_path / "before"))
        assert "claude_top_events lacks input" in before.stdout
        shown = claude_top("team-tables", "--source", url, "--rebuild", "--print")
        assert shown.returncode == 0, shown.stderr
        drops = [line for line in shown.stdout.splitlines() if line.startswith("DROP")]
        assert drops[0] == f"DROP TABLE IF EXISTS `{db}`.`claude_top_event_models_mv`;"
        ours = session.query(
            f"SELECT name FROM system.tables WHERE database = '{db}' "
            "AND startsWith(name, 'claude_top_')",
            "CSV",
        ).bytes()
        assert len(drops) == 15  # 7 tables, 8 views
        assert {d.split("`")[3] for d in drops} == set(ours.decode().replace('"', "").split())
        made = claude_top("team-tables", "--source", url, "--rebuild")
        assert made.returncode == 0, made.stderr
        assert "drop claude_top_events_mv: done" in made.stderr
        assert "fill claude_top_events: done" in made.stderr
        after = claude_top("export", "--source", url, "--out", str(tmp_path / "after"))
        assert after.returncode == 0, after.stderr
        assert "lacks input" not in after.stdout
    assert _exporter_rows(session, db) == exporter_rows
    for name in ("sessions.csv", "tools.csv", "models.csv"):
        assert rows(tmp_path / "after" / name) == rows(tmp_path / "before" / name)
    truth = Truth(*GRPC_FIXTURES)
    tools = {r["tool_name"]: int(r["calls"]) for r in rows(tmp_path / "after" / "tools.csv")}
    assert tools == truth.tool_calls()


def _exporter_rows(session, db: str) -> dict[str, int]:
    got = session.query(
        f"SELECT table, sum(rows) FROM system.parts WHERE database = '{db}' AND active "
        "AND startsWith(table, 'otel_') GROUP BY table",
        "CSV",
    ).bytes()
    return dict(
        (t.strip('"'), int(n)) for t, n in (line.split(",") for line in got.decode().split())
    )

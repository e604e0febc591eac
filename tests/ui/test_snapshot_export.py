"""ctrl+s / e: a CSV snapshot of the focused pane as shown, plus every table, from the UI."""

from __future__ import annotations

import csv
import errno
import json
import time
from collections import defaultdict
from pathlib import Path

import pytest
from uihelpers import NOW_NS, make_app, settle

from claude_top.core import export
from claude_top.core.export import FILES, SESSIONS_CSV, TOOLS_CSV, TURNS_CSV
from truth import GRPC_FIXTURES, Truth

TRUTH = Truth(*GRPC_FIXTURES)
STAMP = time.strftime("%Y%m%d-%H%M%S", time.localtime(NOW_NS // 1_000_000_000))
FOLDER = f"claude-top-export-{STAMP}"
CONTINUED_SESSION = "851b8ffd-2541-408a-9c22-e285d2e26c58"
"""Two prompts, one per process of a `claude --continue`."""
ALL_FILES = sorted([f"{n}.csv" for n in FILES] + ["snapshot.json"])


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def notes(app) -> list[tuple[str, str]]:
    return [(n.severity, n.message) for n in app._notifications]


async def type_filter(pilot, text: str) -> None:
    await pilot.press("slash", *text, "enter")
    await settle(pilot)


async def test_ctrl_s_writes_the_sessions_pane_as_shown_and_every_table(ui_store, tmp_path):
    app = make_app(ui_store, export_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.main.table("sessions")
        await pilot.press("s", "s")  # last -> status -> cost
        await type_filter(pilot, "sonnet")  # "e" and "s" typed into the filter, not keys
        assert (table.sort_key, app.filter_text) == ("cost", "sonnet")
        await pilot.press("ctrl+s")
        await settle(pilot)
        shown = table.keys_in_order()
        assert app.is_running
    sonnet = {
        s for s in TRUTH.sessions() if any("sonnet" in e["model"] for e in TRUTH.api_requests(s))
    }
    by_cost = sorted(sonnet, key=lambda s: (TRUTH.cost(s), s), reverse=True)
    assert len(by_cost) >= 2
    assert shown == by_cost

    (out,) = tmp_path.iterdir()
    assert out.name == FOLDER
    assert sorted(p.name for p in out.iterdir()) == sorted([*ALL_FILES, "focused-sessions.csv"])
    focused = lines(out / "focused-sessions.csv")
    full = lines(out / "sessions.csv")
    # the CLI's columns and formatting; rows in screen order, each the same line as sessions.csv
    assert focused[0] == full[0] == ",".join(SESSIONS_CSV)
    by_id = {line.split(",", 1)[0]: line for line in full[1:]}
    assert set(by_id) == sonnet
    assert [line.split(",", 1)[0] for line in focused[1:]] == by_cost
    assert focused[1:] == [by_id[s] for s in by_cost]
    for row in rows(out / "focused-sessions.csv"):
        assert float(row["cost_usd"]) == pytest.approx(TRUTH.cost(row["session_id"]), abs=1e-12)
        assert int(row["api_requests"]) == len(TRUTH.api_requests(row["session_id"]))

    snap = json.loads((out / "snapshot.json").read_text())
    assert snap["view"] == {
        "pane": "sessions",
        "file": "focused-sessions.csv",
        "rows": len(by_cost),
        "sort": {"column": "cost", "label": "Cost", "descending": True},
        "text_filter": "sonnet",
        "session_id": None,
    }
    assert snap["window"] == "all"
    assert snap["filter"] == {
        "since": None,
        "since_ns": None,
        "session_id": None,
        "turn": None,
        "text": "sonnet",
        "agent": None,
    }
    assert snap["exported_at_ns"] == NOW_NS
    events = sum(e["session.id"] in sonnet for e in TRUTH.events if "session.id" in e)
    models = {e["model"] for s in sonnet for e in TRUTH.api_requests(s) if "sonnet" in e["model"]}
    assert snap["counts"] == {
        "sessions.csv": len(sonnet),
        "models.csv": len(models),
        "tools.csv": 0,  # no tool name or session id contains "sonnet", as on screen
        "spans.csv": len(rows(out / "spans.csv")),
        "events.csv": events,
        "focused-sessions.csv": len(by_cost),
    }
    assert {r["session_id"] for r in rows(out / "events.csv")} == sonnet
    assert {r["session_id"] for r in rows(out / "spans.csv")} <= sonnet
    assert {r["model"] for r in rows(out / "models.csv")} == models
    assert (
        "information",
        f"focused-sessions.csv ({len(by_cost)} rows) and every table written to {out}/",
    ) in notes(app)


async def test_e_writes_the_focused_tools_and_turns_panes(ui_store, tmp_path):
    totals: dict[str, float] = defaultdict(float)
    for e in TRUTH.tool_results():
        totals[e["tool_name"]] += float(e["duration_ms"])
    ascending = sorted(totals, key=lambda t: (totals[t], t))
    app = make_app(ui_store, export_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("2", "r")
        tools = app.main.table("tools")
        assert tools.keys_in_order() == ascending
        await pilot.press("e")
        await settle(pilot)
        assert app.main.table("sessions").select_key(CONTINUED_SESSION)
        await settle(pilot)
        await pilot.press("4")
        await settle(pilot)
        session = app.main.table("sessions").cursor_key
        turns = app.main.table("turns").rows_in_order()
        await pilot.press("e")
        await settle(pilot)
    first, second = sorted(tmp_path.iterdir())
    assert (first.name, second.name) == (FOLDER, f"{FOLDER}-2")

    focused = lines(first / "focused-tools.csv")
    full = lines(first / "tools.csv")
    assert focused[0] == full[0] == ",".join(TOOLS_CSV)
    assert focused[1:] == full[1:][::-1]  # tools.csv: by total time, largest first
    assert [r["tool_name"] for r in rows(first / "focused-tools.csv")] == ascending
    assert {r["tool_name"]: int(r["calls"]) for r in rows(first / "tools.csv")} == (
        TRUTH.tool_calls()
    )
    snap = json.loads((first / "snapshot.json").read_text())
    assert snap["view"]["pane"] == "tools"
    assert snap["view"]["sort"] == {"column": "total_ms", "label": "Total", "descending": False}
    assert snap["filter"]["text"] is None

    assert session == CONTINUED_SESSION
    assert len(turns) == 2
    got = rows(second / "focused-turns.csv")
    assert lines(second / "focused-turns.csv")[0] == ",".join(TURNS_CSV)
    assert [r["n"] for r in got] == [str(t["n"]) for t in turns]
    assert {r["session_id"] for r in got} == {session}
    prompts = {
        e["prompt.id"] for e in TRUTH.events if e.get("session.id") == session and "prompt.id" in e
    }
    assert {r["prompt_id"] for r in got} == prompts
    cost = sum(float(r["cost_usd"] or 0) for r in got)
    assert cost == pytest.approx(TRUTH.cost(session), abs=1e-12)
    snap = json.loads((second / "snapshot.json").read_text())
    assert snap["view"]["pane"] == "turns"
    assert snap["view"]["session_id"] == session


async def test_unwritable_export_dir_is_an_error_and_the_ui_keeps_running(ui_store, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    app = make_app(ui_store, export_dir=blocker / "exports")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
        severity, message = notes(app)[-1]
        assert severity == "error"
        assert message == f"cannot write a snapshot under {blocker / 'exports'}: Not a directory"
        await pilot.press("t")  # all -> 15m: still responding to keys
        await settle(pilot)
        assert app.window == "15m"
        assert app.is_running
    assert sorted(tmp_path.iterdir()) == [blocker]


async def test_a_failure_midway_leaves_no_folder_behind(ui_store, tmp_path, monkeypatch):
    def full_disk(path, view):
        Path(path).write_text("session_id,first")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export, "write_pane_csv", full_disk)
    app = make_app(ui_store, export_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("e")
        await settle(pilot)
        assert notes(app)[-1] == (
            "error",
            f"cannot write a snapshot under {tmp_path}: No space left on device",
        )
        monkeypatch.undo()
        await pilot.press("e")
        await settle(pilot)
        assert notes(app)[-1][0] == "information"
    (out,) = tmp_path.iterdir()
    assert out.name == FOLDER
    assert sorted(p.name for p in out.iterdir()) == sorted([*ALL_FILES, "focused-sessions.csv"])


async def test_export_is_in_the_palette_and_the_help(ui_store, tmp_path):
    app = make_app(ui_store, export_dir=tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        binding = next(b for b in app.BINDINGS if getattr(b, "id", None) == "app.export")
        assert binding.key.split(",") == ["ctrl+s", "e"]
        titles = {c.title: c for c in app.get_system_commands(app.screen)}
        titles["Export a CSV snapshot"].callback()
        await settle(pilot)
    (out,) = tmp_path.iterdir()
    # the pane as shown (sessions without a prompt folded away) in sessions.csv's format:
    # empty strings, NULLs and JSON quoted as DuckDB's COPY does; sessions.csv keeps them all
    focused = lines(out / "focused-sessions.csv")
    full = lines(out / "sessions.csv")
    assert len(focused) == len(TRUTH.working_sessions()) + 1
    assert len(full) == len(TRUTH.sessions()) + 1
    assert ",,," in "".join(full) and ',"",' in "".join(full)
    assert focused[0] == full[0]
    working = [line for line in full[1:] if line.split(",")[0] in TRUTH.working_sessions()]
    assert sorted(focused[1:]) == sorted(working)


def test_export_dir_option():
    from claude_top.cli import build_parser

    parser = build_parser()
    assert parser.parse_args([]).export_dir is None  # the current directory
    assert parser.parse_args(["--export-dir", "/x", "demo"]).export_dir == "/x"
    assert parser.parse_args(["demo", "--export-dir", "/y"]).export_dir == "/y"


async def test_ui_snapshots_are_as_private_as_the_cli_s(ui_store, tmp_path):
    """Whatever the process umask: the folder 0700, every file 0600 (as `claude-top export`)."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        app = make_app(ui_store, export_dir=tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await pilot.press("ctrl+s")
            await settle(pilot)
            await app.workers.wait_for_complete()
    finally:
        os.umask(old)
    (folder,) = tmp_path.iterdir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert sorted(p.name for p in folder.iterdir()) == sorted([*ALL_FILES, "focused-sessions.csv"])
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def _turn_traces(fixture: str) -> dict[str, set[str]]:
    """Each prompt id's trace ids, from the captured log records (the truth, not the code)."""
    import base64

    from truth import request_docs

    out: dict[str, set[str]] = defaultdict(set)
    for _signal, req in request_docs(fixture):
        for rl in req.get("resourceLogs", []):
            for sl in rl.get("scopeLogs", []):
                for r in sl.get("logRecords", []):
                    attrs = {a["key"]: a["value"].get("stringValue") for a in r["attributes"]}
                    if attrs.get("prompt.id") and r.get("traceId"):
                        out[attrs["prompt.id"]].add(base64.b64decode(r["traceId"]).hex())
    return out


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
async def test_ctrl_s_on_a_session_writes_its_turns_and_only_its_telemetry(
    ui_store, tmp_path, size
):
    app = make_app(ui_store, export_dir=tmp_path)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        assert app.main.table("sessions").select_key(CONTINUED_SESSION)
        await pilot.press("1", "enter")
        await settle(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
        await app.workers.wait_for_complete()
    out = tmp_path / FOLDER
    assert sorted(p.name for p in out.iterdir()) == sorted([*ALL_FILES, "focused-turns.csv"])
    prompts = [
        e["prompt.id"]
        for e in TRUTH.events
        if e.get("session.id") == CONTINUED_SESSION and e["event.name"] == "user_prompt"
    ]
    turns = rows(out / "focused-turns.csv")
    assert [t["prompt_id"] for t in turns] == prompts[::-1]  # newest first, as shown
    assert {t["session_id"] for t in turns} == {CONTINUED_SESSION}
    assert [r["session_id"] for r in rows(out / "sessions.csv")] == [CONTINUED_SESSION]
    mine = [e for e in TRUTH.events if e.get("session.id") == CONTINUED_SESSION]
    assert len(rows(out / "events.csv")) == len(mine)
    spans = [s for s in TRUTH.spans if s.get("session.id") == CONTINUED_SESSION]
    assert len(rows(out / "spans.csv")) == len(spans)
    snap = json.loads((out / "snapshot.json").read_text())
    assert snap["filter"]["session_id"] == CONTINUED_SESSION
    assert snap["view"]["pane"] == "turns"


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
async def test_ctrl_s_on_a_span_tree_writes_that_turn(ui_store, tmp_path, size):
    app = make_app(ui_store, export_dir=tmp_path)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        assert app.main.table("sessions").select_key(CONTINUED_SESSION)
        await pilot.press("1", "enter")
        await settle(pilot)
        await pilot.press("enter")  # the first turn's span tree
        await settle(pilot)
        turn = app.screen.turn["key"]
        await pilot.press("ctrl+s")
        await settle(pilot)
        await app.workers.wait_for_complete()
    out = tmp_path / FOLDER
    assert sorted(p.name for p in out.iterdir()) == sorted([*ALL_FILES, "focused-tree.csv"])
    (trace,) = _turn_traces("continued.grpc")[turn]
    spans = [s for s in TRUTH.spans if s["_trace_id"] == trace]
    written = rows(out / "spans.csv")
    assert {r["span_id"] for r in written} == {s["_span_id"] for s in spans}
    events = [e for e in TRUTH.events if e.get("prompt.id") == turn]
    assert sorted(r["name"] for r in rows(out / "events.csv")) == sorted(
        "claude_code." + e["event.name"] for e in events
    )
    tree = rows(out / "focused-tree.csv")
    assert {r["key"] for r in tree} == {f"{trace}:{s['_span_id']}" for s in spans}
    assert tree[0]["depth"] == "0" and tree[0]["kind"] == "interaction"
    assert [r["session_id"] for r in rows(out / "sessions.csv")] == [CONTINUED_SESSION]
    snap = json.loads((out / "snapshot.json").read_text())
    assert (snap["filter"]["session_id"], snap["filter"]["turn"]) == (CONTINUED_SESSION, turn)
    assert snap["view"]["pane"] == "tree"


async def test_the_pane_as_shown_is_rounded_as_the_cli_files_are(ui_store, tmp_path):
    app = make_app(ui_store, export_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
        await app.workers.wait_for_complete()
    out = tmp_path / FOLDER
    pane = {r["session_id"]: r for r in rows(out / "focused-sessions.csv")}
    cli = {r["session_id"]: r for r in rows(out / "sessions.csv")}
    assert pane.keys() == TRUTH.working_sessions()  # start-up-only sessions are folded away
    assert cli.keys() == TRUTH.sessions()
    for sid, row in pane.items():
        for column in ("cost_usd", "cache_hit_ratio", "metric_cost_usd"):
            assert row[column] == cli[sid][column], (sid, column)
        ratio = row["cache_hit_ratio"]
        assert not ratio or len(ratio.partition(".")[2]) <= 4

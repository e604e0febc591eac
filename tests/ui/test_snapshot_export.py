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

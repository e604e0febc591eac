"""`--redact prompts,commands,paths`: the chosen text never reaches the journal or the tables,
everything else of the fixtures is stored as without redaction."""

from __future__ import annotations

import contextlib
import json

import pytest
from receiver_harness import running_server

from claude_top.core.sources.otlp.redact import REDACTED
from truth import GRPC_FIXTURES, HTTP_FIXTURES, Truth, fixture_lines

FIXTURES = GRPC_FIXTURES + HTTP_FIXTURES
TRUTH = Truth(*FIXTURES)


def fixture_secrets() -> dict[str, set[str]]:
    """The prompt texts, command lines and file paths the fixtures carry, read from their JSON."""
    out: dict[str, set[str]] = {"prompts": set(), "commands": set(), "paths": set()}
    for e in TRUTH.events:
        out["prompts"].update(e[k] for k in ("prompt", "prompt_text", "response") if k in e)
        for key in ("tool_input", "tool_parameters"):
            if key in e:
                args = json.loads(e[key])
                out["prompts"].update(args[k] for k in ("content",) if k in args)
                out["commands"].update(args[k] for k in ("command", "full_command") if k in args)
                out["paths"].update(args[k] for k in ("file_path",) if k in args)
    for s in TRUTH.spans:
        out["prompts"].update(s[k] for k in ("user_prompt",) if k in s)
        out["commands"].update(s[k] for k in ("full_command",) if k in s)
        out["paths"].update(s[k] for k in ("file_path",) if k in s)
    return out


SECRETS = fixture_secrets()


def test_the_fixtures_carry_each_kind():
    assert len(SECRETS["prompts"]) >= 6
    assert len(SECRETS["commands"]) >= 4
    assert SECRETS["paths"] == {"/etc/hostname", "/tmp/demo-project/notes.txt"}


def leaves(node) -> list[str]:
    """Every string in a JSON document, looking inside strings that are JSON themselves."""
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in [k, *leaves(v)]]
    if isinstance(node, list):
        return [s for v in node for s in leaves(v)]
    if isinstance(node, str):
        if node[:1] in ("{", "["):
            try:
                return [node, *leaves(json.loads(node))]
            except ValueError:
                pass
        return [node]
    return []


STORED_TEXT = """
SELECT attributes FROM spans UNION ALL SELECT events FROM spans UNION ALL
SELECT links FROM spans UNION ALL SELECT attributes FROM events UNION ALL
SELECT to_json(body)::VARCHAR FROM events UNION ALL SELECT attributes FROM metric_points UNION ALL
SELECT attributes FROM resources
"""


def stored_strings(server) -> list[str]:
    return [s for (doc,) in server.query(STORED_TEXT) if doc for s in leaves(json.loads(doc))]


def in_bytes(secret: str, bodies: list[bytes]) -> bool:
    """Is the text in any body, as itself or JSON-escaped inside a tool's arguments?"""
    forms = {secret.encode(), json.dumps(secret, ensure_ascii=False)[1:-1].encode()}
    return any(f in body for body in bodies for f in forms)


@contextlib.asynccontextmanager
async def replayed(kinds: frozenset[str]):
    """Every fixture through a server redacting `kinds`: the server and the journalled bodies."""
    async with running_server(redact=kinds) as server:
        journalled: list[bytes] = []
        submit = server.writer.submit

        def capture(export):
            journalled.append(export.body)
            return submit(export)

        server.writer.submit = capture
        for name in FIXTURES:
            await server.replay(name)
        yield server, journalled


KIND_SETS = [
    frozenset({"prompts"}),
    frozenset({"commands"}),
    frozenset({"paths"}),
    frozenset({"prompts", "commands", "paths"}),
]


@pytest.mark.parametrize("kinds", KIND_SETS, ids=lambda k: "+".join(sorted(k)))
async def test_redacted_text_never_reaches_the_journal_or_the_tables(kinds):
    async with replayed(kinds) as (server, journalled):
        strings = stored_strings(server)
    assert len(journalled) == sum(len(fixture_lines(name)) for name in FIXTURES)
    for kind, secrets in SECRETS.items():
        for secret in secrets:
            in_table = any(secret in s for s in strings)
            if kind in kinds:
                assert not in_table, f"{kind}: {secret!r} was stored"
                assert not in_bytes(secret, journalled), f"{kind}: {secret!r} was journalled"
            else:
                assert in_table, f"{kind} not redacted, but {secret!r} is not stored"
    assert REDACTED in strings


async def test_everything_else_is_stored_as_sent():
    async with replayed(frozenset({"prompts", "commands", "paths"})) as (server, _):
        assert server.counts() == {
            "spans": len(TRUTH.spans),
            "events": len(TRUTH.events),
            "metric_points": TRUTH.data_points,
        }
        (cost,) = server.query("SELECT sum(cost_usd) FROM events")[0]
        assert cost == pytest.approx(TRUTH.cost(), abs=1e-9)
        prompts = server.query(
            "SELECT attributes->>'prompt', attributes->>'prompt_text', "
            "(attributes->>'prompt_length')::INT FROM events "
            "WHERE name = 'claude_code.user_prompt' ORDER BY time_ns"
        )
        want = sorted(int(e["prompt_length"]) for e in TRUTH.events if "prompt_length" in e)
        assert sorted(r[2] for r in prompts) == want  # lengths are kept
        assert {r[:2] for r in prompts} == {(REDACTED, REDACTED)}
        # a tool's arguments stay JSON; the program's name and the description are kept
        params = [
            json.loads(p)
            for (p,) in server.query(
                "SELECT attributes->>'tool_parameters' FROM events "
                "WHERE attributes->>'tool_parameters' IS NOT NULL"
            )
        ]
        want_params = [json.loads(e["tool_parameters"]) for e in TRUTH.events
                       if "tool_parameters" in e]  # fmt: skip
        assert len(params) == len(want_params)
        assert sorted(p["bash_command"] for p in params) == sorted(
            p["bash_command"] for p in want_params
        )
        assert sorted(p["description"] for p in params) == sorted(
            p["description"] for p in want_params
        )
        assert {p["full_command"] for p in params} == {REDACTED}
        spans = server.query(
            "SELECT count(*) FILTER (WHERE attributes->>'file_path' = ?), "
            "count(*) FILTER (WHERE attributes->>'full_command' = ?), "
            "count(*) FILTER (WHERE attributes->>'user_prompt' = ?) FROM spans",
            REDACTED,
            REDACTED,
            REDACTED,
        )[0]
        assert spans == (
            sum("file_path" in s for s in TRUTH.spans),
            sum("full_command" in s for s in TRUTH.spans),
            sum("user_prompt" in s for s in TRUTH.spans),
        )


async def test_redacted_exports_sent_twice_count_once():
    async with running_server(redact=frozenset({"prompts", "commands", "paths"})) as server:
        for _ in range(2):
            await server.replay("errors.grpc")
            await server.replay("basic.http-json")
        t = Truth("errors.grpc", "basic.http-json")
        assert server.counts() == {
            "spans": len(t.spans),
            "events": len(t.events),
            "metric_points": t.data_points,
        }

"""core.redact: which values each kind blanks, at any depth, and what it leaves alone."""

from __future__ import annotations

import json

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from claude_top.core.sources.otlp.decode import (
    accept_json,
    accept_protobuf,
    attributes_dict,
    parse_protobuf,
)
from claude_top.core.sources.otlp.redact import KINDS, REDACTED, Redactor, parse_kinds
from truth import set_value

ALL = Redactor(frozenset(KINDS))


def log_request(attrs: dict, body=None) -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rec = req.resource_logs.add().scope_logs.add().log_records.add(time_unix_nano=1)
    for k, x in attrs.items():
        set_value(rec.attributes.add(key=k).value, x)
    if body is not None:
        set_value(rec.body, body)
    return req


def redacted_attrs(attrs: dict, kinds=KINDS) -> dict:
    req = log_request(attrs)
    Redactor(frozenset(kinds)).request("logs", req)
    return attributes_dict(req.resource_logs[0].scope_logs[0].log_records[0].attributes)


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("prompts", {"prompts"}),
        ("Paths, commands", {"paths", "commands"}),
        ("prompts,commands,paths,", set(KINDS)),
    ],
)
def test_parse_kinds(text, kinds):
    assert parse_kinds(text) == kinds


@pytest.mark.parametrize(("text", "word"), [("secrets", "'secrets'"), ("", "nothing"), (",", "")])
def test_parse_kinds_refuses_what_it_does_not_know(text, word):
    with pytest.raises(ValueError, match="prompts, commands, paths") as err:
        parse_kinds(text)
    assert word in str(err.value)


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        ("prompts", "prompt"),
        ("prompts", "prompt_text"),
        ("prompts", "user_prompt"),
        ("prompts", "response"),
        ("commands", "full_command"),
        ("commands", "command"),
        ("paths", "file_path"),
        ("paths", "notebook_path"),
    ],
)
def test_each_kind_blanks_only_its_keys(kind, key):
    attrs = {key: "secret text", "prompt_length": "11", "tool_name": "Bash", "model": "m"}
    assert redacted_attrs(attrs, [kind]) == {**attrs, key: REDACTED}
    for other in set(KINDS) - {kind}:
        assert redacted_attrs(attrs, [other]) == attrs


def test_tool_arguments_are_redacted_key_by_key():
    tool_input = {
        "command": "rm -rf /home/me/secret",
        "description": "clean up",
        "file_path": "/home/me/notes.md",
        "edits": [{"old_string": "a", "new_string": "b", "file_path": "/x"}],
        "timeout": 5,
    }
    params = {"bash_command": "rm", "full_command": "rm -rf /home/me/secret"}
    got = redacted_attrs(
        {"tool_input": json.dumps(tool_input), "tool_parameters": json.dumps(params)}
    )
    assert json.loads(got["tool_input"]) == {
        "command": REDACTED,
        "description": "clean up",
        "file_path": REDACTED,
        "edits": [{"old_string": REDACTED, "new_string": REDACTED, "file_path": REDACTED}],
        "timeout": 5,
    }
    assert json.loads(got["tool_parameters"]) == {"bash_command": "rm", "full_command": REDACTED}
    only_paths = redacted_attrs({"tool_input": json.dumps(tool_input)}, ["paths"])
    assert json.loads(only_paths["tool_input"])["command"] == tool_input["command"]
    assert json.loads(only_paths["tool_input"])["file_path"] == REDACTED


@pytest.mark.parametrize("text", ['{"command": "ls /home/me/sec', "not json", '"a string"'])
def test_tool_arguments_that_do_not_parse_are_redacted_whole(text):
    assert redacted_attrs({"tool_input": text}, ["paths"]) == {"tool_input": REDACTED}


def test_a_program_name_is_kept_a_command_line_is_not():
    attrs = {"bash_argv0": "git", "bash_command": "git push --force origin main"}
    assert redacted_attrs(attrs, ["commands"]) == {"bash_argv0": "git", "bash_command": REDACTED}
    assert redacted_attrs(attrs, ["prompts", "paths"]) == attrs


def test_nested_values_are_redacted_at_any_depth():
    attrs = {
        "gen_ai.input.messages": [{"role": "user", "content": "my secret question"}],
        "context": {"request": {"prompt": "hidden", "size": 3}, "items": [{"path": "/x/y"}]},
    }
    assert redacted_attrs(attrs) == {
        "gen_ai.input.messages": REDACTED,
        "context": {"request": {"prompt": REDACTED, "size": 3}, "items": [{"path": REDACTED}]},
    }


def test_log_body_span_events_links_resources_and_metric_points():
    req = log_request({"x": 1}, body={"prompt": "in the body"})
    set_value(req.resource_logs[0].resource.attributes.add(key="cwd").value, "/home/me/proj")
    assert ALL.request("logs", req)
    doc = json_format.MessageToDict(req)
    assert "in the body" not in json.dumps(doc) and "/home/me" not in json.dumps(doc)

    traces = ExportTraceServiceRequest()
    span = traces.resource_spans.add().scope_spans.add().spans.add()
    set_value(span.events.add(name="e").attributes.add(key="response").value, "answer")
    set_value(span.links.add().attributes.add(key="file_path").value, "/etc/passwd")
    assert ALL.request("traces", traces)
    assert "answer" not in str(traces) and "/etc/passwd" not in str(traces)

    metrics = ExportMetricsServiceRequest()
    m = metrics.resource_metrics.add().scope_metrics.add().metrics.add(name="x")
    point = m.histogram.data_points.add(count=1)
    set_value(point.attributes.add(key="file_path").value, "/secret/a")
    set_value(point.exemplars.add(as_int=1).filtered_attributes.add(key="command").value, "ls x")
    metrics.resource_metrics[0].scope_metrics[0].metrics.add(name="no data")
    assert ALL.request("metrics", metrics)
    assert "/secret/a" not in str(metrics) and "ls x" not in str(metrics)


def test_nothing_to_redact_keeps_the_exact_bytes():
    """Claude Code's own `<REDACTED>` prompt and an ordinary export are journalled unchanged."""
    req = log_request({"prompt": REDACTED, "prompt_length": "5", "tool_name": "Read"})
    body = req.SerializeToString()
    assert not ALL.request("logs", log_request({"prompt": REDACTED}))
    assert accept_protobuf("logs", body, ALL).body is body


def test_accept_protobuf_and_json_journal_the_redacted_request():
    req = log_request({"prompt": "tell me a secret", "prompt_length": "16"})
    for export in (
        accept_protobuf("logs", req.SerializeToString(), ALL),
        accept_protobuf(None, req.SerializeToString(), ALL),
        accept_json("logs", json_format.MessageToJson(req).encode(), ALL),
    ):
        assert b"tell me a secret" not in export.body
        assert export.count == 1
        got = parse_protobuf("logs", export.body)
        attrs = attributes_dict(got.resource_logs[0].scope_logs[0].log_records[0].attributes)
        assert attrs == {"prompt": REDACTED, "prompt_length": "16"}

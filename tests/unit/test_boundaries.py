"""`claude_top.core` and `claude_top.receiver` never import textual (DEVELOPERS.md): checked in
the source, and by importing every module of both in a fresh interpreter."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import claude_top

PACKAGE = Path(claude_top.__file__).resolve().parent
HEADLESS = ("core", "receiver")
UI_PACKAGES = ("textual", "textual_plotext")


def modules(sub: str) -> list[Path]:
    return sorted((PACKAGE / sub).rglob("*.py"))


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_of(path: Path) -> str:
    """The package a module's relative imports resolve against."""
    name = module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imported_names(source: str, package: str) -> set[str]:
    """Every module an import in `source` names, at any depth, relative imports resolved."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(str(node.args[0].value))
    return names


def ui_imports(names: set[str]) -> set[str]:
    return {n for n in names if n.split(".")[0] in UI_PACKAGES or n.startswith("claude_top.ui")}


def test_there_are_modules_to_check():
    assert len(modules("core")) >= 5
    assert len(modules("receiver")) >= 4


@pytest.mark.parametrize("sub", HEADLESS)
def test_source_never_imports_the_ui(sub):
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(bad)
        for path in modules(sub)
        if (bad := ui_imports(imported_names(path.read_text(), package_of(path))))
    }
    assert offenders == {}


def test_the_scan_finds_ui_imports_in_every_form():
    source = (
        "import os\n"
        "def later():\n"
        "    from textual.app import App\n"
        "import textual_plotext as tp\n"
        "from ..ui import app\n"
        "from ...claude_top.ui.panes import table\n"
        "import importlib\n"
        "importlib.import_module('textual.widgets')\n"
    )
    found = ui_imports(imported_names(source, "claude_top.core"))
    assert {"textual.app", "textual_plotext", "claude_top.ui", "textual.widgets"} <= found
    assert ui_imports(imported_names("import grpc\nfrom . import decode\n", "claude_top.core")) == (
        set()
    )


def test_importing_every_headless_module_loads_no_ui():
    names = [module_name(p) for sub in HEADLESS for p in modules(sub)]
    code = (
        "import importlib, json, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules "
        f"if m.split('.')[0] in {UI_PACKAGES!r} or m.startswith('claude_top.ui'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(out.stdout) == []
    assert len(names) >= 9


def test_serve_command_path_loads_no_ui():
    """`claude-top serve` (the CLI module and the receivers) runs without the UI stack."""
    code = (
        "import sys, json\n"
        "import claude_top.cli, claude_top.commands.serve\n"
        "claude_top.cli.build_parser().parse_args(['serve', '--grpc-port', '0'])\n"
        "print(json.dumps('textual' in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(out.stdout) is False


PYARROW_PROBE = """
import json, sys, tempfile, os
from claude_top.core.sources.otlp.decode import accept_protobuf
from claude_top.core.store.database import Store
from claude_top.core.store.writer import StoreWriter
import claude_top.ui.app, claude_top.receiver.server
sys.path.insert(0, sys.argv[1])
from truth import GRPC_FIXTURES, grpc_requests
store = Store.open(os.path.join(tempfile.mkdtemp(), "probe.duckdb"))
writer = StoreWriter(store)
for name in GRPC_FIXTURES:
    for signal, body in grpc_requests(name):
        writer.submit(accept_protobuf(signal, body)).result(10)
assert writer.sync(60)
spool = os.listdir(writer.spool_dir)
writer.close()
cur = store.cursor()
counts = [cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
          for t in ("spans", "events", "metric_points")]
print(json.dumps({"pyarrow": sorted(m for m in sys.modules if m.split(".")[0] == "pyarrow"),
                  "counts": counts, "spool_left": spool}))
"""


def test_the_ui_process_never_loads_pyarrow():
    """Decode workers write Parquet for DuckDB to read; pyarrow stays in the workers (about
    20 MB of the UI process's memory). Every fixture is indexed through them, exactly."""
    from truth import Truth

    tests_dir = str(Path(__file__).resolve().parents[1])
    out = subprocess.run(
        [sys.executable, "-c", PYARROW_PROBE, tests_dir],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    truth = Truth("basic.grpc", "errors.grpc", "continued.grpc")
    assert result["pyarrow"] == []
    assert result["counts"] == [len(truth.spans), len(truth.events), truth.data_points]
    assert result["spool_left"] == []

"""Where Claude Code keeps transcripts, and every transcript file under a folder."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

SUFFIX = ".jsonl"


def default_roots() -> list[Path]:
    """`~/.claude/projects`, and `$CLAUDE_CONFIG_DIR/projects` when that is set (each once)."""
    roots = [Path("~/.claude/projects").expanduser()]
    config = os.environ.get("CLAUDE_CONFIG_DIR")
    if config:
        roots.append(Path(config).expanduser() / "projects")
    out: list[Path] = []
    for r in roots:
        r = r.absolute()
        if r not in out:
            out.append(r)
    return out


def walk(
    roots: Iterable[str | os.PathLike], problem: Callable[[str, str], None]
) -> Iterator[tuple[str, os.stat_result]]:
    """(path, stat) of every `*.jsonl` file under the roots (a root may be a file itself),
    recursively; symbolic links to folders are not followed (no
    loops). What cannot be read is told to `problem(path, why)` and passed over. The order is
    the file system's (it does not matter: facts are keyed by what they are)."""
    seen: set[tuple[int, int]] = set()
    for root in roots:
        path = os.path.abspath(os.fspath(root))
        try:
            st = os.stat(path)
        except OSError as exc:
            problem(path, exc.strerror or str(exc))
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk_dir(path, problem, seen)
        elif stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            yield path, st


def _walk_dir(
    top: str, problem: Callable[[str, str], None], seen: set[tuple[int, int]]
) -> Iterator[tuple[str, os.stat_result]]:
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            problem(folder, exc.strerror or str(exc))
            continue
        files = []
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                elif e.name.endswith(SUFFIX) and e.is_file():
                    files.append(e)
            except OSError as exc:
                problem(e.path, exc.strerror or str(exc))
        for e in files:
            try:
                st = e.stat()
            except OSError as exc:
                problem(e.path, exc.strerror or str(exc))
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            yield e.path, st

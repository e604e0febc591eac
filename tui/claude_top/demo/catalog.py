"""The demo's fixed data: prices, model speeds, tools and Bash commands, session profiles, what
users ask, and Claude Code's instrumentation scopes and metric descriptions."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope

VERSION = "2.1.328"
EVENTS_SCOPE = InstrumentationScope(name="com.anthropic.claude_code.events", version=VERSION)
TRACING_SCOPE = InstrumentationScope(name="com.anthropic.claude_code.tracing", version="1.0.0")
METRICS_SCOPE = InstrumentationScope(name="com.anthropic.claude_code", version=VERSION)
NS = 1_000_000_000
MS = 1_000_000
METRIC_INTERVAL_NS = 10 * NS
SPAN_FLAGS = 257
LOG_FLAGS = 1


@dataclass(frozen=True)
class Price:
    """USD per million tokens, held as nano-dollars per token so costs add up exactly."""

    input: int
    output: int
    cache_read: int
    cache_creation: int

    def cost_nusd(self, inp: int, out: int, read: int, creation: int) -> int:
        """The cost of one request in nano-dollars (1e-9 USD)."""
        return (
            inp * self.input
            + out * self.output
            + read * self.cache_read
            + creation * self.cache_creation
        )


PRICES = {
    "claude-opus-5-5": Price(5000, 25000, 500, 6250),
    "claude-sonnet-4-5": Price(3000, 15000, 300, 3750),
    "claude-haiku-4-5": Price(1000, 5000, 100, 1250),
}
# time to first token (median ms) and output tokens per second
SPEED = {
    "claude-opus-5-5": (1300, 45),
    "claude-sonnet-4-5": (850, 70),
    "claude-haiku-4-5": (420, 160),
}


@dataclass(frozen=True)
class ToolSpec:
    """A tool's execution latency (lognormal: median ms, sigma) and how often it fails."""

    median_ms: float
    sigma: float
    fail: float = 0.0
    asks: bool = False


TOOLS = {
    "Read": ToolSpec(12, 0.7),
    "Glob": ToolSpec(20, 0.6),
    "Grep": ToolSpec(45, 0.8),
    "Edit": ToolSpec(25, 0.5, fail=0.04, asks=True),
    "Write": ToolSpec(18, 0.5, asks=True),
    "NotebookEdit": ToolSpec(35, 0.5, asks=True),
    "TodoWrite": ToolSpec(4, 0.4),
    "BashOutput": ToolSpec(12, 0.5),
    "WebFetch": ToolSpec(1400, 0.7, fail=0.08, asks=True),
    "WebSearch": ToolSpec(2800, 0.5),
    "Bash": ToolSpec(0, 0, asks=True),  # per command, below
    "Task": ToolSpec(0, 0),  # a subagent: as long as its own requests and tools
}
TOOL_WEIGHTS = {
    "Read": 25,
    "Bash": 20,
    "Edit": 14,
    "Grep": 10,
    "Glob": 8,
    "Write": 5,
    "TodoWrite": 5,
    "WebFetch": 3,
    "BashOutput": 2,
    "WebSearch": 2,
    "NotebookEdit": 1,
}
SUBAGENT_TOOLS = {"Grep": 4, "Read": 5, "Glob": 3, "WebSearch": 1}


@dataclass(frozen=True)
class BashCommand:
    """A command the Bash tool runs: its latency (lognormal: median ms, sigma) and failure rate."""

    command: str
    description: str
    command_class: str
    median_ms: float
    sigma: float
    fail: float


BASH = (
    BashCommand("git status --short", "show changes", "other", 40, 0.4, 0.0),
    BashCommand("git diff --stat", "diff summary", "other", 60, 0.5, 0.0),
    BashCommand("ls build/", "list build output", "file_search", 15, 0.5, 0.5),
    BashCommand("rg -n TODO src", "find TODOs", "file_search", 120, 0.6, 0.05),
    BashCommand("echo $VIRTUAL_ENV", "show venv", "shell_builtin", 8, 0.3, 0.0),
    BashCommand("pytest -q tests/unit", "run unit tests", "other", 6000, 0.8, 0.25),
    BashCommand("make lint", "lint", "other", 4000, 0.6, 0.15),
    BashCommand("npm run build", "build the web app", "other", 12000, 0.6, 0.1),
    BashCommand("npm test -- --watch=false", "run web tests", "other", 20000, 0.7, 0.2),
    BashCommand("docker compose up -d db", "start the database", "other", 9000, 1.0, 0.1),
)


@dataclass(frozen=True)
class Profile:
    """Who runs a session: model, terminal, machine, and what they ask."""

    model: str
    terminal: str
    os: tuple[str, str, str]  # os.type, os.version, host.arch
    project: str
    prompts_logged: bool = True
    custom: tuple[tuple[str, str], ...] = ()


PROFILES = (
    Profile("claude-sonnet-4-5", "vscode", ("darwin", "24.6.0", "arm64"), "/Users/ana/src/shop"),
    Profile("claude-opus-5-5", "iTerm.app", ("darwin", "24.6.0", "arm64"), "/Users/ana/src/api"),
    Profile("claude-haiku-4-5", "tmux", ("linux", "6.8.0-48-generic", "amd64"), "/home/bo/infra"),
    Profile(
        "claude-sonnet-4-5",
        "xterm-256color",
        ("linux", "6.8.0-48-generic", "amd64"),
        "/home/bo/claude-top",
        prompts_logged=False,
        custom=(("team", "platform"), ("stage", "dev")),
    ),
)
PROMPTS = (
    "fix the flaky test in test_store.py",
    "add a --json flag to the export command",
    "why is the checkout page slow? profile it",
    "rename UserService to AccountService everywhere",
    "write a migration for the orders.status column",
    "update the README with the new install steps",
    "review this diff for race conditions",
    "make the CI pipeline cache node_modules",
    "add retries with jitter to the HTTP client",
    "summarise what changed since yesterday",
    "bump the dependencies and fix what breaks",
    "explain how the indexer batches commits",
)
RESPONSES = (
    "Done: the test no longer depends on wall-clock time.",
    "Added the flag and a test; all tests pass.",
    "The slow part is an N+1 query in the cart loader; fixed with one join.",
    "Renamed in 14 files; the build is green.",
    "Here is a summary of the changes.",
)
FILES = (
    "src/app/server.py",
    "src/app/store.py",
    "src/app/http_client.py",
    "tests/test_store.py",
    "tests/test_server.py",
    "README.md",
    "pyproject.toml",
    "web/src/Checkout.tsx",
    "web/package.json",
    "migrations/0042_orders_status.sql",
    "notebooks/latency.ipynb",
)
GLOBS = ("**/*.py", "src/**/*.ts*", "tests/**/test_*.py", "*.md")
GREPS = ("def export_", "TODO", "class .*Service", "retry", "status_code")
URLS = ("https://docs.python.org/3/library/asyncio.html", "https://duckdb.org/docs/sql/copy")

# metric name -> (description, unit), in the order a metrics request lists them
METRICS = {
    "claude_code.session.count": ("Count of CLI sessions started", ""),
    "claude_code.cost.usage": ("Cost of the Claude Code session", "USD"),
    "claude_code.token.usage": ("Number of tokens used", "tokens"),
    "claude_code.lines_of_code.count": (
        "Count of lines of code modified, with the 'type' attribute indicating whether lines "
        "were added or removed and the 'model' attribute indicating which model made the change",
        "",
    ),
    "claude_code.code_edit_tool.decision": (
        "Count of code editing tool permission decisions (accept/reject) for Edit, Write, and "
        "NotebookEdit tools",
        "",
    ),
    "claude_code.active_time.total": ("Total active time in seconds", "s"),
}

# file extension -> the `language` of a code_edit_tool.decision
LANGUAGES = {
    "py": "Python",
    "tsx": "TypeScript",
    "ts": "TypeScript",
    "md": "Markdown",
    "sql": "SQL",
    "json": "JSON",
    "toml": "TOML",
    "ipynb": "Jupyter Notebook",
}

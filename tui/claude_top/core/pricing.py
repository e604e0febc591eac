"""The price table for costs no source reports: what a request would cost at list prices.

Claude Code reports the cost of every request (`api_request.cost_usd`, and the `cost-state`
lines of its transcripts); Gemini CLI and Codex CLI report none. For those, and for transcript
requests no cost-state line covers, claude-top estimates from `prices.toml` (shipped, with its
source and date) and marks the cost as an estimate. A user's own table (same format) is read
over it from `~/.config/claude-top/prices.toml`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

SHIPPED = Path(__file__).with_name("prices.toml")
PER_TOKEN = 1e-6


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens of each kind."""

    input: float
    output: float
    cache_write: float = 0.0
    cache_read: float = 0.0


@dataclass
class PriceTable:
    """Model prices by model-id prefix, with where they came from."""

    models: dict[str, Price] = field(default_factory=dict)
    source: str = ""
    date: str = ""

    def price(self, model: str | None) -> Price | None:
        """The entry whose key is the longest prefix of `model` (None when none is)."""
        if not model:
            return None
        best = max((k for k in self.models if model.startswith(k)), key=len, default=None)
        return None if best is None else self.models[best]

    def estimate(
        self,
        model: str | None,
        input_tokens: int | None,
        output_tokens: int | None,
        cache_read_tokens: int | None = 0,
        cache_creation_tokens: int | None = 0,
    ) -> float | None:
        """The list-price cost of one request (None for a model the table lacks)."""
        p = self.price(model)
        if p is None:
            return None
        return PER_TOKEN * (
            p.input * (input_tokens or 0)
            + p.output * (output_tokens or 0)
            + p.cache_read * (cache_read_tokens or 0)
            + p.cache_write * (cache_creation_tokens or 0)
        )


class PriceFileError(ValueError):
    """A price file is not in the expected format; the message says where."""


def parse(text: str, where: str) -> PriceTable:
    """A price table from TOML text (`where` names it in errors)."""
    try:
        doc = tomllib.loads(text)
        models = {
            name: Price(**{k: float(v) for k, v in entry.items()})
            for name, entry in doc.get("models", {}).items()
        }
    except (tomllib.TOMLDecodeError, TypeError, ValueError, AttributeError) as exc:
        raise PriceFileError(f"{where}: not a price table ({exc})") from None
    return PriceTable(models, str(doc.get("source", "")), str(doc.get("date", "")))


def user_prices_path() -> Path:
    return Path(platformdirs.user_config_dir("claude-top", appauthor=False)) / "prices.toml"


def load(extra: Path | None = None) -> PriceTable:
    """The shipped table, with the user's (or `extra`) entries over it."""
    table = parse(SHIPPED.read_text(), str(SHIPPED))
    override = extra or user_prices_path()
    if override.is_file():
        mine = parse(override.read_text(), str(override))
        table.models.update(mine.models)
        table.source = f"{table.source}; {override}" if mine.models else table.source
    return table


def load_safely(extra: Path | None = None) -> tuple[PriceTable, str | None]:
    """`load()`, or the shipped table alone and why when the user's table is not one."""
    try:
        return load(extra), None
    except PriceFileError as exc:
        return parse(SHIPPED.read_text(), str(SHIPPED)), f"{exc}; using the shipped prices"

"""The price table: longest-prefix match, list-price arithmetic, a user's table over ours."""

from __future__ import annotations

import pytest

from claude_top.core import pricing


def test_the_longest_prefix_wins_and_unknown_models_have_no_price():
    table = pricing.load()
    assert table.source and table.date
    assert table.price("claude-sonnet-4-5-20250929") == pricing.Price(3.0, 15.0, 3.75, 0.30)
    assert table.price("claude-opus-4-5-20251101").input == 5.0  # not claude-opus-4's 15.0
    assert table.price("claude-opus-4-1-20250805").input == 15.0
    assert table.price("gemini-2.5-flash-lite").input == 0.10  # not gemini-2.5-flash's
    assert table.price("some-new-model") is None
    assert table.estimate("some-new-model", 10, 10) is None


def test_an_estimate_is_the_list_price_of_each_kind_of_token():
    table = pricing.load()
    # 1000 in * $1 + 100 out * $5 + 5000 cache reads * $0.10 + 300 cache writes * $1.25, per M
    assert table.estimate("claude-haiku-4-5", 1000, 100, 5000, 300) == pytest.approx(0.002375)


def test_a_users_table_extends_and_overrides_ours(tmp_path):
    mine = tmp_path / "prices.toml"
    mine.write_text(
        '[models."claude-haiku-4-5"]\ninput = 2\noutput = 8\n'
        '[models."x-1"]\ninput = 1\noutput = 1\n'
    )
    table = pricing.load(mine)
    assert table.price("claude-haiku-4-5") == pricing.Price(2.0, 8.0)
    assert table.estimate("x-1", 10**6, 10**6) == pytest.approx(2.0)
    mine.write_text("[models.broken]\ninput = 'cheap'\n")
    with pytest.raises(pricing.PriceFileError, match=r"prices\.toml: not a price table"):
        pricing.load(mine)

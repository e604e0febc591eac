"""How numbers read: one compact format for counts at every size."""

from __future__ import annotations

import pytest

from claude_top.core import format as fmt


@pytest.mark.parametrize(
    ("n", "shown"),
    [
        (0, "0"),
        (999, "999"),
        (1000, "1.00k"),
        (3711, "3.71k"),
        (13_800, "13.8k"),
        (99_949, "99.9k"),
        (99_950, "100k"),
        (100_000, "100k"),
        (729_100, "729k"),
        (999_499, "999k"),
        (999_500, "1.00M"),
        (1_090_000, "1.09M"),
        (2_500_000_000, "2.50G"),
        (-3711, "-3.71k"),
        (None, "-"),
    ],
)
def test_counts_have_three_significant_digits_from_a_thousand(n, shown):
    assert fmt.count(n) == shown
    assert len(fmt.count(n)) <= 6

"""Hypothesis strategies for hostile input, and a way to use them in async tests.

Async tests (the database, the emulator) cannot be decorated with @given directly, so `examples`
draws a bounded number of values through Hypothesis first (its generation, edge cases and
`max_examples`), then the test awaits each one and names it in its assertion messages.
"""

from __future__ import annotations

from typing import Any, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

T = TypeVar("T")

OPERATOR_TEXT = [
    '{"$gt": ""}', "{'$ne': null}", "$where", "$ne", "$regex", "$gt", "this.a == 1 || true",
    '{"$where": "sleep(1000)"}', "abc\x00", "\x00", "ab\x00cd", "ib-0123456789ab\x00",
    "ib-0123456789AB", " ib-0123456789ab ", "ib-0123456789abc", "https://discord.gg/abc",
    "https://evil.example/abc", "discord.gg/../x", "\u202eabc", "\U0001f4a5" * 40, "", "  ",
    "<@&123>", "@everyone", "**x**", "a" * 10_000, "\U0001f4a5" * 10_000, "Europe/Berlin\x00",
    "../../etc/passwd", "Etc/GMT+5", "{member.__class__}", "{", "}",
]
HOSTILE_TEXT: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(OPERATOR_TEXT),
    st.text(max_size=300),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=["Cs"]),
            max_size=60),
    st.builds(lambda c, n: c * n, st.characters(exclude_categories=["Cs"]), st.integers(9_000, 10_000)),
)
HOSTILE_INT: st.SearchStrategy[int] = st.one_of(
    st.integers(-(2**64), 2**64),
    st.sampled_from([0, -1, 1, 2**31, -(2**31) - 1, 2**53 + 1, 2**63 - 1, -(2**63), 2**63, 2**64 - 1]),
)


def examples(strategy: st.SearchStrategy[T], count: int) -> list[T]:
    """Up to `count` values drawn by Hypothesis from `strategy` (for async tests)."""
    drawn: list[Any] = []

    @settings(max_examples=count, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(strategy)
    def collect(value: Any) -> None:
        drawn.append(value)

    collect()
    return drawn

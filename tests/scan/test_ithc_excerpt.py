"""The observed excerpt of a tester's plugin output folds only a prefix (speed); it must say exactly
what folding the whole output would."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from security_checks.scan.ithc import OBSERVED_CHARS, _excerpt


def _folded_whole(output: str) -> str:
    text = " ".join(output.split())
    return text[:OBSERVED_CHARS] + ("..." if len(text) > OBSERVED_CHARS else "")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab \n\t\u00a0é"), max_size=OBSERVED_CHARS * 6))
@example(" " * (OBSERVED_CHARS * 2) + "late words after a long run of spaces")
@example("x" * (OBSERVED_CHARS * 2 - 1) + " y")
@example("a " * (OBSERVED_CHARS * 2))
def test_excerpt_is_the_whole_output_folded(output: str) -> None:
    assert _excerpt(output) == _folded_whole(output)

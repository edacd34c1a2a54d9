"""The palette's scoring: fuzzy on a command's title, by words on its help (fuzzy on a long help took minutes)."""

from __future__ import annotations

from textual.fuzzy import Matcher

from widgets.palette_match import HELP_WEIGHT, score


def test_a_title_matches_fuzzily_and_a_help_text_by_its_words() -> None:
    query = "connect a pair"
    matcher = Matcher(query)
    assert score(matcher, query, "connect a pair", "server listens, client connects") > HELP_WEIGHT
    summary = "The client closes; the server reads what was sent, then 0 (end of file), and 0 again."
    assert score(Matcher("end of file"), "end of file", "lesson 1: close() sends a FIN", summary) == HELP_WEIGHT
    assert score(Matcher("zombie"), "zombie", "lesson 1: close() sends a FIN", summary) == 0
    assert score(matcher, query, "lesson 21: Retransmission, and the timer that doubles", summary) == 0

"""How the palette's sockplay providers score a command: fuzzily on its title, by words on its help.

Textual's fuzzy matcher looks for the best of every way the query's letters fit a text, which
grows steeply with the text's length: on a lesson's one-line summary, typing "connect a pair"
took minutes. The help text is matched by words instead (every word of the query is in it).
"""

from __future__ import annotations

from textual.fuzzy import Matcher

__all__ = ["HELP_WEIGHT", "score"]

HELP_WEIGHT = 0.5  # a command found by its help ranks below one found by its title


def score(matcher: Matcher, query: str, title: str, help_text: str) -> float:
    found = matcher.match(title)
    if found > 0:
        return found
    words = query.lower().split()
    text = f"{title} {help_text}".lower()
    return HELP_WEIGHT if words and all(word in text for word in words) else 0.0

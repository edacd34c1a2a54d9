"""One string-aware scanner: comments are split off and completions found outside string literals only."""

from __future__ import annotations

from playground.script.lexer import outside_strings, strip_comment
from playground.session.lines import CompletionContext, complete


def test_the_scanner_skips_what_is_inside_strings_escapes_included() -> None:
    text = 'a: write(s, "x\\"#(,") # c'
    seen = "".join(ch for _, ch in outside_strings(text))
    assert seen == 'a: write(s, "") # c'
    assert [i for i, ch in outside_strings(text) if ch == "#"] == [text.index(" # c") + 1]
    # A text that ends inside a string yields an odd number of quotes.
    assert sum(ch == '"' for _, ch in outside_strings('write(s, "ab\\"')) % 2 == 1


def test_a_comment_is_split_off_only_outside_strings() -> None:
    assert strip_comment('a: write(s, "#not") # yes') == ('a: write(s, "#not") ', "yes")
    assert strip_comment('a: write(s, "\\"#not")') == ('a: write(s, "\\"#not")', None)
    assert strip_comment("a: close(s) #  why ") == ("a: close(s) ", "why")


CTX = CompletionContext(processes={"a": {"s", "t"}, "b": {"l"}}, default_actor="a")


def test_completion_counts_arguments_outside_strings_and_braces() -> None:
    # The comma inside the string is data: the cursor is on send's third argument, its flags.
    done = complete('a: send(s, "x,y", MSG_', None, CTX)
    assert "MSG_NOSIGNAL" in done.candidates and done.usage and done.usage.startswith("send(")
    # The comma inside braces is SO_LINGER's value: still setsockopt's third argument, not a fourth.
    assert complete("a: setsockopt(s, SO_LINGER, {1, ", None, CTX).usage
    # Inside a string nothing is completed: the parenthesis there opens no call.
    assert complete('a: write(s, "read(', None, CTX).candidates == []
    assert complete('a: write(s, "(\\" ', None, CTX).candidates == []
    # After the string is closed, the call's next argument is completed again.
    assert complete('a: sendto(s, "(", b.', None, CTX).usage.startswith("sendto(")

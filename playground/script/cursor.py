"""A line's tokens and the place of the next one, as the line parser walks them."""

from __future__ import annotations

from playground.script.errors import LineError
from playground.script.lexer import Token


class Cursor:
    """A line's tokens and the place of the next one.

    A line asks these some dozens of times, so none calls another (a call
    costs more than the work); `i += 1` steps over a token already looked at.
    """

    __slots__ = ("tokens", "n", "i", "end_column")

    def __init__(self, tokens: list[Token], end_column: int) -> None:
        self.tokens = tokens
        self.n = len(tokens)
        self.i = 0
        self.end_column = end_column

    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < self.n else None

    def next(self) -> Token | None:
        i = self.i
        if i < self.n:
            self.i = i + 1
            return self.tokens[i]
        return None

    def at(self, kind: str, offset: int = 0) -> bool:
        j = self.i + offset
        return j < self.n and self.tokens[j].kind == kind

    def column(self) -> int:
        i = self.i
        return self.tokens[i].column if i < self.n else self.end_column

    def expect(self, kind: str, what: str) -> Token:
        i = self.i
        if i < self.n:
            tok = self.tokens[i]
            if tok.kind == kind:
                self.i = i + 1
                return tok
            raise LineError(tok.column, f"expected {what}, found {tok.text!r}")
        raise LineError(self.end_column, f"expected {what}, the line ends")

    def done(self) -> bool:
        return self.i >= self.n

    def at_word(self, word: str) -> bool:
        """Whether the next token is the name `word`."""
        j = self.i
        return j < self.n and self.tokens[j].kind == "name" and self.tokens[j].text == word

    def ensure_done(self, where: str = "") -> None:
        """Raise at the first token left over, if any (`where` ends the message: " after the call")."""
        i = self.i
        if i < self.n:
            raise LineError(self.tokens[i].column, f"unexpected {self.tokens[i].text!r}{where}")

"""`a, b = CALL(...)`: a step that names several descriptors (socketpair's two, recvmsg's passed ones)."""

from __future__ import annotations

from playground.calls import CallSpec
from playground.script.checks import Scope, bind_var
from playground.script.cursor import Cursor
from playground.script.errors import LineError
from playground.script.lexer import Token


def read_names(cursor: Cursor) -> tuple[Token, list[Token]]:
    """`NAME, NAME, ... =`: the first name and the others (the cursor is left after the `=`)."""
    first = cursor.tokens[cursor.i]
    cursor.i += 1
    more: list[Token] = []
    while cursor.at(","):
        cursor.i += 1
        more.append(cursor.expect("name", "a name after ','"))
    cursor.expect("=", "'=' after the names, as in 'a, b = socketpair(unix)'")
    return first, more


def bind_more(first: Token, more: list[Token], spec: CallSpec, actor: str, scope: Scope) -> None:
    """Bind the names after the first, once the call is known to give that many descriptors."""
    if spec.names < 1 + len(more):
        extra = more[spec.names - 1] if spec.names >= 1 else more[0]
        allowed = "one name" if spec.names == 1 else f"at most {spec.names} names"
        raise LineError(extra.column, f"{spec.name} takes {allowed} before '='")
    seen = {first.text}
    for tok in more:
        if tok.text in seen:
            raise LineError(tok.column, f"{tok.text!r} is named twice")
        seen.add(tok.text)
        bind_var(tok.text, tok.column, spec, actor, scope)

"""Outcome forms of issue 13's further calls: TCP_INFO's fields, recvmsg's rights, an AF_UNIX path."""

from __future__ import annotations

from playground.script.cursor import Cursor
from playground.script.errors import LineError
from playground.script.lexer import Token
from playground.script.model import Fields, UnixAddress

MAX_FIELDS = 64


def starts_fields(cursor: Cursor) -> bool:
    """Whether the `{` just read opens named fields (`{state: ...`) rather than a pair (`{1, 0}`)."""
    return cursor.at("name") and cursor.at(":", 1)


def read_fields(cursor: Cursor) -> Fields:
    """`NAME: VALUE, ...}` after the `{`: each value a number or a word (a TCP state)."""
    items: list[tuple[str, int | str]] = []
    seen: set[str] = set()
    while True:
        name = cursor.expect("name", "a field name, as in state")
        if name.text in seen:
            raise LineError(name.column, f"field {name.text!r} is stated twice")
        if len(items) >= MAX_FIELDS:
            raise LineError(name.column, f"at most {MAX_FIELDS} fields")
        seen.add(name.text)
        cursor.expect(":", f"':' after {name.text}")
        value = cursor.next()
        if value is None or value.kind not in ("int", "name"):
            raise LineError(value.column if value else cursor.end_column, "a field's value is a number or a word")
        items.append((name.text, int(value.value) if value.kind == "int" else value.text))
        if cursor.at(","):
            cursor.i += 1
            continue
        cursor.expect("}", "',' or '}' closing the fields")
        return Fields(tuple(items))


def read_rights(cursor: Cursor, limit: int) -> tuple[int, ...]:
    """`rights {5, 6}` (the cursor is on `rights`): the descriptors received, as numbers."""
    cursor.i += 1
    cursor.expect("{", "'{' after rights, as in rights {5}")
    numbers: list[int] = []
    while not cursor.at("}"):
        tok = cursor.expect("int", "a descriptor number")
        if len(numbers) >= limit:
            raise LineError(tok.column, f"at most {limit} descriptors")
        numbers.append(int(tok.value))
        if not cursor.at(","):
            break
        cursor.i += 1
    cursor.expect("}", "'}' closing the rights")
    return tuple(numbers)


def unix_address(tok: Token) -> UnixAddress:
    """A string where a value or `from` belongs: an AF_UNIX path."""
    try:
        return UnixAddress(bytes(tok.value).decode("utf-8"))
    except UnicodeDecodeError:
        raise LineError(tok.column, "an AF_UNIX path is UTF-8 text") from None


def format_rights(rights: tuple[int, ...]) -> str:
    return "rights {" + ", ".join(str(fd) for fd in rights) + "}"

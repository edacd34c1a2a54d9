"""Splits one script line into tokens, each with its column."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

from playground.constants import MAX_DATA_BYTES
from playground.script.errors import LineError

NAME_START = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
NAME_CHARS = NAME_START + "0123456789-"
DIGITS = "0123456789"
PUNCT = "(),=|{}*+:!~>"


class Token(NamedTuple):
    kind: str  # name, int, float, string, address, ellipsis, or the punctuation itself
    text: str
    column: int  # 1-based
    # int for "int", float for "float", bytes for "string", (host, port) for "address": the kind says which,
    # so the parser reads it as that type (Any: a union would need an isinstance at every use the kind already made)
    value: Any = None


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
# `[7]`, `[i]` or `[*]` right after a name: an indexed name (`s[7]`), one name token with its index.
_INDEX = re.compile(r"\[(?:[0-9]+|[A-Za-z_][A-Za-z0-9_]*|\*)\]")
_NUMBER = re.compile(r"-?[0-9.]+")
_PLAIN_STRING = re.compile(r'"([^"\\]*)"')
_ZONE = re.compile(r"[A-Za-z0-9_.-]{1,15}")  # an interface name (IFNAMSIZ) or index


_ESCAPES = {
    "n": b"\n",
    "r": b"\r",
    "t": b"\t",
    "0": b"\0",
    "\\": b"\\",
    '"': b'"',
    "'": b"'",
    "a": b"\a",
    "b": b"\b",
    "f": b"\f",
    "v": b"\v",
    "e": b"\x1b",
}


def strip_comment(text: str) -> tuple[str, str | None]:
    """Split off a `# comment` that is not inside a string literal."""
    if "#" not in text:
        return text, None
    if '"' not in text:
        body, _, comment = text.partition("#")
        return body, comment.strip()
    for i, ch in outside_strings(text):
        if ch == "#":
            return text[:i], text[i + 1 :].strip()
    return text, None


def outside_strings(text: str) -> Iterator[tuple[int, str]]:
    """(index, character) for each character of `text` outside the script's string literals.

    The quotes themselves are yielded (an odd count means the text ends inside a string);
    what lies between them, escapes included, is not. The one string-aware scanner: the
    parser's comments and the command line's completion both use it.
    """
    in_string = False
    i, end = 0, len(text)
    while i < end:
        ch = text[i]
        if not in_string:
            in_string = ch == '"'
            yield i, ch
        elif ch == "\\":
            i += 1  # the escaped character is part of the string
        elif ch == '"':
            in_string = False
            yield i, ch
        i += 1


def _string(text: str, start: int) -> tuple[bytes, int]:
    """Decode a C string literal beginning at text[start] == '"'; return bytes and end."""
    out = bytearray()
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == '"':
            return bytes(out), i + 1
        if ch == "\\":
            if i + 1 >= len(text):
                break
            esc = text[i + 1]
            if esc in _ESCAPES and not (esc == "0" and i + 2 < len(text) and text[i + 2] in "01234567"):
                out += _ESCAPES[esc]
                i += 2
                continue
            if esc == "x":
                digits = ""
                j = i + 2
                while j < len(text) and len(digits) < 2 and text[j] in "0123456789abcdefABCDEF":
                    digits += text[j]
                    j += 1
                if not digits:
                    raise LineError(i + 1, "\\x needs hex digits, as in \\x41")
                out.append(int(digits, 16))
                i = j
                continue
            if esc in "01234567":
                digits = ""
                j = i + 1
                while j < len(text) and len(digits) < 3 and text[j] in "01234567":
                    digits += text[j]
                    j += 1
                value = int(digits, 8)
                if value > 255:
                    raise LineError(i + 1, f"octal escape \\{digits} is larger than a byte")
                out.append(value)
                i = j
                continue
            raise LineError(i + 1, f'unknown escape \\{esc} (use \\n \\r \\t \\0 \\\\ \\" \\xHH)')
        out += ch.encode("utf-8")
        i += 1
    raise LineError(start + 1, 'string is not closed: a " is missing')


def read_string(text: str, start: int) -> tuple[bytes, int]:
    """The bytes of the C string literal at text[start] == '"', and the index after its closing quote."""
    return _string(text, start)


def address_token(text: str, start: int, host: str, after_host: int, ipv6: bool) -> tuple[Token, int]:
    if after_host >= len(text) or text[after_host] != ":":
        example = "[::1]" if ipv6 else "127.0.0.1"
        raise LineError(start + 1, f"address {text[start:after_host]} needs a port, as in {example}:9000")
    j = after_host + 1
    while j < len(text) and text[j] in DIGITS:
        j += 1
    if j == after_host + 1:
        raise LineError(after_host + 2, "a port number must follow ':'")
    if j - after_host > 6:
        raise LineError(after_host + 2, "port is out of range (0-65535)")
    port = int(text[after_host + 1 : j])
    if port > 65535:
        raise LineError(after_host + 2, f"port {port} is out of range (0-65535)")
    if ipv6 and "%" in host and not _ZONE.fullmatch(host.partition("%")[2]):
        raise LineError(start + 1, f"{host!r}: a zone is an interface name or number, as in [fe80::1%lo]")
    try:
        parsed = ipaddress.IPv6Address(host) if ipv6 else ipaddress.IPv4Address(host)
    except ValueError:
        raise LineError(start + 1, f"{host!r} is not a valid {'IPv6' if ipv6 else 'IPv4'} address") from None
    return Token("address", text[start:j], start + 1, (str(parsed), port)), j


def tokenize(text: str) -> list[Token]:
    """Tokens of one line (comment already removed)."""
    tokens: list[Token] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r":
            i += 1
            continue
        if text.startswith("...", i):
            tokens.append(Token("ellipsis", "...", i + 1))
            i += 3
            continue
        if ch == '"':
            token, i = _string_token(text, i)
            tokens.append(token)
            continue
        if ch == "[":
            close = text.find("]", i)
            if close < 0:
                raise LineError(i + 1, "'[' opens an IPv6 address that is not closed with ']'")
            token, i = address_token(text, i, text[i + 1 : close], close + 1, ipv6=True)
            tokens.append(token)
            continue
        if ch in DIGITS or (ch in "-." and i + 1 < n and text[i + 1] in DIGITS):
            token, i = _number_token(text, i)
            tokens.append(token)
            continue
        if ch in NAME_START:
            name = _NAME.match(text, i)  # matches: ch starts a name
            j = name.end() if name else i + 1
            if j < n and text[j] == "[":  # an indexed name, `s[7]`: one token
                index = _INDEX.match(text, j)
                if index is not None:
                    j = index.end()
            tokens.append(Token("name", text[i:j], i + 1))
            i = j
            continue
        if ch == ".":
            tokens.append(Token(".", ".", i + 1))
            i += 1
            continue
        if ch in PUNCT:
            tokens.append(Token(ch, ch, i + 1))
            i += 1
            continue
        raise LineError(i + 1, f"unexpected character {ch!r}")
    return tokens


def _string_token(text: str, i: int) -> tuple[Token, int]:
    """The string literal at i (a plain ASCII one without escapes read in one match), and the index after it."""
    plain = _PLAIN_STRING.match(text, i)
    if plain is not None and plain.group(1).isascii():
        end = plain.end()
        return Token("string", text[i:end], i + 1, plain.group(1).encode()), end
    value, end = _string(text, i)
    if len(value) > MAX_DATA_BYTES:
        raise LineError(i + 1, f"string is larger than {MAX_DATA_BYTES} bytes")
    return Token("string", text[i:end], i + 1, value), end


def _number_token(text: str, i: int) -> tuple[Token, int]:
    """The int, float or IPv4 address (with its port) at i, and the index after it."""
    n = len(text)
    number = _NUMBER.match(text, i)  # matches: the caller saw a digit, or a sign or dot before one
    j = number.end() if number else i + 1
    word = text[i:j]
    if word.count(".") == 3 and not word.startswith("-"):
        return address_token(text, i, word, j, ipv6=False)
    if j < n and text[j] in NAME_START:
        k = j
        while k < n and text[k] in NAME_CHARS:
            k += 1
        raise LineError(i + 1, f"{text[i:k]!r} is not a number or a name")
    try:
        if "." in word:
            if word.count(".") > 1:
                raise ValueError
            if not float(word) < 1e15:  # larger ones would print as 1e+15, which is no number here
                raise LineError(i + 1, f"{word[:20]}... is too large a number")
            return Token("float", word, i + 1, float(word)), j
        return Token("int", word, i + 1, int(word)), j
    except ValueError:
        raise LineError(i + 1, f"{word!r} is not a number") from None

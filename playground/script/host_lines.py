"""The network lab's lines (script.md, "Hosts and cables"): `host`, `spawn ... on`, the faults and `cable`.

`host NAME ADDRESS` and `cable HOST ...` are read word by word (an address without a
port and `5%` are not tokens of a step); `cut`, `mend`, `crash` and `boot` from the
tokens, as the other directives are. HOST:PORT in a call is read by line_forms.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re

from playground.constants import MAX_SLEEP_SECONDS
from playground.netlab.impairments import ImpairmentError, parse_cable
from playground.script.checks import PROCESS_NAME, RESERVED, Scope
from playground.script.cursor import Cursor
from playground.script.errors import LineError
from playground.script.lexer import Token
from playground.script.model import Cable, Fault, Host

HOST_RANGES = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
WORDS = ("host", "cable")
DIRECTIONS = ("in", "out")
_LEADING_WORD = re.compile(r"\s*(?:\+([0-9]+(?:\.[0-9]*)?)\s+)?(host|cable)(?=\s|\Z)(?!\s*:)")


def port_number(tok: Token) -> int:
    if not 0 <= int(tok.value) <= 65535:
        raise LineError(tok.column, f"port {tok.text} is out of range (0-65535)")
    return int(tok.value)


def host_line_form(body: str, scope: Scope) -> Host | Cable | None:
    """A `host` or `cable` line, or None if the line is not one."""
    match = _LEADING_WORD.match(body)
    if match is None:
        return None
    words = _words(body)
    delay = None
    if match.group(1) is not None:  # `+DELAY host ...`, as a recording writes the gap before it
        delay = float(match.group(1))
        if delay > MAX_SLEEP_SECONDS:
            raise LineError(words[0][1], f"{match.group(1)} seconds is out of range (0 to {MAX_SLEEP_SECONDS:g})")
        words = words[1:]
    end = len(body.rstrip()) + 1
    node = _host(words, scope, end) if match.group(2) == "host" else _cable(words, scope, end)
    return node if delay is None else dataclasses.replace(node, delay=delay)


def _words(body: str) -> list[tuple[str, int]]:
    """Each word and its 1-based column."""
    return [(m.group(), m.start() + 1) for m in re.finditer(r"\S+", body)]


def _host(words: list[tuple[str, int]], scope: Scope, end: int) -> Host:
    if len(words) < 3:
        raise LineError(
            words[-1][1] if len(words) > 1 else end, "host needs a name and an address: host alpha 192.0.2.1"
        )
    (name, name_col), (address, address_col) = words[1], words[2]
    if len(words) > 3:
        raise LineError(words[3][1], f"unexpected {words[3][0]!r} after the host's address")
    if not PROCESS_NAME.match(name) or name in RESERVED:
        raise LineError(name_col, f"{name!r} cannot name a host: use lowercase letters, digits, '_' and '-'")
    if name in scope.hosts:
        raise LineError(name_col, f"a host named {name!r} already exists")
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        raise LineError(address_col, f"{address!r} is not an IPv4 address, as in 192.0.2.1") from None
    if not any(ip in ipaddress.IPv4Network(r) for r in HOST_RANGES) or str(ip).endswith((".0", ".255")):
        raise LineError(
            address_col,
            f"{address} is not a lab address: a host's address is in 192.0.2.0/24, 198.51.100.0/24 or 203.0.113.0/24 "
            "(the documentation ranges, which no real network uses), and not .0 or .255",
        )
    owner = next((h for h, a in scope.hosts.items() if a == str(ip)), None)
    if owner is not None:
        raise LineError(address_col, f"{address} is {owner}'s address already")
    scope.hosts[name] = str(ip)
    return Host(name, str(ip))


def _cable(words: list[tuple[str, int]], scope: Scope, end: int) -> Cable:
    if len(words) < 2:
        raise LineError(end, "cable needs a host and settings: cable alpha delay 100ms, or cable alpha clear")
    host, host_col = words[1]
    check_host(host, host_col, scope)
    rest = [word for word, _ in words[2:]]
    try:
        parse_cable(rest)  # the switch's own reading: a line it would refuse never runs
    except ImpairmentError as exc:
        raise LineError(words[2][1] if len(words) > 2 else end, str(exc)) from None
    direction = rest.pop(0) if rest and rest[0] in DIRECTIONS else None
    return Cable(host, direction, tuple(rest))


def check_host(name: str, column: int, scope: Scope) -> None:
    if name not in scope.hosts:
        known = ", ".join(sorted(scope.hosts)) or "none yet"
        raise LineError(column, f"no host named {name!r} (known: {known}); add one with 'host {name} 192.0.2.1'")


def fault(cursor: Cursor, scope: Scope, delay: float | None) -> Fault:
    """`cut HOST`, `mend HOST`, `crash HOST`, `boot HOST`."""
    word = cursor.next()
    assert word is not None
    name = cursor.next()
    if name is None or name.kind != "name":
        raise LineError(
            name.column if name else cursor.end_column, f"{word.text} needs a host, as in '{word.text} alpha'"
        )
    check_host(name.text, name.column, scope)
    if not cursor.done():
        raise LineError(cursor.column(), f"unexpected {cursor.peek().text!r}")  # type: ignore[union-attr]
    return Fault(word.text, name.text, delay)


def spawn_host(cursor: Cursor, scope: Scope) -> str | None:
    """`on HOST` after `spawn NAME`, if written: the host."""
    if not cursor.at_word("on"):
        return None
    cursor.next()
    name = cursor.next()
    if name is None or name.kind != "name":
        raise LineError(name.column if name else cursor.end_column, "'on' needs a host, as in 'spawn server on alpha'")
    check_host(name.text, name.column, scope)
    return name.text

"""Script lines the UI writes for its buttons and keys, and completion for the command line.

UI-free: every action of the TUI is a script line (script.md) that shows in the log,
so what a key does can always be typed too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from playground import calls as P
from playground.calls import CALLS
from playground.constants import (
    DISPOSITIONS,
    MSG_FLAGS,
    O_NONBLOCK_NAME,
    OPTIONS,
    POLL_EVENTS,
    SHUT_HOW,
    SIGNALS,
    SOCKET_KINDS,
    WAIT_FLAGS,
)
from playground.script.lexer import outside_strings

__all__ = [
    "DataError",
    "data_expression",
    "writev_expressions",
    "fresh_name",
    "CompletionContext",
    "Completions",
    "complete",
    "COMMON_SIGNALS",
]

COMMON_SIGNALS = [
    "SIGTERM",
    "SIGKILL",
    "SIGINT",
    "SIGHUP",
    "SIGPIPE",
    "SIGCHLD",
    "SIGUSR1",
    "SIGUSR2",
    "SIGSTOP",
    "SIGCONT",
]
_SIZE = re.compile(r"\d+\Z")
_UNESCAPED_QUOTE = re.compile(r'(?<!\\)((?:\\\\)*)"')


class DataError(ValueError):
    """The data field holds nothing that can be sent."""


def data_expression(field_text: str) -> str:
    """The data field as a script data expression.

    `65536` means that many bytes ("x" * 65536); text starting with a quote is used as
    typed (script syntax); anything else is text with C escapes (hello\\n).
    """
    text = field_text.strip()
    if not text:
        raise DataError("type the data to send (text with escapes like hello\\n, or a size like 65536)")
    if _SIZE.match(text):
        return f'"x" * {int(text)}'
    if text.startswith('"'):
        return text
    if text.endswith("\\") and not text.endswith("\\\\"):
        text += "\\"
    return '"' + _UNESCAPED_QUOTE.sub(lambda m: m.group(1) + '\\"', text) + '"'


def writev_expressions(field_text: str) -> list[str]:
    """writev's buffers: the data field split at `|` (unless written in script syntax)."""
    text = field_text.strip()
    if text.startswith('"') or "|" not in text:
        return [data_expression(text)]
    return [data_expression(part) for part in text.split("|") if part.strip()]


def fresh_name(base: str, taken: set[str] | dict) -> str:
    """`base`, or `base2`, `base3`, ... whichever is free first."""
    if base not in taken:
        return base
    n = 2
    while f"{base}{n}" in taken:
        n += 1
    return f"{base}{n}"


# Completion.


@dataclass
class CompletionContext:
    """What can be named now: processes, their sockets and children, and addresses of others."""

    processes: dict[str, set[str]] = field(default_factory=dict)  # process -> socket variables
    children: dict[str, set[str]] = field(default_factory=dict)
    addresses: list[str] = field(default_factory=list)  # PROC.VAR with a known address
    default_actor: str | None = None


@dataclass
class Completions:
    start: int  # where the word being completed starts
    candidates: list[str]
    usage: str | None = None  # the call being typed, as `read(FD, SIZE) — read up to SIZE bytes`

    def common_prefix(self) -> str:
        if not self.candidates:
            return ""
        first, last = min(self.candidates), max(self.candidates)
        i = 0
        while i < min(len(first), len(last)) and first[i] == last[i]:
            i += 1
        return first[:i]


_WORD = re.compile(r"[A-Za-z0-9_.\-]*\Z")
_DELAY = re.compile(r"\s*\+\s*[0-9.]+\s*")
_ACTOR = re.compile(r"\s*([a-z][a-z0-9_-]*)\s*:\s*")
_VAR = re.compile(r"\s*[A-Za-z_][A-Za-z0-9_]*\s*=\s*")


def _open_call(head: str) -> tuple[str, int] | None:
    """(call name, argument index) if `head` ends inside a call's parentheses."""
    depth_stack: list[int] = []
    quotes = 0
    for i, ch in outside_strings(head):
        if ch == '"':
            quotes += 1
        elif ch == "(":
            depth_stack.append(i)
        elif ch == ")" and depth_stack:
            depth_stack.pop()
    if not depth_stack or quotes % 2:
        return None
    open_at = depth_stack[-1]
    name_match = re.search(r"([a-z]+)\s*\Z", head[:open_at])
    if not name_match:
        return None
    index = 0
    braces = 0
    for _, ch in outside_strings(head[open_at + 1 :]):
        if ch == "{":
            braces += 1
        elif ch == "}":
            braces -= 1
        elif ch == "," and braces == 0:
            index += 1
    return name_match.group(1), index


def _argument_words(kind: str, actor: str | None, ctx: CompletionContext, call: str, head: str) -> list[str]:
    fds = sorted(ctx.processes.get(actor or "", set()))
    if kind == P.FD:
        return fds
    if kind == P.OPTION:
        return list(OPTIONS)
    if kind == P.OPTVAL:
        return ["0", "1", "{1, 0}"]
    if kind == P.KIND:
        return list(SOCKET_KINDS) + ["AF_INET", "AF_INET6", "AF_UNIX"]
    if kind == P.ADDR:
        return ["127.0.0.1:", "[::1]:"] + ctx.addresses + fds
    if kind == P.HOW:
        return list(SHUT_HOW)
    if kind == P.MSGFLAGS:
        return list(MSG_FLAGS)
    if kind == P.EVENTS:
        return list(POLL_EVENTS)
    if kind == P.SIGNAL:
        return [s for s in COMMON_SIGNALS if s not in ("SIGKILL", "SIGSTOP")] + sorted(
            s for s in SIGNALS if s not in COMMON_SIGNALS
        )
    if kind == P.DISPOSITION:
        return list(DISPOSITIONS)
    if kind == P.PID:
        return sorted(ctx.children.get(actor or "", set())) + ["-1"]
    if kind == P.WAITFLAGS:
        return list(WAIT_FLAGS)
    if kind == P.NONBLOCK:
        return [O_NONBLOCK_NAME]
    if kind == P.BIT:
        return ["0", "1"]
    return []


def complete(text: str, cursor: int | None, ctx: CompletionContext) -> Completions:
    """Candidates for the word before the cursor: calls, names, options, signals, ..."""
    head = text[: len(text) if cursor is None else cursor]
    word_match = _WORD.search(head)
    start = word_match.start() if word_match else len(head)
    word = head[start:]
    before = head[:start]
    usage = None
    open_call = _open_call(before)
    if open_call is not None:
        actor = _line_start(before, ctx)[1]
        candidates, usage = _argument_candidates(open_call, actor, ctx, before)
    else:
        candidates = _line_candidates(before, ctx)
    matches = [c for c in candidates if c.startswith(word)]
    if not matches and word:
        lowered = word.lower()
        matches = [c for c in candidates if c.lower().startswith(lowered)]
    if usage is None:
        usage = _call_usage(word, matches)
    return Completions(start, matches, usage)


def _line_start(before: str, ctx: CompletionContext) -> tuple[bool, str | None, bool, str]:
    """What the line says before the word: a `+DELAY`, the actor (and whether `NAME:` names it), and the rest."""
    inner = before
    delay = _DELAY.match(inner)
    if delay:
        inner = inner[delay.end() :]
    actor_match = _ACTOR.match(inner)
    if actor_match and not inner.lstrip().startswith(("spawn", "kill", "sleep")):
        return bool(delay), actor_match.group(1), True, inner[actor_match.end() :]
    return bool(delay), ctx.default_actor, False, inner


def _argument_candidates(
    open_call: tuple[str, int], actor: str | None, ctx: CompletionContext, before: str
) -> tuple[list[str], str | None]:
    """Inside a call's parentheses: the words for the argument at the cursor, and the call's usage."""
    call_name, index = open_call
    spec = CALLS.get(call_name)
    if spec is None:
        return [], None
    usage = f"{spec.usage} — {spec.summary}" if spec.summary else spec.usage
    kinds = list(spec.required) + list(spec.optional)
    if spec.name == "socket":
        kind: str | None = P.KIND
    elif index < len(kinds):
        kind = kinds[index]
    else:
        kind = spec.variadic
    # Flags joined with | complete after the bar too (the same words).
    return (_argument_words(kind, actor, ctx, call_name, before) if kind else []), usage


def _line_candidates(before: str, ctx: CompletionContext) -> list[str]:
    """Outside a call: directives and their operands, process names, calls."""
    if re.match(r"\s*kill\s+\Z", before):
        return sorted(ctx.processes)
    if re.match(r"\s*kill\s+\S+\s+\Z", before):
        return COMMON_SIGNALS + sorted(s for s in SIGNALS if s not in COMMON_SIGNALS)
    if re.match(r"\s*(spawn|sleep|thread)\s+\Z", before):
        return []
    if re.match(r"\s*thread\s+\S+\s+\Z", before):
        return ["in "]
    if re.match(r"\s*thread\s+\S+\s+in\s+\Z", before):
        return sorted(ctx.processes)
    delay, _, has_actor, inner = _line_start(before, ctx)
    if not before.strip() or (delay and not inner.strip()):
        candidates = [f"{name}: " for name in ctx.processes] + ["spawn ", "kill ", "sleep ", "thread "]
        if ctx.default_actor is not None:
            candidates += [f"{name}(" for name in CALLS]
        return candidates
    if (has_actor and (not inner.strip() or _VAR.fullmatch(inner))) or (
        not has_actor and ctx.default_actor is not None and _VAR.fullmatch(inner)
    ):
        candidates = [f"{name}(" for name in CALLS]
        if has_actor and not inner.strip():
            candidates.append("... = ")
        return candidates
    return []


def _call_usage(word: str, matches: list[str]) -> str | None:
    """The usage of the call the word names, or of the one call it completes to."""
    name = word.rstrip("(")
    if name not in CALLS and len(matches) == 1 and matches[0].endswith("(") and matches[0][:-1] in CALLS:
        name = matches[0][:-1]
    if name not in CALLS:
        return None
    spec = CALLS[name]
    return f"{spec.usage} — {spec.summary}" if spec.summary else spec.usage

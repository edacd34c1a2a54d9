"""`sockplay export --python`: a script as a standalone Python program (standard library only).

The program makes the same calls in the same processes, in the same order,
and prints each outcome in the script's own syntax. It is the runtime of
export_runtime/ (a conductor that forks the processes and sends each its
steps) followed by the experiment: one commented block per line of the script.
"""

from __future__ import annotations

import importlib
import keyword
import math
import re
from dataclasses import replace
from datetime import datetime

from playground import __version__
from playground import calls as P
from playground.calls import CALLS, NAMES_DATA
from playground.constants import DEFAULT_IGNORED, OPTIONS, SOCKET_KINDS, STOPPING
from playground.export_runtime import runtime_text
from playground.recording import read_header, wait_before
from playground.runner import DEFAULT_STEP_TIMEOUT
from playground.script.data import Data
from playground.script.format import data_pieces, format_node
from playground.script.model import (
    AddressArg,
    Arg,
    Cable,
    Completion,
    DataArg,
    Fault,
    FlagsArg,
    FloatArg,
    Host,
    IntArg,
    Kill,
    Line,
    NameArg,
    PairArg,
    RefArg,
    RemoteHost,
    Repeat,
    Script,
    SetArg,
    Sleep,
    Spawn,
    StateCheck,
    Step,
    Thread,
    Timing,
)

RULE = "# " + "═" * 77
# Names the runtime already imports (the experiment imports the others it uses).
_RUNTIME_NAMES = {
    "AF_INET",
    "AF_INET6",
    "IPPROTO_IPV6",
    "IPPROTO_TCP",
    "IPPROTO_UDP",
    "SHUT_RD",
    "SHUT_RDWR",
    "SHUT_WR",
    "SOCK_DGRAM",
    "SOCK_STREAM",
    "SOL_SOCKET",
    "O_NONBLOCK",
    "WNOHANG",
    "WUNTRACED",
    "POLLERR",
    "POLLHUP",
    "POLLIN",
    "POLLNVAL",
    "POLLOUT",
    "POLLPRI",
    "POLLRDHUP",
    "SIG_DFL",
    "SIG_IGN",
    "CATCH",
    "AF_UNIX",
    "IPPROTO_IP",
    "IP_RECVERR",
}
_LEVELS = {"SO": "SOL_SOCKET", "TCP": "IPPROTO_TCP", "IPV6": "IPPROTO_IPV6", "IP": "IPPROTO_IP"}


def export_python(script: Script, source: str = "script.sockplay", exported_at: datetime | None = None) -> str:
    for line in script.steps():
        if isinstance(line.node, RemoteHost):  # the program would run its processes here, saying nothing
            raise ValueError(
                f"cannot export line {line.number}: {line.node.name} is a remote host, "
                "and an exported program runs every process on this machine"
            )
    return _Exporter(script, source, exported_at or datetime.now()).program()


class _Exporter:
    def __init__(self, script: Script, source: str, exported_at: datetime) -> None:
        self.script = script
        self.source = source
        self.exported_at = exported_at
        self.imports: dict[str, set[str]] = {"socket": set(), "signal": set()}
        self.dispositions: dict[str, dict[str, str]] = {}
        self.longest_outcome_wait = 0.0

    def program(self) -> str:
        _check_exportable(self.script)
        body: list[str] = []
        for line in self.script.lines:
            body.extend(self.line(line, ""))
        header = read_header(self.script.header_comments)
        about = [f"exported from {self.source} by sockplay {__version__} on {self.exported_at:%Y-%m-%d %H:%M}"]
        if header.get("kernel"):
            about.append(f"recorded on kernel {header['kernel']}, in a lab on the {header.get('lab', '?')}")
        timeout = max(DEFAULT_STEP_TIMEOUT, self.longest_outcome_wait * 1.5 + 2.0)
        imports = []
        for module, names in self.imports.items():
            wanted = sorted(names - _RUNTIME_NAMES)
            if wanted:
                imports.append(f"from {module} import {', '.join(wanted)}")
        out = [
            "#!/usr/bin/env python3",
            _docstring(self.source, about),
            runtime_text(),
            "",
            "",
            RULE,
            f"# The experiment: {_comment(self.source)}, line by line. Each block shows the script's line (with the",
            "# outcome it recorded, if any), then the call as Python makes it. Run it: python3 THIS_FILE [SPEED]",
            RULE,
            *imports,
            "",
            "HEADER[:] = [" + ", ".join(_q(a) for a in about) + "]",
            f"TIMEOUT = {timeout:g}",
            "",
            *body,
            "",
            'if __name__ == "__main__":',
            "    main()",
            "",
        ]
        return "\n".join(out)

    # One line of the script.

    def _repeat(self, line: Line, node: Repeat, indent: str, shown: str) -> list[str]:
        count = int(node.count)
        out = ["", f"{indent}# ── lines {line.number}-{node.end_number}: {shown} ─ the steps inside run {count} times"]
        out.append(f"{indent}with repeat({count}):")
        for inner in node.lines:
            out.extend(self.line(inner, indent + "    "))
        if not node.lines:
            out.append(f"{indent}    pass  # an empty block")
        return out

    def line(self, line: Line, indent: str) -> list[str]:
        out = [indent + _comment(text) if text.strip() else "" for text in _prose(line.leading)]
        pause = wait_before(line.leading)
        if pause:
            out.append(f"{indent}pause({_finite(pause):g})  # the recording paused here")
        node = line.node
        shown = _comment(_shown(line))
        if isinstance(node, (Host, Fault, Cable)) or (isinstance(node, Spawn) and node.host is not None):
            raise ValueError(
                f"cannot export line {line.number} (`{format_node(node)}`): it is the network lab's, and an exported "
                "program runs on one machine's loopback, with no hosts, cables or crashes"
            )
        if isinstance(node, Repeat):
            return out + self._repeat(line, node, indent, shown)
        if isinstance(node, RemoteHost):  # the program would run its processes here, saying nothing
            raise ValueError(
                f"cannot export line {line.number}: {node.name} is a remote host, "
                "and an exported program runs every process on this machine"
            )
        if not isinstance(node, Step):
            out.append("")
        if isinstance(node, Spawn):
            self.dispositions[node.name] = {}
            out.append(f"{indent}spawn({line.number}, {_q(node.name)})  # line {line.number}: {shown}")
        elif isinstance(node, Thread):  # it shares its process's dispositions: the same dict
            self.dispositions[node.name] = self.dispositions.setdefault(node.process, {})
            out.append(
                f"{indent}thread({line.number}, {_q(node.name)}, {_q(node.process)})  # line {line.number}: {shown}"
            )
        elif isinstance(node, Kill):
            signal = self.constant("signal", node.signal)
            out.append(
                f"{indent}kill({line.number}, {_q(node.name)}, {signal}, ends_it={self.fatal(node)})"
                f"  # line {line.number}: {shown}"
            )
        elif isinstance(node, Sleep):
            out.append(f"{indent}sleep({line.number}, {_finite(node.seconds)!r})  # line {line.number}: {shown}")
        elif isinstance(node, Completion):
            if node.delay:
                self.longest_outcome_wait = max(self.longest_outcome_wait, node.delay)
            delay = f", delay={_finite(node.delay)!r}" if node.delay else ""
            if node.timing is not None:
                delay += f", timing={_timing(node.timing)}"
            out.append(f"{indent}# ── line {line.number}: {shown}")
            out.append(
                f"{indent}outcome({line.number}, {_q(node.actor or '')}{delay})  "
                f"# the outcome of {node.actor}'s oldest blocked call"
            )
        elif isinstance(node, Step):
            out.append("")
            out.append(f"{indent}# ── line {line.number}: {shown}")
            out.extend(indent + text for text in self.step(line.number, node))
        elif isinstance(node, StateCheck) and node.var is None:
            out.append(
                f"{indent}state({line.number}, {_q(node.process)}, {_q(node.state)})  # line {line.number}: {shown}"
            )
        else:  # a line this program cannot act on (`~`: the packets a step sends)
            out.append(
                f"{indent}# line {line.number}: {shown}  (not checked here: this program does not capture packets)"
            )
        return out

    def fatal(self, node: Kill) -> bool:
        if node.signal == "SIGKILL":
            return True
        disposition = self.dispositions.get(node.name, {}).get(node.signal, "SIG_DFL")
        return disposition == "SIG_DFL" and node.signal not in DEFAULT_IGNORED and node.signal not in STOPPING

    def step(self, number: int, node: Step) -> list[str]:
        assert node.actor is not None
        text = format_node(replace(node, delay=None, expect=None, blocks=False, timing=None)).split(": ", 1)[1]
        refs: list[str] = []
        call = self.call(node, refs)
        options = [f"{number}", _q(node.actor), _q(text)]
        if node.blocks:
            options.append("blocks=True")
        if node.delay:
            options.append(f"delay={_finite(node.delay)!r}")
        if node.timing is not None:
            options.append(f"timing={_timing(node.timing)}")
        if refs:
            options.append("refs=(" + ", ".join(_q(r) for r in dict.fromkeys(refs)) + ",)")
        signature = "me, at" if refs else "me"
        lines = [f"@step({', '.join(options)})", f"def _({signature}):"]
        if node.more_vars and node.call.name == "socketpair":  # x, y = socketpair(unix)
            both = ", ".join(_name(v) for v in (node.var or "", *node.more_vars))
            lines.append(f"    {both} = {call}")
            lines.append(f"    return ({both})")
        elif node.call.name == "recvmsg":  # the names go to the descriptors received
            lines.append(f"    return {call}")
        elif node.var:
            lines.append(f"    {_name(node.var)} = {call}")
            lines.append(f"    return {_name(node.var)}")
        else:
            lines.append(f"    return {call}")
        if node.call.name == "signal":
            signame, disposition = (_word(a) for a in node.call.args)
            self.dispositions.setdefault(node.actor, {})[signame] = disposition
        if node.call.name == "fork" and node.var:
            self.dispositions[node.var] = dict(self.dispositions.get(node.actor, {}))
        return lines

    # A call, as Python.

    def call(self, node: Step, refs: list[str]) -> str:
        name = node.call.name
        args = list(node.call.args)
        spec = CALLS[name]
        if name == "socket":
            return f"socket({self.socket_kind(args)})"
        if name == "fork":
            return f"fork(me, {_q(node.var or '')})"
        if name == "setsockopt":
            option = OPTIONS[_word(args[1])]
            level = self.option(option.name)
            value = args[2]
            if isinstance(value, PairArg):
                shown = f"({int(value.value.first)}, {int(value.value.second)})"
            elif option.kind == "timeval":
                shown = repr(_finite(_number(value)))
            else:
                shown = str(int(_number(value)))
            return f"setsockopt({self.fd(args[0])}, {level}, {option.name}, {shown})"
        if name == "socketpair":
            return f"socketpair({self.socket_kind(args)})"
        if name == "recvmsg":
            names = ", ".join(_q(v) for v in (node.var, *node.more_vars) if v)
            return f"recvmsg({self.fd(args[0])}, {int(_number(args[1]))}, me, ({names}{',' if names else ''}))"
        if name == "getsockopt" and OPTIONS[_word(args[1])].kind == "tcp_info":
            raise ValueError("cannot export getsockopt(..., TCP_INFO): Python's socket module has no struct tcp_info")
        if name == "getsockopt" and OPTIONS[_word(args[1])].kind == "meminfo":
            raise ValueError("cannot export getsockopt(..., SO_MEMINFO): Python's socket module does not know it")
        if name == "getsockopt":
            option = OPTIONS[_word(args[1])]
            kind_arg = f", {option.kind!r}" if option.kind in ("linger", "timeval") else ""
            return f"getsockopt({self.fd(args[0])}, {self.option(option.name)}, {option.name}{kind_arg})"
        kinds = list(spec.required) + list(spec.optional)
        shown_args = []
        for i, arg in enumerate(args):
            kind = kinds[i] if i < len(kinds) else spec.variadic
            shown_args.append(self.arg(kind, arg, node.actor or "", refs))
        return f"{name}({', '.join(shown_args)})"

    def socket_kind(self, args: list[Arg]) -> str:
        if len(args) == 1:
            kind = _word(args[0])
            assert kind in SOCKET_KINDS
            fam = "AF_UNIX" if kind.startswith("unix") else "AF_INET6" if kind.endswith("6") else "AF_INET"
            typ = "SOCK_STREAM" if kind.startswith("tcp") or kind == "unix" else "SOCK_DGRAM"
            return f"{fam}, {typ}"
        parts = []
        for arg in args:
            if isinstance(arg, NameArg) and arg.name == "0":
                parts.append("0")
            elif isinstance(arg, NameArg):
                parts.append(self.constant("socket", arg.name))
            else:
                parts.append(str(int(_number(arg))))
        return ", ".join(parts)

    def option(self, name: str) -> str:
        self.constant("socket", name)
        return _LEVELS[name.split("_")[0]]

    def constant(self, module: str, name: str) -> str:
        """A constant's name, imported from `module`; refuses anything that is not a constant's name.

        Names are the only text of a script written into the program as code, so each must
        be an upper-case identifier that `module` (or the runtime) defines.
        """
        if name not in _RUNTIME_NAMES and not _is_constant(module, name):
            raise ValueError(f"cannot export {name!r}: not a constant of Python's {module} module")
        self.imports.setdefault(module, set()).add(name)
        return name

    def fd(self, arg: Arg) -> str:
        return _name(arg.name) if isinstance(arg, NameArg) else str(int(_number(arg)))

    def address(self, arg: Arg, actor: str, refs: list[str]) -> str:
        if isinstance(arg, AddressArg):
            return f"({_q(arg.address.host)}, {int(arg.address.port)})"
        if isinstance(arg, DataArg):  # an AF_UNIX path (checked by the parser: a plain name)
            return _q(bytes(arg.value).decode("utf-8", "replace"))
        key = f"{arg.process}.{arg.name}" if isinstance(arg, RefArg) else f"{actor}.{_word(arg)}"
        refs.append(key)
        return f"at[{_q(key)}]"

    def limit_or_flags(self, kind: str, arg: Arg) -> str:
        """setrlimit's resource and {soft, hard}, accept4's flags."""
        if kind == P.RESOURCE:
            return self.constant("resource", _word(arg))
        if kind == P.LIMITS:
            assert isinstance(arg, PairArg)
            return f"({int(arg.value.first)}, {int(arg.value.second)})"
        names = arg.names if isinstance(arg, FlagsArg) else (_word(arg),)
        return " | ".join(self.constant("socket", n) for n in names) if names else "0"

    def arg(self, kind: str | None, arg: Arg, actor: str, refs: list[str]) -> str:
        if kind == P.FD or kind == P.FDSET:  # poll's one descriptor (a set is not exported: _check_exportable)
            return self.fd(arg)
        if kind == P.DATA:
            assert isinstance(arg, DataArg)
            return py_bytes(arg.value)
        if kind == P.ADDR:
            return self.address(arg, actor, refs)
        if kind in (P.MSGFLAGS, P.EVENTS, P.WAITFLAGS):
            names = arg.names if isinstance(arg, FlagsArg) else (arg.name,) if isinstance(arg, NameArg) else ()
            if not names:
                return "0"
            module = "socket" if kind == P.MSGFLAGS else "select" if kind == P.EVENTS else "os"
            return " | ".join(self.constant(module, name) for name in names)
        if kind in (P.RESOURCE, P.LIMITS, P.SOCKFLAGS):
            return self.limit_or_flags(kind, arg)
        if kind in (P.HOW, P.NONBLOCK):
            return self.constant("socket" if kind == P.HOW else "os", _word(arg))
        if kind == P.SIGNAL:
            return self.constant("signal", _word(arg))
        if kind == P.DISPOSITION:
            return "CATCH" if _word(arg) == "catch" else self.constant("signal", _word(arg))
        if kind == P.PID:
            return _name(arg.name) if isinstance(arg, NameArg) else str(int(_number(arg)))
        if isinstance(arg, IntArg):
            return repr(int(arg.value))
        if isinstance(arg, FloatArg):
            return repr(_finite(arg.value))
        if isinstance(arg, NameArg):
            return self.constant("socket", arg.name)
        raise ValueError(f"cannot export argument {arg!r}")  # pragma: no cover


_ANNOTATION = re.compile(r"(pid \d+|[\d.]+ [µm]s)( · [\d.]+ [µm]s)*")


# What the exported program does not make yet (issue 13's readiness calls, indexed names, data by name).
_NOT_EXPORTED = ("select", "epoll_create1", "epoll_ctl", "epoll_wait")


def _check_exportable(script: Script) -> None:
    """ValueError naming the first line the exported program could not carry out."""
    for line in script.steps():
        node = line.node
        why = None
        if isinstance(node, Repeat) and node.var:
            why = "a 'repeat N as VAR' block"
        elif isinstance(node, Step) and node.call.name in _NOT_EXPORTED:
            why = f"{node.call.name}"
        elif isinstance(node, Step) and node.call.name in NAMES_DATA and node.var:
            why = "data named by a read"
        elif isinstance(node, Step) and any(
            isinstance(a, SetArg) or "[" in getattr(a, "name", "") for a in node.call.args
        ):
            why = "a set or an indexed name"
        if why is not None:
            raise ValueError(f"line {line.number}: export cannot write {why} as Python yet")


def _shown(line: Line) -> str:
    """The line as the script has it, outcome included, without the recorder's pid and duration notes."""
    if isinstance(line.node, Repeat):
        return line.text.strip()
    text = format_node(line.node)
    if line.comment and not _ANNOTATION.fullmatch(line.comment):
        text += f"  # {line.comment}"
    return text


def _timing(timing: Timing) -> str:
    """A timing claim as the program's runtime takes it: (bound, nanoseconds, as written)."""
    return repr((timing.bound, timing.ns, timing.text))


def _q(text: str) -> str:
    """A Python string literal in double quotes whose value is exactly `text`, whatever it holds."""
    return '"' + _escaped(text) + '"'


def _escaped(text: str) -> str:
    """`text` as the inside of a double-quoted (or triple-quoted) Python string literal.

    A script is untrusted: its quotes, backslashes and line ends must never end the
    literal. Every character that is not printable (line ends of any kind, NUL,
    terminal escapes, lone surrogates) is written as the escape `repr()` gives it.
    """
    out = []
    for ch in text:
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(repr(ch)[1:-1])
    return "".join(out)


def _comment(text: str) -> str:
    """Text safe inside a Python comment: nothing in it may end the line (`\\r`, `\\n`, ...)."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _word(arg: Arg) -> str:
    """The word of an argument the parser checked is a name (a kind, a constant, a signal, a variable)."""
    assert isinstance(arg, NameArg), arg
    return arg.name


def _number(arg: Arg) -> int | float:
    """The value of an argument the parser checked is a number."""
    assert isinstance(arg, (IntArg, FloatArg)), arg
    return arg.value


def _finite(value: float) -> float:
    """A number of seconds as a float whose repr is a Python literal (`inf` and `nan` are names, not numbers)."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"cannot export a time of {value} seconds")
    return number


def _is_constant(module: str, name: str) -> bool:
    if not _CONSTANT.fullmatch(name):
        return False
    return isinstance(getattr(importlib.import_module(module), name, None), int)


_CONSTANT = re.compile(r"[A-Z][A-Z0-9_]*")


def _name(var: str) -> str:
    """`me.l`, or `me["..."]` for a name that is no Python identifier."""
    if var.isidentifier() and not keyword.iskeyword(var) and not var.startswith("_"):
        return f"me.{var}"
    return f"me[{_q(var)}]"


def _prose(leading: tuple[str, ...]) -> list[str]:
    """The comment lines before a line, kept for the reader (not the `#@` ones sockplay reads)."""
    out = []
    for text in leading:
        stripped = text.strip()
        if stripped.startswith("#@"):
            continue
        out.append(stripped if stripped.startswith("#") or not stripped else f"# {stripped}")
    return out


def py_bytes(data: bytes | Data) -> str:
    """A Python expression for these bytes: `b"ping"`, `b"x" * 65536`, `b"GET " + b"a" * 100`."""
    if not data:
        return 'b""'
    pieces = data_pieces(data)
    parts = [_literal(chunk) if count == 1 else f"{_literal(chunk)} * {count}" for chunk, count in pieces]
    return " + ".join(parts) if len(parts) == 1 else "(" + " + ".join(parts) + ")"


def _literal(data: bytes) -> str:
    text = repr(data)
    if text.startswith("b'") and '"' not in text[2:-1]:
        text = 'b"' + text[2:-1].replace("\\'", "'") + '"'
    return text


def _docstring(source: str, about: list[str]) -> str:
    lines = [
        f'"""{_escaped(source)}, as a standalone Python program: '
        "the same calls, in the same processes, in the same order.",
        "",
        *(_escaped(text) for text in about),
        "",
        "It needs Linux and Python 3.9+ with nothing but the standard library. Run it:",
        "",
        "    python3 THIS_FILE          # the recorded pauses as they were",
        "    python3 THIS_FILE 0        # without the pauses",
        "",
        "It prints each line of the experiment with the outcome it had this time, in the",
        "script's own syntax (an errno with its name and number): compare them with the",
        "recorded outcomes in the comments of the experiment at the end of this file.",
        '"""',
    ]
    return "\n".join(lines)

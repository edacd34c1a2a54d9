"""`sockplay trace [--host-network] -- COMMAND ARG...`: the TUI on a lab whose one process is that program,
run under strace (`spawn NAME exec --trace COMMAND ARG...`), its socket calls on the lab's timeline.

The lab's own network by default (the program sees only the lab's loopback); with --host-network,
the host's, so that it can reach the host's services. The user names the program on the command
line: it runs with their rights, as it would without sockplay.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys

from playground.cli.limits import add_limit_arguments, limits_from
from playground.exit_codes import EXIT_USAGE

_NOT_A_NAME = re.compile(r"[^a-z0-9_-]+")


def register(subparsers: argparse._SubParsersAction) -> None:
    trace = subparsers.add_parser(
        "trace",
        help="watch a real program's socket calls in the TUI (under strace), on the lab's network",
        description="Open the TUI on a lab whose only process is COMMAND, run under strace: each socket "
        "call it makes is shown on the lab's timeline, beside the packets it sends.",
    )
    trace.add_argument(
        "--host-network",
        action="store_true",
        dest="host_network_trace",
        help="run it on the host's network (to reach this machine's services) instead of the lab's own",
    )
    trace.add_argument("--name", help="the program's name in the lab (default: its command's)")
    trace.add_argument(
        "-p",
        "--pid",
        type=int,
        help="watch a running process instead (where you may ptrace it); the lab is on the host's network, "
        "and when it ends strace detaches and the process runs on",
    )
    trace.add_argument("--no-record", action="store_true", dest="no_record_trace", help="do not record the session")
    trace.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ARG...: the program and its arguments")
    add_limit_arguments(trace)
    trace.set_defaults(handler=trace_command)


def process_name(command: str) -> str:
    """A process name (`[a-z][a-z0-9_-]*`) from a command: `/usr/bin/Python3.11` gives `python3-11`."""
    base = _NOT_A_NAME.sub("-", command.rsplit("/", 1)[-1].lower()).strip("-_")
    if not base or not base[0].isalpha():
        base = "prog" + (f"-{base}" if base else "")
    return base[:32]


def _command_of(pid: int) -> str:
    """The process's command name (/proc/PID/comm), or "" if there is no such process."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip() or "prog"
    except (OSError, ValueError):
        return ""


def trace_command(args: argparse.Namespace) -> int:
    words = list(args.command)
    if words[:1] == ["--"]:
        words = words[1:]
    if bool(words) == (args.pid is not None):
        print("sockplay: trace needs a program or a pid: sockplay trace -- COMMAND ARG..., or -p PID", file=sys.stderr)
        return EXIT_USAGE
    if args.pid is not None:
        words = [_command_of(args.pid)]
        if not words[0]:
            print(f"sockplay: there is no process {args.pid}", file=sys.stderr)
            return EXIT_USAGE
    from playground.script.checks import PROCESS_NAME, RESERVED
    from playground.script.format import format_exec
    from playground.script.model import Spawn

    name = args.name or process_name(words[0])
    if not PROCESS_NAME.match(name) or name in RESERVED:
        print(f"sockplay: {name!r} cannot name a process: pass --name NAME", file=sys.stderr)
        return EXIT_USAGE
    if shutil.which("strace") is None:
        print(
            "sockplay: trace needs strace, which is not installed (Debian, Ubuntu: apt-get install strace)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    line = format_exec(Spawn(name, None, command=tuple(words), trace=True))
    from playground.cli.signals import default_signals

    try:
        from widgets.app import SockplayApp  # the TUI loads only when asked for
    except ImportError as exc:
        print(f"sockplay: the TUI cannot start: {exc}", file=sys.stderr)
        return EXIT_USAGE
    host = bool(args.host_network_trace or getattr(args, "host_network", False) or args.pid is not None)
    app = SockplayApp(
        host_network=host,
        default_lab=False,
        record=not (args.no_record_trace or getattr(args, "no_record", False)),
        first_lines=(line,) if args.pid is None else (),
    )
    if args.pid is not None:
        app.attach_to = (name, args.pid)
    app.session.limits = limits_from(args)
    app.session.allow_exec = True  # the user named the program on the command line
    default_signals()
    app.run()
    return app.return_code or 0

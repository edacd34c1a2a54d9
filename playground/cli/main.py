"""The `sockplay` command: its arguments, and which command they name (the TUI by default)."""

from __future__ import annotations

import argparse
import gc
import os
import sys

from playground import __version__
from playground.cli.exec_rule import ALLOW_EXEC_HELP
from playground.cli.limits import add_limit_arguments, limits_from
from playground.cli.safe_output import escape_output
from playground.cli.signals import default_signals, exit_quietly_on_signals
from playground.constants import DEFAULT_STEP_TIMEOUT, MAX_SCRIPT_DATA
from playground.exit_codes import EXIT_OK, EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sockplay",
        description="A playground for real sockets in real processes on the real kernel.",
    )
    parser.add_argument("--version", action="version", version=f"sockplay {__version__}")
    parser.add_argument(
        "--allow-network", action="store_true", help="allow bind/connect/sendto on addresses other than loopback"
    )
    parser.add_argument(
        "--host-network",
        action="store_true",
        help="run the lab on the host's loopback instead of a private network namespace",
    )
    parser.add_argument("--pcap", metavar="FILE", help="write every packet on the lab's network to a pcap file")
    parser.add_argument(
        "--allow-exec", action="store_true", help="let typed lines run outside programs (spawn ... exec)"
    )
    record = parser.add_mutually_exclusive_group()
    record.add_argument(
        "--record",
        metavar="PATH",
        help="record the TUI session to PATH (default: a new file in the sessions directory)",
    )
    record.add_argument("--no-record", action="store_true", help="do not record the TUI session")
    add_limit_arguments(parser)
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run a .sockplay script headless and check its outcomes")
    run.add_argument("file", help="the script (- for standard input)")
    run.add_argument("--json", action="store_true", help="print one JSON object per line instead of a script")
    run.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_STEP_TIMEOUT,
        metavar="SECONDS",
        help=f"how long a step may block before it counts as stuck (default {DEFAULT_STEP_TIMEOUT:g})",
    )
    run.add_argument(
        "--allow-network", action="store_true", dest="allow_network_run", help="allow addresses other than loopback"
    )
    run.add_argument(
        "--host-network",
        action="store_true",
        dest="host_network_run",
        help="run on the host's loopback instead of a private network namespace",
    )
    run.add_argument("--pcap", metavar="FILE", help="write every packet on the lab's network to a pcap file")
    run.add_argument("--allow-exec", action="store_true", help=ALLOW_EXEC_HELP)
    run.add_argument("--wire", action="store_true", help="print the packets each step sent, as comments")
    run.add_argument(
        "--max-data",
        type=int,
        default=MAX_SCRIPT_DATA,
        metavar="BYTES",
        help=f"how much data the script's lines may state in all (default {MAX_SCRIPT_DATA}, 256 MiB)",
    )
    run.add_argument(
        "--ladder",
        metavar="FILE.svg",
        help="write the ladder diagram of every TCP connection the script made (SVG, stacked)",
    )
    add_limit_arguments(run)
    return parser


# Modules that add subcommands: each has `register(subparsers)`, which adds
# its parser(s) with `set_defaults(handler=...)`; a handler takes the parsed
# arguments and returns the exit code.
COMMAND_MODULES: list[str] = ["playground.cli.lessons", "playground.cli.replay", "playground.cli.trace"]


def _register_commands(parser: argparse.ArgumentParser) -> None:
    import importlib

    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(sub)


def _wants_subcommands(argv: list[str]) -> bool:
    """Whether the command line names a subcommand from COMMAND_MODULES (or asks for the
    top-level help): if not, their modules need not load, and the TUI's first frame (or
    `run`'s first step) comes sooner."""
    for arg in argv:
        if arg in ("-h", "--help"):
            return True
        if not arg.startswith("-"):
            return arg != "run"
    return False


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    if _wants_subcommands(sys.argv[1:] if argv is None else argv):
        _register_commands(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code not in (0, None) else EXIT_OK
    if args.command in ("run", "sessions", "export") or (args.command == "replay" and args.check):
        escape_output()  # what a script says is printed, never obeyed by the terminal
    if args.command == "run":
        from playground.cli.run import run_command  # the engine loads only when a script runs

        return run_command(args)
    handler = getattr(args, "handler", None)
    if handler is not None:
        return int(handler(args))
    return tui_command(args)


def tui_command(args: argparse.Namespace) -> int:
    from playground.cli.run import refuse_outputs

    if refuse_outputs(pcap=args.pcap, record=None if args.no_record else args.record):
        return EXIT_USAGE
    # Loading the TUI (textual, asyncio, the widgets) makes tens of thousands of objects and
    # no garbage: cycle collections meanwhile only cost time. The app turns the collector
    # back on after its first frame.
    gc.disable()
    try:
        from widgets.app import SockplayApp  # the TUI loads only when asked for
    except ImportError as exc:
        gc.enable()
        print(f"sockplay: the TUI cannot start: {exc}", file=sys.stderr)
        return EXIT_USAGE
    app = SockplayApp(
        allow_network=args.allow_network,
        record=not args.no_record,
        record_path=args.record,
        pcap=args.pcap,
        host_network=args.host_network,
    )
    app.session.limits = limits_from(args)
    app.session.allow_exec = args.allow_exec
    default_signals()  # the TUI reads Ctrl-C as a key; until now a signal exits quietly
    app.run()
    return app.return_code or 0


def entry() -> None:
    exit_quietly_on_signals()  # the `sockplay` script comes here first
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`sockplay run x | head`): stop quietly, as a C tool would.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 141
    sys.exit(code)


if __name__ == "__main__":
    entry()

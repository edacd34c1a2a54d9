"""The `sockplay` command: the TUI by default, `run` to execute a script headless."""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from playground import __version__
from playground.constants import DEFAULT_STEP_TIMEOUT, ERRNO_NUMBERS, MAX_SCRIPT_BYTES
from playground.script.errors import ScriptError

if TYPE_CHECKING:  # the engine loads only on the paths that use it: the TUI starts faster
    from playground.lab import Lab
    from playground.runner import Runner, StepReport
    from playground.script.model import Script

EXIT_OK, EXIT_DIVERGED, EXIT_USAGE = 0, 1, 2


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
    record = parser.add_mutually_exclusive_group()
    record.add_argument(
        "--record",
        metavar="PATH",
        help="record the TUI session to PATH (default: a new file in the sessions directory)",
    )
    record.add_argument("--no-record", action="store_true", help="do not record the TUI session")
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
    run.add_argument("--wire", action="store_true", help="print the packets each step sent, as comments")
    run.add_argument(
        "--ladder",
        metavar="FILE.svg",
        help="write the ladder diagram of every TCP connection the script made (SVG, stacked)",
    )
    return parser


# Modules that add subcommands: each has `register(subparsers)`, which adds
# its parser(s) with `set_defaults(handler=...)`; a handler takes the parsed
# arguments and returns the exit code.
COMMAND_MODULES: list[str] = ["playground.cli.lessons", "playground.cli.replay"]


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
    if args.command == "run":
        return run_command(args)
    handler = getattr(args, "handler", None)
    if handler is not None:
        return int(handler(args))
    return tui_command(args)


def tui_command(args: argparse.Namespace) -> int:
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
    app.run()
    return app.return_code or 0


def load_script(path: str) -> Script:
    """Read and parse a script file; raises ScriptError (with a position) or OSError."""
    if path == "-":
        raw = sys.stdin.buffer.read(MAX_SCRIPT_BYTES + 1)
        name = "<stdin>"
    else:
        file = Path(path)
        if file.is_file() and file.stat().st_size > MAX_SCRIPT_BYTES:
            raise ScriptError(path, 1, 1, f"file is larger than {MAX_SCRIPT_BYTES} bytes")
        raw = file.read_bytes()
        name = path
    from playground.script.parser import parse_script

    return parse_script(raw, name)


def run_command(args: argparse.Namespace) -> int:
    try:
        script = load_script(args.file)
    except ScriptError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"sockplay: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    allow = args.allow_network or args.allow_network_run
    host = args.host_network or args.host_network_run
    printer = JsonPrinter() if args.json else ScriptPrinter(script, wire=args.wire)
    try:
        import asyncio  # here, not at the top: the TUI's first frame comes sooner

        return asyncio.run(_run(script, allow, args.timeout, printer, host, args.pcap, args.ladder))
    except KeyboardInterrupt:
        return 130


async def _run(
    script: Script,
    allow_network: bool,
    timeout: float,
    printer: ScriptPrinter | JsonPrinter,
    host_network: bool,
    pcap: str | None = None,
    ladder: str | None = None,
) -> int:
    import asyncio

    from playground.lab import Lab
    from playground.runner import Runner

    lab = await Lab.start(allow_network=allow_network, host_network=host_network, pcap=pcap)
    explain_network(lab)
    if pcap and lab.capture is None:
        print(f"sockplay: no pcap written: {lab.capture_reason}", file=sys.stderr)
    stopped = stop_on_signals()
    printer.begin(lab)
    recorder = None
    if ladder:
        from playground.ladder import LadderRecorder

        recorder = LadderRecorder(lab)
    try:
        runner = Runner(lab, timeout, printer.step)
        runner.settle_wire = isinstance(printer, ScriptPrinter) and printer.wire
        printer.runner = runner
        report = await runner.run(script)
        if recorder is not None:
            await recorder.save(ladder)
        printer.end()
    except asyncio.CancelledError:
        await lab.shutdown()
        if stopped:
            print(f"sockplay: stopped by {signal.Signals(stopped[0]).name}; the lab was shut down", file=sys.stderr)
            return 128 + stopped[0]
        raise
    finally:
        await lab.shutdown()
        stop_on_signals_off()
    for step in report.divergences:
        what = step.divergence or step.error
        print(f"{report.path}:{step.line.number}: {what}", file=sys.stderr)
    if report.divergences:
        print(f"sockplay: {len(report.divergences)} line(s) diverged", file=sys.stderr)
    return report.exit_code


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


def stop_on_signals() -> list[int]:
    """Make SIGTERM, SIGHUP and SIGINT cancel the current task (so the lab is shut down in its
    `finally`); the list returned gets the signal that did."""
    import asyncio

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    stopped: list[int] = []

    def stop(signum: int) -> None:
        stopped.append(signum)
        if task is not None:
            task.cancel()

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop, signum)
    return stopped


def stop_on_signals_off() -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.remove_signal_handler(signum)


def explain_network(lab: Lab) -> None:
    """Say once, on standard error, why the lab is not in a private namespace (or lacks capture)."""
    network = lab.network
    if not network.private and network.reason and "--host-network" not in network.reason:
        print(f"sockplay: {network.reason}; the lab runs on the host's loopback", file=sys.stderr)
    elif network.private and network.reason:
        print(f"sockplay: in the lab's namespace, {network.reason}", file=sys.stderr)


class ScriptPrinter:
    """Prints each line as it ran, in script syntax, so the output is a script too."""

    def __init__(self, script: Script, wire: bool = False) -> None:
        self.script = script
        self.wire = wire
        self.runner: Runner | None = None
        self._printed_packets = 0
        self._wire_list: list = []

    def begin(self, lab: Lab) -> None:
        for text in self.script.header_lines:
            print(text)
        print("sockplay 1", flush=True)
        print(f"# lab network: {lab.network.kind}")
        self.lab = lab

    def step(self, report: StepReport) -> None:
        if report.block_end:
            block = report.line.node
            for text in getattr(block, "trailing", ()):
                print(text)
            print(f"# end of the repeat on line {report.line.number} ({getattr(block, 'count', '?')} runs)")
            for note in report.notes:
                print(f"# {note}")
            return
        if report.first_in_block:
            print(f"# repeat: run {report.iteration}")
        for text in report.line.leading if report.iteration in (None, 1) else ():
            print(text)
        comments = []
        if report.line.comment:
            comments.append(report.line.comment)
        if report.result is not None and report.result.outcome.death is None:
            comments.append(_duration(report.result.duration_ns))
        text = report.text
        if comments:
            text = f"{text:<44} # {' · '.join(comments)}"
        print(text)
        if report.error:
            print(f"# ERROR (line {report.line.number}): {report.error}")
        elif report.divergence:
            print(f"# DIVERGES (line {report.line.number}): {report.divergence}")
        for note in report.notes:
            print(f"# {note}")
        if self.wire and self.runner is not None:
            self._print_wire()
        sys.stdout.flush()

    def end(self) -> None:
        for text in self.script.trailing:
            print(text)
        sys.stdout.flush()

    def _print_wire(self) -> None:
        """The packets the step just made put on the wire, as comments (`--wire`)."""
        packets = self.runner.packets if self.runner else []
        if packets is not self._wire_list:  # a new step: its own list of packets
            self._wire_list, self._printed_packets = packets, 0
        fresh, self._printed_packets = packets[self._printed_packets :], len(packets)
        for packet in fresh:
            offset = (packet.t_ns - self.lab.t0) / 1e6
            print(f"#   {offset:10.3f} ms  {packet.summary}")


def _duration(ns: int) -> str:
    if ns >= 1_000_000:
        return f"{ns / 1e6:.1f} ms"
    return f"{ns / 1e3:.0f} µs"


class JsonPrinter:
    runner: Runner | None = None

    def end(self) -> None:
        pass

    def begin(self, lab: Lab) -> None:
        self.lab = lab

    def step(self, report: StepReport) -> None:
        print(json.dumps(step_json(report, self.lab.t0)), flush=True)


def step_json(report: StepReport, t0: int) -> dict:
    from playground.script.format import format_data

    out: dict[str, object] = {
        "line": report.line.number,
        "text": report.text,
        "process": report.process,
        "call": report.call,
        "ok": not (report.divergence or report.error),
    }
    if report.divergence:
        out["divergence"] = report.divergence
    if report.error:
        out["error"] = report.error
    if report.notes:
        out["notes"] = report.notes
    result = report.result
    if result is not None:
        outcome = result.outcome
        value = outcome.value
        out["return"] = value if isinstance(value, (int, float)) or value is None else str(value)
        if outcome.errno:
            out["errno"] = {
                "name": outcome.errno,
                "number": ERRNO_NUMBERS.get(outcome.errno),
                "message": outcome.errno_message,
            }
        if outcome.data is not None:
            out["data"] = {
                "length": len(outcome.data),
                "script": format_data(outcome.data),
                "hex": outcome.data[:4096].hex(),
            }
        if outcome.peer is not None:
            out["peer"] = str(outcome.peer)
        if outcome.revents is not None:
            out["revents"] = list(outcome.revents)
        if outcome.child is not None:
            out["child"] = str(outcome.child)
        out["signals"] = list(outcome.signals)
        if outcome.death is not None:
            out["death"] = str(outcome.death)
        out["start_ms"] = round((result.start_ns - t0) / 1e6, 6) if result.start_ns else None
        out["duration_ns"] = result.duration_ns
    return out


def entry() -> None:
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

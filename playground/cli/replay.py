"""`sockplay replay`, `sockplay sessions` and `sockplay export`: recordings, checked, listed and exported.

sockplay replay --check FILE [--speed X] [--json] [--allow-network]
sockplay replay FILE                 # the TUI in replay mode
sockplay sessions                    # recordings, newest first
sockplay export FILE --python [-o PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
from datetime import datetime
from pathlib import Path

from playground.cli.exec_rule import ALLOW_EXEC_HELP, refuse_exec, refuse_exec_export, refuse_exec_in_tui
from playground.cli.limits import add_limit_arguments, limits_from
from playground.constants import MAX_SCRIPT_DATA
from playground.exit_codes import EXIT_OK, EXIT_USAGE
from playground.lab_limits import Limits
from playground.recording import lab_environment, read_header, sessions_dir, wait_before
from playground.recording_list import list_sessions
from playground.replay import (
    beyond_loopback,
    environment_notes,
    kernel_notes,
    load_recording,
    recorded_gaps,
    scaled,
)
from playground.runner import DEFAULT_STEP_TIMEOUT, Runner, RunReport, StepReport
from playground.script.errors import ScriptError
from playground.script.format import format_node
from playground.script.model import Repeat, Script


def register(subparsers: argparse._SubParsersAction) -> None:
    replay = subparsers.add_parser(
        "replay",
        help="replay a recorded session (--check: headless, verifying every outcome)",
        description="Replay a recording. With --check, run it headless and verify each recorded outcome: "
        "exit 0 if all hold, 1 if any diverged, 2 for a bad script or bad usage.",
    )
    replay.add_argument("file", help="the recording (a .sockplay script)")
    replay.add_argument("--check", action="store_true", help="run headless and verify every recorded outcome")
    replay.add_argument(
        "--speed",
        type=float,
        default=None,
        metavar="X",
        help="scale the recorded pauses: 0 skips them, 1 keeps them as recorded (default 0 with --check)",
    )
    replay.add_argument("--json", action="store_true", help="with --check, print one JSON object per line")
    replay.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_STEP_TIMEOUT,
        metavar="SECONDS",
        help="how long a step may block before it counts as stuck "
        f"(default {DEFAULT_STEP_TIMEOUT:g}, longer if the recording waited longer)",
    )
    replay.add_argument(
        "--allow-network",
        action="store_true",
        dest="allow_network_replay",
        help="let the script use addresses other than loopback",
    )
    replay.add_argument(
        "--pcap", metavar="FILE", dest="pcap_replay", help="write every packet on the lab's network to a pcap file"
    )
    replay.add_argument(
        "--host-network",
        action="store_true",
        dest="host_network_replay",
        help="run on the host's loopback instead of a private network namespace",
    )
    replay.add_argument("--allow-exec", action="store_true", dest="allow_exec_replay", help=ALLOW_EXEC_HELP)
    add_limit_arguments(replay)
    replay.add_argument(
        "--max-data",
        type=int,
        default=MAX_SCRIPT_DATA,
        metavar="BYTES",
        help=f"how much data the script's lines may state in all (default {MAX_SCRIPT_DATA}, 256 MiB)",
    )
    replay.set_defaults(handler=replay_command)

    sessions = subparsers.add_parser(
        "sessions",
        help="list recorded sessions, newest first",
        description=f"List the recordings in {sessions_dir()} (or --dir), newest first: "
        "when each began, how many steps it has, and which kernel it ran on.",
    )
    sessions.add_argument("--dir", metavar="DIRECTORY", help="list another directory")
    sessions.add_argument("--json", action="store_true", help="one JSON object per recording")
    sessions.set_defaults(handler=sessions_command)

    export = subparsers.add_parser(
        "export",
        help="write a recording as a standalone program (--python)",
        description="Write a script as a standalone Python program (standard library only) that makes "
        "the same calls in the same processes, in the same order, and prints each outcome.",
    )
    export.add_argument("file", help="the recording or script")
    export.add_argument("--python", action="store_true", help="write a Python 3 program (the one format so far)")
    export.add_argument("-o", "--output", metavar="PATH", help="write to PATH instead of standard output")
    export.add_argument(
        "--allow-network",
        action="store_true",
        dest="allow_network_export",
        help="export a script that uses addresses other than loopback",
    )
    export.set_defaults(handler=export_command)


# Reading a recording.


def _read_or_fail(path: str, max_data: int = MAX_SCRIPT_DATA) -> Script | int:
    try:
        script = load_recording(path, max_data)
    except ScriptError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"sockplay: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    if script.truncated is not None:
        kept = len(script.steps())
        print(
            f"{path}:{script.truncated}: the last line is cut off (the recording ended in the middle of "
            f"writing it); using the {kept} line(s) before it",
            file=sys.stderr,
        )
    return script


def refuse_network(script: Script, path: str, allowed: bool) -> bool:
    """Say why a script that leaves loopback does not run (unless allowed); True if it is refused."""
    reaching = beyond_loopback(script)
    if not reaching or allowed:
        return False
    for number, what in reaching[:5]:
        print(f"{path}:{number}: would {what}, which is not loopback", file=sys.stderr)
    more = f" (and {len(reaching) - 5} more)" if len(reaching) > 5 else ""
    print(
        f"sockplay: refusing to run {path}: it reaches beyond loopback{more}. sockplay stays on 127.0.0.1 and "
        "::1 unless you trust the script and pass --allow-network. Nothing was run.",
        file=sys.stderr,
    )
    return True


def replay_command(args: argparse.Namespace) -> int:
    speed = args.speed
    if speed is not None and (not math.isfinite(speed) or speed < 0):
        print("sockplay: --speed must be a number, 0 or more (0: no pauses, 1: as recorded)", file=sys.stderr)
        return EXIT_USAGE
    if args.timeout <= 0 or not math.isfinite(args.timeout):
        print("sockplay: --timeout must be a positive number of seconds", file=sys.stderr)
        return EXIT_USAGE
    script = _read_or_fail(args.file, args.max_data)
    if isinstance(script, int):
        return script
    allow = bool(getattr(args, "allow_network", False) or args.allow_network_replay)
    host = bool(getattr(args, "host_network", False) or args.host_network_replay)
    if refuse_network(script, args.file, allow):
        return EXIT_USAGE
    allow_exec = bool(args.allow_exec_replay)
    if refuse_exec(script, args.file, allow_exec) or refuse_exec_in_tui(script, args.file, args.check):
        return EXIT_USAGE
    pcap = args.pcap_replay or getattr(args, "pcap", None)
    from playground.cli.run import refuse_outputs

    if refuse_outputs(pcap=pcap):
        return EXIT_USAGE
    if not args.check:
        return _replay_in_tui(args.file, speed, allow, host, pcap)
    check = ReplayCheck(
        script,
        args.file,
        speed=speed or 0.0,
        timeout=args.timeout,
        json_lines=args.json,
        allow_network=allow,
        host_network=host,
        pcap=pcap,
        limits=limits_from(args),
    )
    check.allow_exec = allow_exec
    return asyncio.run(check.run())


def _replay_in_tui(path: str, speed: float | None, allow: bool, host: bool, pcap: str | None = None) -> int:
    if not host:
        from playground.netns import make_network

        network = make_network()  # a recording from elsewhere stays off the host's network unless told
        network.close()
        if not network.private:
            print(
                f"sockplay: refusing to replay on the host's network: {network.reason}. There the recording "
                "could reach this machine's own loopback services; to replay it there anyway, pass --host-network",
                file=sys.stderr,
            )
            return EXIT_USAGE
    from playground.cli.signals import default_signals
    from widgets.app import run_replay  # the TUI loads only when asked for

    default_signals()  # the TUI reads Ctrl-C as a key; until now a signal exits quietly
    pace = 1.0 if speed is None else speed
    return int(run_replay(path, speed=pace, allow_network=allow, host_network=host, pcap=pcap) or 0)


class ReplayCheck:
    """Runs a recording headless on a fresh lab and checks every recorded outcome."""

    def __init__(
        self,
        script: Script,
        path: str,
        speed: float = 0.0,
        timeout: float = DEFAULT_STEP_TIMEOUT,
        json_lines: bool = False,
        allow_network: bool = False,
        host_network: bool = False,
        pcap: str | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.original = script
        self.limits = limits or Limits()
        self.pcap = pcap
        self.script = scaled(script, speed)
        self.path = path
        self.speed = speed
        longest, outcome_wait = recorded_gaps(script)
        self.longest_gap = longest
        # A blocked call's outcome may have taken as long to come as the recording waited for it.
        self.timeout = max(timeout, outcome_wait * 1.5 + 2.0)
        self.json_lines = json_lines
        self.allow_network = allow_network
        self.host_network = host_network
        self.header = read_header(script.header_comments)
        self.notes: list[str] = []
        self.allow_exec = False  # outside programs (`spawn NAME exec ...`) run only if the user says so

    def say(self, text: str) -> None:
        print(f"sockplay: {text}", file=sys.stderr, flush=True)

    async def run(self) -> int:
        from playground.cli.printers import JsonPrinter, ScriptPrinter
        from playground.cli.run import on_fresh_lab
        from playground.cli.signals import StopOnSignals
        from playground.lab import Lab

        for note in kernel_notes(self.header):
            self.notes.append(note)
            self.say(note)

        async def body(lab: Lab, stopper: StopOnSignals) -> RunReport:
            lab.lifecycle.outside.allowed = self.allow_exec
            kind, sysctls = lab_environment(lab)
            for note in environment_notes(self.header, kind, sysctls):
                self.notes.append(note)
                self.say(note)
            printer = JsonPrinter() if self.json_lines else ScriptPrinter(self.script)
            printer.begin(lab)

            def on_step(step: StepReport) -> None:
                printer.step(step)
                stopper.check()  # a replay whose steps never yield is stopped here

            runner = Runner(lab, self.timeout, on_step)
            printer.runner = runner
            return await self.run_lines(runner)

        done = await on_fresh_lab(
            self.say,
            body,
            allow_network=self.allow_network,
            host_network=self.host_network,
            pcap=self.pcap,
            limits=self.limits,
        )
        return done if isinstance(done, int) else self.finish(done)

    async def run_lines(self, runner: Runner) -> RunReport:
        report = RunReport(self.path)
        for line in self.script.lines:
            pause = min(wait_before(line.leading) * self.speed, self.limits.sleep)  # a recorded idle spell, bounded
            if pause > 0:
                await asyncio.sleep(pause)
            if isinstance(line.node, Repeat):
                report.steps.extend(await runner.run_repeat(line))
            else:
                report.steps.append(await runner.run_line(line))
        return report

    def finish(self, report: RunReport) -> int:
        diverged = report.divergences
        for step in diverged:
            expected, actual, reason = divergence_parts(step)
            print(f"{self.path}:{step.line.number}: {reason}", file=sys.stderr)
            print(f"    expected: {expected}", file=sys.stderr)
            print(f"    actual:   {actual}", file=sys.stderr)
        if diverged:
            self.say(f"{len(diverged)} line(s) diverged from {self.path}")
            if self.speed == 0 and self.longest_gap >= 0.5:
                self.say(
                    f"the recording paused (up to {self.longest_gap:g} s) where this replay did not: "
                    "to honour the pauses, replay with --speed 1"
                )
        elif not self.json_lines:
            self.say(f"all {len(report.steps)} line(s) of {self.path} ran as recorded")
        if self.json_lines:
            summary = {
                "file": self.path,
                "exit": report.exit_code,
                "lines": len(report.steps),
                "speed": self.speed,
                "truncated": self.original.truncated,
                "kernel": {"recorded": self.header.get("kernel"), "now": os.uname().release},
                "notes": self.notes,
                "divergences": [
                    dict(
                        zip(
                            ("line", "expected", "actual", "reason"), (s.line.number, *divergence_parts(s)), strict=True
                        )
                    )
                    for s in diverged
                ],
            }
            print(json.dumps({"summary": summary}), flush=True)
        return report.exit_code


def divergence_parts(step: StepReport) -> tuple[str, str, str]:
    """(the line as recorded, the line as it ran, why they differ)."""
    node = step.line.node
    expected = format_node(node) if not isinstance(node, Repeat) else step.line.text.strip()
    actual = step.text
    reason = step.divergence or f"could not run: {step.error}"
    return expected, actual, reason


# sockplay sessions.


def sessions_command(args: argparse.Namespace) -> int:
    directory = Path(args.dir) if args.dir else sessions_dir()
    if args.dir and not directory.is_dir():
        print(f"sockplay: {directory} is not a directory", file=sys.stderr)
        return EXIT_USAGE
    found = list_sessions(directory)
    if args.json:
        for info in found:
            print(
                json.dumps(
                    {
                        "path": str(info.path),
                        "started": info.started.isoformat() if info.started else None,
                        "steps": info.steps,
                        "kernel": info.kernel,
                        "lab": info.lab,
                        "truncated": info.truncated,
                        "error": info.error,
                    }
                )
            )
        return EXIT_OK
    if not found:
        print(f"no recordings in {directory}")
        return EXIT_OK
    print(f"{'when':<19}  {'steps':>5}  {'kernel':<24}  file")
    for info in found:
        when = info.started.astimezone().strftime("%Y-%m-%d %H:%M:%S") if info.started else "?"
        steps = "?" if info.steps is None else str(info.steps)
        kernel = info.kernel or "?"
        tail = ""
        if info.error:
            tail = f"  (unreadable: {info.error})"
        elif info.truncated:
            tail = f"  (cut off at line {info.truncated})"
        print(f"{when:<19}  {steps:>5}  {kernel:<24}  {_shown(info.path, directory)}{tail}")
    return EXIT_OK


def _shown(path: Path, directory: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# sockplay export.


def export_command(args: argparse.Namespace) -> int:
    if not args.python:
        print("sockplay: say which program to write: sockplay export FILE --python [-o PATH]", file=sys.stderr)
        return EXIT_USAGE
    script = _read_or_fail(args.file)
    if isinstance(script, int):
        return script
    allow = bool(getattr(args, "allow_network", False) or args.allow_network_export)
    if refuse_network(script, args.file, allow):
        return EXIT_USAGE
    if refuse_exec_export(script, args.file):
        return EXIT_USAGE
    from playground.export import export_python

    try:
        program = export_python(script, Path(args.file).name, exported_at=datetime.now())
    except ValueError as exc:  # a name the exporter will not write as code
        print(f"sockplay: {args.file}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not args.output or args.output == "-":
        sys.stdout.write(program)
        return EXIT_OK
    from playground.output_files import OutputRefused, write_output

    try:
        # A new file renamed over the target: a link, a device or a FIFO is refused, and only
        # the new file is made executable.
        write_output(args.output, program, mode=0o755)
    except OutputRefused as exc:
        print(f"sockplay: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"sockplay: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"sockplay: wrote {args.output}; run it with: python3 {args.output}", file=sys.stderr)
    return EXIT_OK

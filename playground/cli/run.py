"""`sockplay run`: a script executed headless on a fresh lab, each line echoed as it ran."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, TypeVar, Unpack

from playground.cli.limits import limits_from
from playground.cli.printers import JsonPrinter, ScriptPrinter
from playground.cli.signals import StopOnSignals
from playground.constants import MAX_SCRIPT_BYTES, MAX_SCRIPT_DATA
from playground.exit_codes import EXIT_USAGE
from playground.script.errors import ScriptError

if TYPE_CHECKING:  # the engine loads only on the paths that use it
    from playground.lab import Lab
    from playground.lab_limits import Limits
    from playground.runner import RunReport, StepReport
    from playground.script.model import Script

T = TypeVar("T")


def load_script(path: str, max_data: int = MAX_SCRIPT_DATA) -> Script:
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

    return parse_script(raw, name, max_data=max_data)


def run_command(args: argparse.Namespace) -> int:
    try:
        script = load_script(args.file, args.max_data)
    except ScriptError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"sockplay: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    if refuse_outputs(pcap=args.pcap, ladder=args.ladder):
        return EXIT_USAGE
    allow = args.allow_network or args.allow_network_run
    host = args.host_network or args.host_network_run
    printer = JsonPrinter(wire=args.wire) if args.json else ScriptPrinter(script, wire=args.wire)
    import asyncio  # here, not at the top: the TUI's first frame comes sooner

    return asyncio.run(
        _run(script, allow, args.timeout, printer, host, args.pcap, args.ladder, limits=limits_from(args))
    )


class LabOptions(TypedDict, total=False):
    """The lab's own options a fresh lab is started with (those of Lab.start)."""

    allow_network: bool
    host_network: bool
    capture: bool
    pcap: str | None
    limits: Limits | None


async def on_fresh_lab(
    say: Callable[[str], None],
    body: Callable[[Lab, StopOnSignals], Awaitable[T]],
    **lab_options: Unpack[LabOptions],
) -> T | int:
    """Start a lab in a private namespace, run `body` on it, and shut the lab down whatever happens.

    A lab that cannot start is said and gives EXIT_USAGE; SIGTERM, SIGHUP or SIGINT at any moment
    ends the run with 128 + the signal's number, after the shutdown.
    """
    import asyncio

    from playground.lab import Lab, LabError

    stopper = StopOnSignals()
    lab = None
    result: T | int = EXIT_USAGE
    try:
        try:
            lab = await Lab.start(private_only=True, **lab_options)
        except LabError as exc:
            say(str(exc))
            return EXIT_USAGE
        explain_network(lab)
        if lab_options.get("pcap") and lab.capture is None:
            say(f"no pcap written: {lab.capture_reason}")
        result = await body(lab, stopper)
    except asyncio.CancelledError:
        if not stopper.stopped:
            raise
    finally:
        stopper.unwinding()
        if lab is not None:
            await lab.shutdown()
        stopper.remove()
    if stopper.stopped:  # also when it came after the last step: the run is over, but stopped all the same
        return stopper.say()
    return result


def _say(text: str) -> None:
    print(f"sockplay: {text}", file=sys.stderr)


async def _run(
    script: Script,
    allow_network: bool,
    timeout: float,
    printer: ScriptPrinter | JsonPrinter,
    host_network: bool,
    pcap: str | None = None,
    ladder: str | None = None,
    limits: Limits | None = None,
) -> int:
    from playground.runner import Runner

    async def body(lab: Lab, stopper: StopOnSignals) -> tuple[RunReport, int | None]:
        printer.begin(lab)
        recorder = None
        if ladder:
            from playground.ladder import LadderRecorder

            recorder = LadderRecorder(lab)

        def on_step(step: StepReport) -> None:
            printer.step(step)
            stopper.check()  # a run whose steps never yield is stopped here

        runner = Runner(lab, timeout, on_step)
        runner.settle_wire = printer.wire
        printer.runner = runner
        report = await runner.run(script)
        saved = await recorder.save(ladder) if recorder is not None and ladder else 0
        printer.end()
        return report, saved

    done = await on_fresh_lab(
        _say, body, allow_network=allow_network, host_network=host_network, pcap=pcap, limits=limits
    )
    if isinstance(done, int):
        return done
    report, saved = done
    for step in report.divergences:
        what = step.divergence or step.error
        print(f"{report.path}:{step.line.number}: {what}", file=sys.stderr)
    if report.divergences:
        print(f"sockplay: {len(report.divergences)} line(s) diverged", file=sys.stderr)
    if saved is None:  # the ladder asked for was not written (said already)
        return max(report.exit_code, EXIT_USAGE)
    return report.exit_code


def refuse_outputs(**paths: str | None) -> bool:
    """Say why an output file named on the command line cannot be written (before any lab starts);
    True if one cannot. A missing directory of `record` is fine: the recording makes it."""
    from playground.output_files import check_output_path

    for option, path in paths.items():
        if path is None or path == "-":
            continue
        try:
            check_output_path(path, make_parent=option == "record")
        except OSError as exc:
            print(f"sockplay: --{option}: {exc}", file=sys.stderr)
            return True
    return False


def explain_network(lab: Lab) -> None:
    """Say once, on standard error, why the lab is not in a private namespace (or lacks capture)."""
    network = lab.network
    if not network.private and network.reason and "--host-network" not in network.reason:
        print(f"sockplay: {network.reason}; the lab runs on the host's loopback", file=sys.stderr)
    elif network.private and network.reason:
        print(f"sockplay: in the lab's namespace, {network.reason}", file=sys.stderr)

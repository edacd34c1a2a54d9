"""How `run` and `replay --check` print what ran: as a script (ScriptPrinter) or as JSON lines (JsonPrinter)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from playground.constants import ERRNO_NUMBERS

if TYPE_CHECKING:  # the engine loads only on the paths that use it
    from playground.events import CallObserved, CallResult
    from playground.lab import Lab
    from playground.packet_log import AnyPacket
    from playground.runner import Runner, StepReport
    from playground.script.model import Script


class WireFeed:
    """The packets the runner has seen that are not printed yet, and the step that caused them (`--wire`)."""

    def __init__(self) -> None:
        self.runner: Runner | None = None
        self._list: Sequence[AnyPacket] = []
        self._printed = 0
        self.cause: int | None = None  # the line number of the last call: the packets are its doing

    def fresh(self) -> list[AnyPacket]:
        packets = self.runner.packets if self.runner is not None else []
        if packets is not self._list:  # a new step: its own list of packets
            self._list, self._printed = packets, 0
        fresh, self._printed = list(packets[self._printed :]), len(packets)
        return fresh

    def note_cause(self, report: StepReport) -> None:
        if report.call is not None:
            self.cause = report.line.number


class _Printer:
    """What both printers share: whether packets are printed, and the feed of the runner's packets."""

    def __init__(self, wire: bool) -> None:
        self.wire = wire
        self.feed = WireFeed()

    @property
    def runner(self) -> Runner | None:
        return self.feed.runner

    @runner.setter
    def runner(self, runner: Runner | None) -> None:
        self.feed.runner = runner


class ScriptPrinter(_Printer):
    """Prints each line as it ran, in script syntax, so the output is a script too."""

    def __init__(self, script: Script, wire: bool = False) -> None:
        super().__init__(wire)
        self.script = script

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
            if report.divergence:
                print(f"# DIVERGES (the repeat on line {report.line.number}): {report.divergence}")
            return
        if report.first_in_block:
            print(f"# repeat: run {report.iteration}")
        for text in report.line.leading if report.iteration in (None, 1) else ():
            print(text)
        if report.call is None:
            # Packets that came after the last call was printed are that call's: printed before
            # this line, so a `~` line's `# saw ...` note never comes before the packet it names.
            self._print_wire()
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
        if report.call is not None:
            self._print_wire()
        self._print_after(report)

    def _print_after(self, report: StepReport) -> None:
        """What the lab said meanwhile: notes, and the outside programs' calls (observed lines)."""
        for note in report.notes:
            print(f"# {note}")
        for seen in report.observed:
            print(seen.line)
        sys.stdout.flush()

    def end(self) -> None:
        self._print_wire()
        for seen in self.runner.take_observed() if self.runner is not None else ():
            print(seen.line)
        for text in self.script.trailing:
            print(text)
        sys.stdout.flush()

    def _print_wire(self) -> None:
        """The packets the last call put on the wire, as comments (`--wire`)."""
        if not self.wire:
            return
        for packet in self.feed.fresh():
            offset = (packet.t_ns - self.lab.t0) / 1e6
            print(f"#   {offset:10.3f} ms  {packet.summary}")


def _duration(ns: int) -> str:
    if ns >= 1_000_000:
        return f"{ns / 1e6:.1f} ms"
    return f"{ns / 1e3:.0f} µs"


class JsonPrinter(_Printer):
    """One JSON object per line that ran; with `wire`, one per packet too (`{"packet": {...}}`)."""

    def __init__(self, wire: bool = False) -> None:
        super().__init__(wire)

    def begin(self, lab: Lab) -> None:
        self.lab = lab

    def step(self, report: StepReport) -> None:
        if report.call is None:
            self._print_wire()
        print(json.dumps(step_json(report, self.lab.t0)))
        if report.call is not None:
            self.feed.note_cause(report)
            self._print_wire()
        for seen in report.observed:
            print(json.dumps(observed_json(seen, self.lab.t0)))
        sys.stdout.flush()

    def end(self) -> None:
        self._print_wire()
        for seen in self.runner.take_observed() if self.runner is not None else ():
            print(json.dumps(observed_json(seen, self.lab.t0)))
        sys.stdout.flush()

    def _print_wire(self) -> None:
        if self.wire:
            for packet in self.feed.fresh():
                print(json.dumps({"packet": packet_json(packet, self.lab.t0, self.feed.cause)}))


def packet_json(packet: AnyPacket, t0: int, line: int | None) -> dict:
    """A captured packet for JSON readers: when, which ends (by name where the lab knows them), what."""
    out: dict[str, object] = {
        "t_ms": round((packet.t_ns - t0) / 1e6, 6),
        "protocol": packet.protocol,
        "src": {"name": packet.src_label, "address": packet.src[0], "port": packet.src[1]},
        "dst": {"name": packet.dst_label, "address": packet.dst[0], "port": packet.dst[1]},
        "length": packet.length,
        "line": line,  # the step that caused it: the last call before it was seen
        "summary": packet.summary,
    }
    if packet.protocol == "TCP":
        out.update(
            flags=list(packet.flags),
            seq=packet.relative_seq,
            ack=packet.relative_ack if "ACK" in packet.flags else None,
            raw_seq=packet.seq,
            raw_ack=packet.ack,
            window=packet.window,
        )
    elif packet.icmp is not None:
        out["icmp"] = packet.icmp
    return out


def observed_json(seen: CallObserved, t0: int) -> dict:
    """A call an outside program made (as its tracer saw it): text only, never a step that ran."""
    return {
        "observed": True,
        "process": seen.process,
        "text": seen.line,
        "call": seen.text.split("(", 1)[0] if "(" in seen.text else None,
        "start_ms": round((seen.start_ns - t0) / 1e6, 6),
        "duration_ns": seen.duration_ns,
    }


def step_json(report: StepReport, t0: int) -> dict:
    out: dict[str, object] = {
        "line": report.line.number,
        "text": report.text,
        "process": report.process,
        "call": report.call,
        "ok": not (report.divergence or report.error),
    }
    if report.line.node.__class__.__name__ == "Observed":  # a `#> PROC: ...` line of the script: shown, not run
        out["observed"] = True
    if report.divergence:
        out["divergence"] = report.divergence
    timing = getattr(report.line.node, "timing", None)
    if timing is not None:  # the line's claim; its check is in `ok` and `divergence`
        out["timing"] = {"bound": timing.bound, "ns": timing.ns, "text": str(timing)}
    if report.error:
        out["error"] = report.error
    if report.notes:
        out["notes"] = report.notes
    result = report.result
    if result is not None:
        out.update(_result_json(result, t0))
    return out


def _result_json(result: CallResult, t0: int) -> dict[str, object]:
    """A call's result: its value, errno, data, peer, events, signals, death, and its times."""
    from playground.script.data import Data
    from playground.script.format import format_data
    from playground.script.model import Fields

    out: dict[str, object] = {}
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
        data = outcome.data
        out["data"] = {
            "length": len(data),
            "script": format_data(data),
            "hex": (data.head(4096) if isinstance(data, Data) else data[:4096]).hex(),
        }
    if outcome.peer is not None:
        out["peer"] = str(outcome.peer)
    if outcome.revents is not None:
        out["revents"] = list(outcome.revents)
    if outcome.child is not None:
        out["child"] = str(outcome.child)
    if outcome.ready is not None:  # each ready descriptor by name, with its events
        out["ready"] = {who: list(events) for who, events in outcome.ready}
    if outcome.rights is not None:  # recvmsg's descriptors received
        out["rights"] = list(outcome.rights)
    if isinstance(value, Fields):  # TCP_INFO, field by field
        out["fields"] = dict(value.items)
    out["signals"] = list(outcome.signals)
    if outcome.death is not None:
        out["death"] = str(outcome.death)
    out["start_ms"] = round((result.start_ns - t0) / 1e6, 6) if result.start_ns else None
    out["duration_ns"] = result.duration_ns
    return out

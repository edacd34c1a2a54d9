"""The switch's forwarding: learn, forward or flood, and put every copy through both cables' pipes.

A frame from port A to port B crosses A's `out` pipe, then B's `in` pipe.
Each stage can hold a copy for a while: those wait in a heap until their
time. No I/O here: `send` puts a frame on a port, `report` takes each copy's
fate, so the logic runs the same in the switch process and in a test.
"""

from __future__ import annotations

import heapq
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from playground.netlab.channel import DELIVERED, DUPLICATE, LOST_CUT, LOST_QUEUE
from playground.netlab.impairments import Impairment
from playground.netlab.pipe import Departure, Pipe

# (entered ns, delivered ns or None, fate, port in, port out or None, frame)
Report = Callable[[int, int | None, str, int, int | None, bytes], None]
Send = Callable[["Port", bytes], bool]


@dataclass
class Port:
    """One cable's end at the switch."""

    number: int
    name: str
    out_pipe: Pipe  # frames the host sends
    in_pipe: Pipe  # frames towards the host
    cut: bool = False
    dark: bool = False  # the host is losing power: what its dying stack sends was never sent, so goes unreported
    sent: int = 0  # frames the host put on its cable
    delivered: int = 0  # frames the switch gave the host
    dropped_cut: int = 0
    dropped_send: int = 0  # the switch could not put it on the cable (a full socket buffer, an oversized frame)
    link: socket.socket | None = None  # the switch process's packet socket for this port

    def counters(self) -> dict[str, int]:
        both = (self.out_pipe.counters, self.in_pipe.counters)
        return {
            "sent": self.sent,
            "delivered": self.delivered,
            "dropped_cut": self.dropped_cut,
            "dropped_loss": sum(c.lost_loss for c in both),
            "dropped_queue": sum(c.lost_queue for c in both) + self.dropped_send,
            "delayed": sum(c.delayed for c in both),
            "duplicated": sum(c.duplicated for c in both),
        }


@dataclass(order=True)
class _Timer:
    at_ns: int
    order: int
    stage: str = field(compare=False)  # "core": out of the sender's cable; "wire": out of the receiver's
    entered_ns: int = field(compare=False)
    port_in: Port = field(compare=False)
    targets: list[Port] = field(compare=False)
    frame: bytes = field(compare=False)
    duplicate: bool = field(compare=False)
    departure: Departure = field(compare=False)
    pipe: Pipe = field(compare=False)


class SwitchCore:
    """Ports, the MAC table and the frames in flight."""

    def __init__(self, seed: str, send: Send, report: Report) -> None:
        self.seed = seed
        self.send = send
        self.report = report
        self.ports: dict[int, Port] = {}
        self.by_name: dict[str, Port] = {}
        self.macs: dict[bytes, Port] = {}
        self._timers: list[_Timer] = []
        self._order = 0
        self._numbers = 0

    def add_port(self, name: str) -> Port:
        port = Port(self._numbers, name, Pipe(f"{self.seed}/{name}/out"), Pipe(f"{self.seed}/{name}/in"))
        self._numbers += 1
        self.ports[port.number] = port
        self.by_name[name] = port
        return port

    def remove_port(self, port: Port) -> None:
        del self.ports[port.number]
        del self.by_name[port.name]
        for mac in [mac for mac, where in self.macs.items() if where is port]:
            del self.macs[mac]

    def impair(self, port: Port, direction: str, impairment: Impairment) -> None:
        (port.in_pipe if direction == "in" else port.out_pipe).impairment = impairment

    def next_due(self) -> int | None:
        return self._timers[0].at_ns if self._timers else None

    def receive(self, port: Port, frame: bytes, entered_ns: int) -> None:
        """A frame the host on `port` sent, stamped when it reached the switch."""
        port.sent += 1
        if port.dark:  # not even learnt from: as far as the switch can tell, it was never sent
            port.dropped_cut += 1
            return
        targets = self._targets(port, frame)
        if port.cut:
            port.dropped_cut += 1
            self._lost(entered_ns, LOST_CUT, port, targets, frame)
            return
        if port.out_pipe.clear:
            self._into_cables(entered_ns, port, targets, frame, False, entered_ns)
            return
        admitted = port.out_pipe.admit(entered_ns, len(frame))
        if isinstance(admitted, str):
            self._lost(entered_ns, admitted, port, targets, frame)
            return
        for departure in admitted:
            self._after(departure, "core", entered_ns, port, targets, frame, departure.duplicate, port.out_pipe)

    def run_due(self, now_ns: int) -> None:
        """Every stage whose time has come."""
        while self._timers and self._timers[0].at_ns <= now_ns:
            timer = heapq.heappop(self._timers)
            timer.pipe.left(timer.departure)
            if timer.stage == "core":
                left = max(timer.departure.at_ns, timer.entered_ns)
                self._into_cables(timer.entered_ns, timer.port_in, timer.targets, timer.frame, timer.duplicate, left)
            else:
                self._deliver(timer.entered_ns, timer.port_in, timer.targets[0], timer.frame, timer.duplicate)

    def _targets(self, port: Port, frame: bytes) -> list[Port]:
        source, destination = frame[6:12], frame[0:6]
        if source and not source[0] & 1:
            self.macs[source] = port
        learnt = self.macs.get(destination) if destination and not destination[0] & 1 else None
        if learnt is not None:
            return [] if learnt is port else [learnt]
        return [other for other in self.ports.values() if other is not port]

    def _lost(self, entered_ns: int, fate: str, port_in: Port, targets: list[Port], frame: bytes) -> None:
        numbers: list[int | None] = [target.number for target in targets]
        for number in numbers or [None]:
            self.report(entered_ns, None, fate, port_in.number, number, frame)

    def _after(
        self,
        departure: Departure,
        stage: str,
        entered_ns: int,
        port_in: Port,
        targets: list[Port],
        frame: bytes,
        duplicate: bool,
        pipe: Pipe,
    ) -> None:
        """Run the next stage now if its time has come, else when it does."""
        if departure.at_ns <= time.monotonic_ns():
            pipe.left(departure)
            if stage == "core":
                self._into_cables(entered_ns, port_in, targets, frame, duplicate, max(departure.at_ns, entered_ns))
            else:
                self._deliver(entered_ns, port_in, targets[0], frame, duplicate)
            return
        self._order += 1
        timer = _Timer(
            departure.at_ns, self._order, stage, entered_ns, port_in, targets, frame, duplicate, departure, pipe
        )
        heapq.heappush(self._timers, timer)

    def _into_cables(
        self, entered_ns: int, source: Port, targets: list[Port], frame: bytes, duplicate: bool, left_ns: int
    ) -> None:
        """Out of the sender's cable (at left_ns): into each receiver's."""
        if self.ports.get(source.number) is not source or source.cut:  # cut while the frame was on its cable
            source.dropped_cut += 1
            self._lost(entered_ns, LOST_CUT, source, targets, frame)
            return
        if not targets:  # flooded to no port: the host it was for is gone (crashed), or there is no other host
            source.dropped_cut += 1
            self._lost(entered_ns, LOST_CUT, source, targets, frame)
            return
        for target in targets:
            if target.in_pipe.clear:
                self._deliver(entered_ns, source, target, frame, duplicate)
                continue
            if self.ports.get(target.number) is not target or target.cut:
                target.dropped_cut += 1
                self.report(entered_ns, None, LOST_CUT, source.number, target.number, frame)
                continue
            admitted = target.in_pipe.admit(left_ns, len(frame))
            if isinstance(admitted, str):
                self.report(entered_ns, None, admitted, source.number, target.number, frame)
                continue
            for departure in admitted:
                copy = duplicate or departure.duplicate
                self._after(departure, "wire", entered_ns, source, [target], frame, copy, target.in_pipe)

    def _deliver(self, entered_ns: int, port_in: Port, target: Port, frame: bytes, duplicate: bool) -> None:
        if self.ports.get(target.number) is not target or target.cut:
            target.dropped_cut += 1
            self.report(entered_ns, None, LOST_CUT, port_in.number, target.number, frame)
            return
        # stamped as it is handed over: after the send, a switch preempted there would stamp it later
        # than the receiving host had it (its reader could have read it already)
        handed_ns = time.monotonic_ns()
        if not self.send(target, frame):
            target.dropped_send += 1
            self.report(entered_ns, None, LOST_QUEUE, port_in.number, target.number, frame)
            return
        target.delivered += 1
        self.report(entered_ns, handed_ns, DUPLICATE if duplicate else DELIVERED, port_in.number, target.number, frame)

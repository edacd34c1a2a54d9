"""The switch as sockplay sees it: an asyncio handle on the switch process.

    switch = await Switch.start(netns="1234", seed="lab seed")   # or netns=None: this namespace
    await switch.add_port("alpha", "sw-alpha")
    await switch.impair("alpha", parse_cable(["out", "delay", "100ms"]))
    await switch.subscribe(print)                                  # batches of FrameFate
    await switch.cut("alpha"); await switch.mend("alpha")
    await switch.close()

The switch process lives as long as its channel: closing the switch, or
sockplay ending in any way (SIGKILL included), ends it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playground.errors import LabError
from playground.netlab.channel import FEED, REPLY, FrameFate, MessageBuffer, command, read_records
from playground.netlab.impairments import DIRECTIONS, CableChange, Impairment

PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent.parent)
REPLY_TIMEOUT = 10.0
EXIT_TIMEOUT = 2.0
_MAIN = "from playground.netlab.switch_main import main; main()"
FeedCallback = Callable[[list[FrameFate]], None]


class SwitchError(LabError):
    """The switch could not do what was asked; the message says why."""


@dataclass(frozen=True)
class PortCounters:
    """What one cable carried: frames its host sent and was given, and what the cable did to the rest."""

    sent: int = 0
    delivered: int = 0
    dropped_cut: int = 0
    dropped_loss: int = 0
    dropped_queue: int = 0
    delayed: int = 0
    duplicated: int = 0
    feed_dropped: int = 0  # feed records the switch dropped because sockplay did not read them in time

    @property
    def dropped(self) -> int:
        return self.dropped_cut + self.dropped_loss + self.dropped_queue


@dataclass(frozen=True)
class PortState:
    """A port just plugged in: whether its cable runs (both ends up), and offloads the switch could not turn off."""

    running: bool
    offloads_on: tuple[str, ...]


class Switch:
    """sockplay's end of one switch process."""

    def __init__(self, process: subprocess.Popen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.process = process
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {0: asyncio.get_running_loop().create_future()}
        self._names: dict[int, str] = {}
        self._ports: dict[str, dict[str, Impairment]] = {}
        self._cut: set[str] = set()
        self._subscribers: list[FeedCallback] = []
        self._closed = False
        self._task = asyncio.create_task(self._read())

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    async def start(cls, netns: str | None = None, seed: str = "0") -> Switch:
        """Start a switch in the namespace `netns` names (`PID` or `PID,user`, as LabNetwork.worker_args gives)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        args = [f"--parent={os.getpid()}", f"--seed={seed}"] + ([f"--netns={netns}"] if netns else [])
        debug = os.environ.get("SOCKPLAY_DEBUG")
        try:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-S",
                    "-c",
                    f"import sys; sys.path.insert(0, {PACKAGE_ROOT!r}); {_MAIN}",
                    str(theirs.fileno()),
                    *args,
                ],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=None if debug else subprocess.DEVNULL,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
                close_fds=True,
                start_new_session=True,
            )
        except OSError as exc:
            ours.close()
            raise SwitchError(f"cannot start the lab's switch: {exc.strerror}") from None
        finally:
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        switch = cls(process, reader, writer)
        try:
            await switch._answer(0)
        except SwitchError:
            await switch.close()
            raise
        return switch

    async def add_port(self, host: str, ifname: str) -> PortState:
        """Plug `ifname` (an interface in the switch's namespace) in as host's port.

        The switch brings its end up and waits (up to a second) for the cable to run, which needs the
        host's end up too; the host's end runs at the same moment, but that is for its host to see
        (links.wait_running in the host's namespace) before the host's first frame."""
        result = await self._ask("add_port", port=host, ifname=ifname)
        self._names[int(result["number"])] = host
        self._ports[host] = {direction: Impairment() for direction in DIRECTIONS}
        return PortState(bool(result["running"]), tuple(result["offloads_on"]))

    async def remove_port(self, host: str) -> PortCounters:
        """Unplug host's port; its last counters."""
        result = await self._ask("remove_port", port=host)
        self._ports.pop(host, None)
        self._cut.discard(host)
        return PortCounters(**result)

    async def cut(self, host: str) -> None:
        """Drop every frame to and from host, silently, until mend."""
        await self._ask("cut", port=host, cut=True)
        self._cut.add(host)

    async def go_dark(self, host: str) -> None:
        """Cut host's port until it is removed, and drop what host still sends unreported: a host losing power
        sends nothing, so the frames its dying stack puts on the cable (the FINs of its killed processes) were
        never sent. Frames towards it are lost, as with a cut."""
        await self._ask("dark", port=host)
        self._cut.add(host)

    async def mend(self, host: str) -> None:
        await self._ask("cut", port=host, cut=False)
        self._cut.discard(host)

    def is_cut(self, host: str) -> bool:
        return host in self._cut

    async def impair(self, host: str, change: CableChange) -> dict[str, Impairment]:
        """Lay a `cable` line's settings over host's cable; both directions' settings after it.

        SwitchError (nothing changed) if the settings cannot be, e.g. reorder without a delay."""
        current = self._port(host)
        try:
            after = {direction: change.apply(current[direction]) for direction in change.directions}
        except ValueError as exc:
            raise SwitchError(f"cable {host}: {exc}") from None
        for direction, impairment in after.items():
            await self._ask("impair", port=host, direction=direction, impairment=impairment.to_dict())
            current[direction] = impairment
        return dict(current)

    async def clear(self, host: str, direction: str | None = None) -> None:
        directions = DIRECTIONS if direction is None else (direction,)
        await self.impair(host, CableChange(directions, {}, clear=True))

    def impairments(self, host: str) -> dict[str, Impairment]:
        """The settings of host's cable, `in` and `out`."""
        return dict(self._port(host))

    async def counters(self, host: str) -> PortCounters:
        return PortCounters(**await self._ask("counters", port=host))

    async def subscribe(self, callback: FeedCallback) -> Callable[[], None]:
        """Have `callback` called (in the event loop) with each batch of the frame feed; returns an unsubscribe."""
        self._subscribers.append(callback)
        if len(self._subscribers) == 1:
            await self._ask("feed", on=True)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)
                if not self._subscribers and not self._closed:
                    # Written now, so a subscribe that follows turns the feed on again after this.
                    self._writer.write(command({"id": next(self._ids), "op": "feed", "on": False}))

        return unsubscribe

    async def flush(self) -> None:
        """Return once subscribers have had every frame the switch has seen by now and decided on.

        A frame a cable still holds (a delay, a rate queue) comes when it leaves the cable."""
        await self._ask("flush")

    async def close(self) -> None:
        """End the switch process (closing its channel ends it) and reap it."""
        if not self._closed:
            self._closed = True
            self._writer.close()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + EXIT_TIMEOUT
            while self.process.poll() is None and loop.time() < deadline:
                await asyncio.sleep(0.01)
            self.kill()
            self._task.cancel()

    def kill(self) -> None:
        """End the switch now, without the event loop (for cleanup paths that have none)."""
        self._closed = True
        if self.process.poll() is None:
            try:
                self.process.kill()
            except ProcessLookupError:
                pass
            self.process.wait()
        if not self._writer.is_closing():
            self._writer.close()

    def _port(self, host: str) -> dict[str, Impairment]:
        try:
            return self._ports[host]
        except KeyError:
            raise SwitchError(f"no port {host!r} on the switch") from None

    async def _ask(self, op: str, **body: Any) -> Any:
        if self._closed or self._task.done():
            raise SwitchError("the lab's switch has stopped")
        number = next(self._ids)
        self._pending[number] = asyncio.get_running_loop().create_future()
        self._writer.write(command({"id": number, "op": op, **body}))
        return await self._answer(number)

    async def _answer(self, number: int) -> Any:
        try:
            answer = await asyncio.wait_for(self._pending[number], REPLY_TIMEOUT)
        except TimeoutError:
            raise SwitchError(f"the lab's switch did not answer in {REPLY_TIMEOUT:g} s") from None
        finally:
            self._pending.pop(number, None)
        if not answer.get("ok"):
            raise SwitchError(str(answer.get("error")))
        return answer.get("result")

    async def _read(self) -> None:
        buffer = MessageBuffer()
        try:
            while chunk := await self._reader.read(1 << 20):
                for kind, payload in buffer.feed(chunk):
                    self._dispatch(kind, payload)
        except (OSError, ValueError):
            pass
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_result({"ok": False, "error": "the lab's switch has stopped"})

    def _dispatch(self, kind: int, payload: bytes) -> None:
        if kind == REPLY:
            answer = json.loads(payload)
            future = self._pending.get(answer.get("id"))
            if future is not None and not future.done():
                future.set_result(answer)
        elif kind == FEED and self._subscribers:
            records = read_records(payload, self._names)
            for callback in list(self._subscribers):
                try:
                    callback(records)
                except Exception as exc:  # one subscriber's bug must not end the channel for everyone
                    asyncio.get_running_loop().call_exception_handler(
                        {"message": "a subscriber to the switch's feed failed", "exception": exc}
                    )

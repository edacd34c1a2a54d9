"""The switch process: joins the lab's namespace, opens a packet socket per port, forwards until its channel closes.

Started by controller.Switch with its end of the channel as argv[1]. It dies
with sockplay: the kernel sends it SIGKILL when the process that started it
goes (PR_SET_PDEATHSIG), and it exits at EOF on the channel in any case.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import select
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass
from typing import Any

from playground.capture import clock_offset
from playground.netlab import links
from playground.netlab.channel import COMMAND, FEED, MessageBuffer, record, reply
from playground.netlab.impairments import DIRECTIONS, Impairment
from playground.netlab.switch_core import Port, SwitchCore

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_QDISC_BYPASS = 20
PACKET_IGNORE_OUTGOING = 23
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = 35
PR_SET_PDEATHSIG = 1
PR_SET_TIMERSLACK = 29
CLONE_NEWNET, CLONE_NEWUSER = 0x40000000, 0x10000000
FRAME_ROOM = 65600  # more than any frame, so an offloaded giant shows as one, not as a cut-off frame
BATCH = 64  # frames read from one port before looking at the others
# Wake this much before a held frame is due and poll until it is: a sleeping process wakes late by about
# that much on a busy machine, and a delay is to be as asked (bench/switch_accuracy.py measures it).
WAKE_EARLY_S = 0.0003
SWITCH_NICE = -10
RUNNING_WAIT_S = 1.0  # how long add_port waits for its cable to run before answering that it does not
RUNNING_POLL_S = 0.001
FEED_BACKLOG = 32 * 1024 * 1024  # unread feed bytes beyond which records are dropped (and counted)
_libc = ctypes.CDLL(None, use_errno=True)


def join_namespaces(spec: str) -> None:
    """Enter the lab's network namespace (`PID`, or `PID,user` to enter its user namespace first)."""
    pid, _, extra = spec.partition(",")
    for kind, flag in ([("user", CLONE_NEWUSER)] if extra == "user" else []) + [("net", CLONE_NEWNET)]:
        fd = os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if _libc.setns(fd, flag) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns {kind}: {os.strerror(err)}")
        finally:
            os.close(fd)


def open_port_socket(ifname: str) -> socket.socket:
    # Protocol 0 until bound: a packet socket made with ETH_P_ALL reads every interface's frames from birth.
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.bind((ifname, ETH_P_ALL))
        sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        sock.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)  # the switch paces frames itself: no qdisc between
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, 4 * 1024 * 1024)
        index = socket.if_nametoindex(ifname)
        sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, struct.pack("iHH8s", index, PACKET_MR_PROMISC, 0, b""))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


@dataclass
class _Waiting:
    reply_id: object
    ifname: str
    deadline: float
    result: dict[str, object]


_LATER = object()  # a command answered later


class SwitchProcess:
    """The loop: frames in, timers due, commands from sockplay, replies and the feed out."""

    def __init__(self, ctl: socket.socket, seed: str) -> None:
        self.ctl = ctl
        self.core = SwitchCore(seed, self._send, self._report)
        self.inbox = MessageBuffer()
        self.outbox = bytearray()
        self.feed_on = False
        self.feed = bytearray()
        self.feed_dropped = 0
        self.offset = clock_offset()
        self.offset_at = time.monotonic()
        self.sockets: dict[socket.socket, Port] = {}
        self.waiting: list[_Waiting] = []  # add_port commands not answered until their cable runs

    def serve(self) -> None:
        self.ctl.setblocking(False)
        while True:
            due = self.core.next_due()
            timeout = None if due is None else max(0.0, (due - time.monotonic_ns()) / 1e9 - WAKE_EARLY_S)
            if self.waiting:
                self._answer_waiting()
                timeout = RUNNING_POLL_S if timeout is None else min(timeout, RUNNING_POLL_S)
            writers = [self.ctl] if self.outbox else []
            readable, writable, _ = select.select([self.ctl, *self.sockets], writers, [], timeout)
            for fd in readable:
                if fd is self.ctl:
                    if not self._read_commands():
                        return
                else:
                    self._read_port(fd)
            self.core.run_due(time.monotonic_ns())
            if self.feed:
                self._queue_feed()
            if self.outbox and (writable or not writers):
                self._write_out()

    def _read_port(self, sock: socket.socket) -> bool:
        """Read up to BATCH frames from a port; whether there may be more."""
        port = self.sockets.get(sock)
        if port is None:
            return False  # removed by a command read in the same turn of the loop
        if time.monotonic() - self.offset_at > 1.0:
            self.offset, self.offset_at = clock_offset(), time.monotonic()
        for _ in range(BATCH):
            try:
                frame, ancdata, _flags, address = sock.recvmsg(FRAME_ROOM, 64)
            except BlockingIOError:
                return False
            except OSError:
                return False  # the interface went away under us: remove_port follows
            if address[2] == PACKET_OUTGOING:
                continue
            stamp = next(
                (data for level, kind, data in ancdata if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS), None
            )
            if stamp is not None:
                sec, nsec = struct.unpack("=qq", stamp[:16])
                entered = min(sec * 1_000_000_000 + nsec - self.offset, time.monotonic_ns())
            else:
                entered = time.monotonic_ns()
            self.core.receive(port, frame, entered)
        return True

    def _flush(self) -> None:
        """Read every frame the ports hold now and report what is due, ahead of the flush's answer."""
        for sock in list(self.sockets):
            while self._read_port(sock):
                pass
        self.core.run_due(time.monotonic_ns())
        if self.feed:
            self._queue_feed()

    def _send(self, port: Port, frame: bytes) -> bool:
        if port.link is None:
            return False
        try:
            port.link.send(frame)
        except OSError:
            return False
        return True

    def _report(
        self, entered: int, delivered: int | None, fate: str, port_in: int, port_out: int | None, frame: bytes
    ) -> None:
        if not self.feed_on:
            return
        if len(self.outbox) + len(self.feed) > FEED_BACKLOG:
            self.feed_dropped += 1
            return
        self.feed += record(entered, delivered, fate, port_in, port_out, frame)

    def _queue_feed(self) -> None:
        self.outbox += struct.pack("!IB", len(self.feed), FEED) + self.feed
        self.feed = bytearray()

    def _write_out(self) -> None:
        try:
            sent = self.ctl.send(self.outbox)
        except BlockingIOError:
            return
        except OSError:
            sent = len(self.outbox)  # sockplay is gone; EOF on the next read ends the loop
        del self.outbox[:sent]

    def _read_commands(self) -> bool:
        try:
            chunk = self.ctl.recv(65536)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not chunk:
            return False
        if self.feed:
            self._queue_feed()  # what the switch saw before a command is reported before its answer
        try:
            messages = self.inbox.feed(chunk)
        except ValueError:
            return False  # not sockplay at the other end
        for kind, payload in messages:
            if kind != COMMAND:
                continue
            body: Any = None
            try:
                body = json.loads(payload)
                result = self._command(body)
                if result is _LATER:
                    continue
                answer = {"id": body.get("id"), "ok": True, "result": result}
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                answer = {"id": body.get("id") if isinstance(body, dict) else None, "ok": False, "error": _why(exc)}
            self.outbox += reply(answer)
        self._write_out()
        return True

    def _command(self, body: dict[str, Any]) -> object:
        op = body["op"]
        if op == "add_port":
            return self._add_port(str(body["port"]), str(body["ifname"]), body.get("id"))
        if op == "feed":
            self.feed_on = bool(body["on"])
            return None
        if op == "flush":
            self._flush()
            return None
        port = self.core.by_name.get(str(body["port"]))
        if port is None:
            raise KeyError(f"no port {body['port']!r} on the switch")
        if op == "remove_port":
            counters = port.counters()
            self.core.remove_port(port)
            if port.link is not None:
                del self.sockets[port.link]
                port.link.close()
            return counters
        if op == "cut":
            port.cut = bool(body["cut"])
            return None
        if op == "dark":  # cut for good, and what the host still sends goes unreported: it is losing power
            port.cut = port.dark = True
            return None
        if op == "impair":
            direction = str(body["direction"])
            if direction not in DIRECTIONS:
                raise ValueError(f"no direction {direction!r}: in or out")
            self.core.impair(port, direction, Impairment.from_dict(body["impairment"]))
            return None
        if op == "counters":
            return {**port.counters(), "feed_dropped": self.feed_dropped}
        raise ValueError(f"no command {op!r}")

    def _add_port(self, name: str, ifname: str, reply_id: object) -> object:
        if name in self.core.by_name:
            raise ValueError(f"{name} already has a port on the switch")
        links.quiet_ipv6(ifname)  # before it is up, so it never sends a router solicitation
        try:
            still_on = links.disable_offloads(ifname)
            links.bring_up(ifname)
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                raise ValueError(f"no interface {ifname!r} in the lab's network") from None
            raise
        sock = open_port_socket(ifname)
        port = self.core.add_port(name)
        port.link = sock
        self.sockets[sock] = port
        result = {"number": port.number, "offloads_on": still_on, "running": links.running(ifname)}
        if not result["running"]:
            # Answer once the cable runs (or a second on): meanwhile the other ports keep forwarding.
            self.waiting.append(_Waiting(reply_id, ifname, time.monotonic() + RUNNING_WAIT_S, result))
            return _LATER
        return result

    def _answer_waiting(self) -> None:
        """Answer each add_port whose cable now runs, or has waited long enough."""
        now = time.monotonic()
        for waiting in list(self.waiting):
            try:
                running = links.running(waiting.ifname)
            except OSError:
                running = False  # gone already: the answer says it does not run
            if running or now > waiting.deadline:
                waiting.result["running"] = running
                self.outbox += reply({"id": waiting.reply_id, "ok": True, "result": waiting.result})
                self.waiting.remove(waiting)


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc)


def main() -> None:
    ctl = socket.socket(fileno=int(sys.argv[1]))
    options: dict[str, str] = {}
    for arg in sys.argv[2:]:
        name, _, value = arg.removeprefix("--").partition("=")
        options[name] = value
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != int(options.get("parent", os.getppid())):
        sys.exit(0)  # sockplay went before the line above took effect
    _libc.prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)  # wake for a delayed frame on time, not up to 50 µs late
    try:
        # The kernel forwards in softirq, ahead of every process: where allowed (root), the switch goes ahead
        # of the lab's processes too, so a busy machine delays frames less.
        os.setpriority(os.PRIO_PROCESS, 0, SWITCH_NICE)
    except OSError:
        pass
    try:
        if options.get("netns"):
            join_namespaces(options["netns"])
    except OSError as exc:
        ctl.sendall(reply({"id": 0, "ok": False, "error": f"cannot join the lab's network: {_why(exc)}"}))
        sys.exit(1)
    ctl.sendall(reply({"id": 0, "ok": True, "result": {"pid": os.getpid()}}))
    SwitchProcess(ctl, options.get("seed", "0")).serve()
    os._exit(0)  # sockplay is gone or done: nothing to tidy that the kernel does not


if __name__ == "__main__":
    main()

"""The remote end of a remote host: runs on the far machine (Python 3.8 or newer), from memory.

sockplay sends this module, playground.protocol and playground/worker/ over the
ssh connection (see payload.py); the bootstrap imports them from that message
and calls main(). Frames on stdin and stdout (protocol.encode) carry, tagged
with a channel number, the bytes of each lab process's control channel, so a
lab process here is the very same worker as on sockplay's machine: the agent
forks it (a fresh session, descriptors 0-2 on /dev/null, nothing else open but
its channel) and relays bytes, and the descriptors a fork sends with its result.

The agent watches stdin: when it ends (sockplay quit or was killed, or the
connection dropped) it kills every lab process and exits. A lab process whose
channel closes (the agent died) exits by itself, as a local one does.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import selectors
import signal
import socket
import struct
import sys
import time

from playground import protocol

CHUNK = 256 * 1024
_PR_SET_CHILD_SUBREAPER = 36
# How long a process whose channel closed may take to become a zombie (or vanish) before it is given up on.
EXIT_WAIT = 2.0


class Channel:
    """One lab process's control channel, as the agent relays it."""

    def __init__(self, number: int, sock: socket.socket, pid: int | None, parent_pid: int | None) -> None:
        self.number = number
        self.sock = sock
        self.pid = pid  # known at spawn; for a fork's child, from its hello
        self.parent_pid = parent_pid  # a fork's child: its parent lab process (checked against the kernel)
        self.first = True


class Agent:
    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.channels: dict[int, Channel] = {}
        self.spawned: set[int] = set()  # the lab processes the agent forked itself
        self.reaped: dict[int, int] = {}  # pid -> wait status, of processes the agent reaped
        self.inbox = protocol.FrameBuffer()
        self.next_channel = 1 << 20  # numbers for forks' channels; sockplay numbers its spawns below this

    # Talking to sockplay.

    def send(self, message: tuple) -> None:
        frame = protocol.encode(message)
        view = memoryview(frame)
        while view:
            try:
                written = os.write(1, view)
            except InterruptedError:
                continue
            view = view[written:]

    def hello(self) -> None:
        u = platform.uname()
        self.send(
            (
                "hello",
                {
                    "python": platform.python_version(),
                    "kernel": f"{u.system} {u.release} {u.machine}",
                    "node": u.node,
                    "ssh": os.environ.get("SSH_CONNECTION", ""),
                    "uid": os.geteuid(),
                    "pid": os.getpid(),
                },
            )
        )

    def serve(self) -> None:
        try:
            ctypes.CDLL(None).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans of lab processes come to us
        except (OSError, AttributeError):
            pass
        os.set_blocking(0, False)
        self.selector.register(0, selectors.EVENT_READ, None)
        self.hello()
        while True:
            for key, _ in self.selector.select(0.5):
                if key.data is None:
                    if not self.read_stdin():
                        return
                else:
                    self.read_channel(key.data)
            self.reap_orphans()

    def read_stdin(self) -> bool:
        try:
            data = os.read(0, CHUNK)
        except (BlockingIOError, InterruptedError):
            return True
        if not data:
            return False
        for message in self.inbox.feed(data):
            if not self.handle(message):
                return False
        return True

    def handle(self, message: tuple) -> bool:
        kind = message[0]
        if kind == "data":
            channel = self.channels.get(message[1])
            if channel is not None:
                try:
                    channel.sock.sendall(message[2])
                except OSError:
                    pass  # it has ended: its channel's end is reported when read
        elif kind == "spawn":
            self.spawn(message[1])
        elif kind == "signal":
            self.signal(message[1], message[2])
        elif kind == "ping":
            self.send(("pong", message[1], time.time_ns()))
        elif kind == "quit":
            return False
        return True

    # Lab processes.

    def spawn(self, number: int) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            pid = os.fork()
        except OSError as exc:
            ours.close()
            theirs.close()
            self.send(("failed", number, f"fork: {exc.strerror}"))
            return
        if pid == 0:
            self.become_worker(theirs.detach())
        theirs.close()
        self.spawned.add(pid)
        self.add_channel(Channel(number, ours, pid, None))
        self.send(("spawned", number, pid))

    def become_worker(self, ctl: int) -> None:
        """In the forked child: a fresh lab process, as sockplay would start it locally."""
        try:
            os.setsid()
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            keep = {0, 1, 2, ctl}
            for name in os.listdir("/proc/self/fd"):
                fd = int(name)
                if fd not in keep:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            signal.set_wakeup_fd(-1)
            sys.argv = ["sockplay-worker", str(ctl)]
            from playground.worker.main import main

            main()
        finally:
            os._exit(0)

    def add_channel(self, channel: Channel) -> None:
        channel.sock.setblocking(False)
        self.channels[channel.number] = channel
        self.selector.register(channel.sock, selectors.EVENT_READ, channel)

    def read_channel(self, channel: Channel) -> None:
        try:
            data, ancdata, _flags, _ = channel.sock.recvmsg(CHUNK, socket.CMSG_SPACE(16))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, ancdata = b"", []
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                usable = len(payload) - len(payload) % 4
                for i in range(0, usable, 4):
                    fd = int.from_bytes(payload[i : i + 4], sys.byteorder)
                    self.next_channel += 1
                    child = Channel(self.next_channel, socket.socket(fileno=fd), None, channel.pid)
                    self.add_channel(child)
                    self.send(("child", channel.number, child.number))
        if not data:
            self.ended(channel)
            return
        if channel.first and channel.pid is None:
            self.check_hello(channel, data)
        channel.first = False
        self.send(("data", channel.number, data))

    def check_hello(self, channel: Channel, data: bytes) -> None:
        """A fork's child says its pid in its first frame: believed only if the kernel says it is that child."""
        try:
            (size,) = struct.unpack_from(">I", data)
            _, kind, payload = protocol.FrameBuffer().feed(data[: 4 + size])[0]
            pid = payload["pid"]
        except Exception:
            return
        if kind == protocol.HELLO and isinstance(pid, int) and parent_of(pid) == channel.parent_pid:
            channel.pid = pid

    def signal(self, number: int, signum: int) -> None:
        channel = self.channels.get(number)
        if channel is None or channel.pid is None:
            return
        try:
            os.kill(channel.pid, signum)
        except OSError:
            pass

    def ended(self, channel: Channel) -> None:
        """A channel closed: its process is ending. Say how it ended (a zombie keeps its status for its parent)."""
        self.selector.unregister(channel.sock)
        channel.sock.close()
        del self.channels[channel.number]
        status, zombie = None, False
        pid = channel.pid
        if pid in self.spawned:
            self.spawned.discard(pid)
            status = self.wait_for(pid)
        elif pid is not None:
            status, zombie = zombie_status(pid)
            if status is None:
                status = self.reaped.pop(pid, None)
        self.send(("ended", channel.number, status, zombie))

    def wait_for(self, pid: int) -> int | None:
        if pid in self.reaped:
            return self.reaped.pop(pid)
        try:
            return os.waitpid(pid, 0)[1]
        except ChildProcessError:
            return self.reaped.pop(pid, None)

    def reap_orphans(self) -> None:
        """Reap what came to us: lab processes whose parent ended (the agent is their subreaper)."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.reaped[pid] = status
            if len(self.reaped) > 4096:  # statuses nobody asked for: keep the newest
                self.reaped.pop(next(iter(self.reaped)))

    def kill_all(self) -> None:
        for pid in list(self.spawned):
            try:
                os.killpg(pid, signal.SIGKILL)  # the process and the forks in its session
            except OSError:
                pass
        for channel in self.channels.values():
            if channel.pid is not None:
                try:
                    os.kill(channel.pid, signal.SIGKILL)
                except OSError:
                    pass


def parent_of(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def zombie_status(pid: int) -> tuple[int | None, bool]:
    """(wait status, True) once the process is a zombie; (None, False) if it is gone (reaped) or never got there."""
    deadline = time.monotonic() + EXIT_WAIT
    while time.monotonic() < deadline:
        fields = _stat(pid)
        if not fields:
            return None, False
        if fields[0] == "Z":
            return int(fields[-1]), True
        time.sleep(0.001)
    return None, False


def _stat(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return []
    return raw[raw.rfind(")") + 2 :].split()


def main() -> None:
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    agent = Agent()
    try:
        agent.serve()
    except (OSError, EOFError, ValueError) as exc:  # sockplay's side is gone, or sent what no sockplay sends
        if not (isinstance(exc, OSError) and exc.errno in (errno.EPIPE, errno.EBADF)):
            sys.stderr.write(f"sockplay agent: {exc}\n")
    finally:
        agent.kill_all()
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and agent.spawned:
            for pid in list(agent.spawned):
                try:
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:
                        agent.spawned.discard(pid)
                except ChildProcessError:
                    agent.spawned.discard(pid)
            time.sleep(0.01)

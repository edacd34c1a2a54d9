"""The lab's own network: a private network namespace with its own loopback.

A small holder process makes the namespace (as root, or as an ordinary user
through an unprivileged user namespace, as `unshare -Urn` does), brings its
loopback up, opens the packet-capture and sock_diag sockets inside it, hands
those to sockplay, and then waits. Lab processes join its namespaces when
they start. When sockplay goes, the holder's channel closes and it exits.
Where no namespace can be made, the lab runs on the host's loopback and says
why once.
"""

from __future__ import annotations

import array
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from playground.recording import SOCKET_SYSCTLS

if TYPE_CHECKING:
    from playground.netlab.hosts import LabHosts

HOST = "host loopback"
SYSCTLS = tuple(name.replace(".", "/") for name in SOCKET_SYSCTLS)

_HOLDER = r"""
import ctypes, os, socket, struct, fcntl, sys, array
libc = ctypes.CDLL("libc.so.6", use_errno=True)
CLONE_NEWNET, CLONE_NEWUSER = 0x40000000, 0x10000000
ctl = socket.socket(fileno=int(sys.argv[2]))
def fail(what):
    ctl.sendall(("error " + what).encode())
    sys.exit(1)
user = sys.argv[1] == "user"
uid, gid = os.getuid(), os.getgid()
if libc.unshare(CLONE_NEWNET | (CLONE_NEWUSER if user else 0)) != 0:
    fail("unshare: " + os.strerror(ctypes.get_errno()))
if user:
    try:
        with open("/proc/self/setgroups", "w") as f: f.write("deny")
        with open("/proc/self/uid_map", "w") as f: f.write(f"0 {uid} 1")
        with open("/proc/self/gid_map", "w") as f: f.write(f"0 {gid} 1")
    except OSError as exc:
        fail("user namespace maps: " + exc.strerror)
probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack_from("H", fcntl.ioctl(probe, 0x8913, struct.pack("16sH14x", b"lo", 0)), 16)[0]
fcntl.ioctl(probe, 0x8914, struct.pack("16sH14x", b"lo", flags | 0x1 | 0x40))
probe.close()
fds, notes = [], []
try:
    pkt = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    pkt.bind(("lo", 0))
    fds.append(pkt.fileno())
except OSError as exc:
    notes.append("capture: " + (exc.strerror or str(exc)))
    fds.append(-1)
try:
    diag = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 4)
    fds.append(diag.fileno())
except OSError as exc:
    notes.append("sock_diag: " + (exc.strerror or str(exc)))
    fds.append(-1)
sysctls = []
for name in sys.argv[3:]:
    try:
        with open("/proc/sys/" + name) as f: sysctls.append(name.replace("/", ".") + "=" + " ".join(f.read().split()))
    except OSError:
        pass
message = ("ok " + "|".join(notes) + "\n" + "\n".join(sysctls)).encode()
real = [fd for fd in fds if fd >= 0]
ctl.sendmsg([struct.pack("ii", *fds) + message], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", real))])
for fd in real:
    os.close(fd)
while ctl.recv(64):
    pass
"""


@dataclass
class LabNetwork:
    """Where the lab's processes live, and the sockets that look into it."""

    kind: str = HOST  # "private namespace (root)", "private namespace (user namespace)" or HOST
    holder_pid: int | None = None
    user_namespace: bool = False
    packet_socket: socket.socket | None = None
    diag_socket: socket.socket | None = None
    reason: str | None = None  # why there is no namespace, or what inside it is missing
    sysctls: dict[str, str] = field(default_factory=dict)
    _channel: socket.socket | None = None
    _holder: subprocess.Popen | None = None
    hosts: LabHosts | None = None  # the network lab's hosts (each a namespace beside this one), from the first `host`

    @property
    def private(self) -> bool:
        return self.holder_pid is not None

    def worker_args(self) -> list[str]:
        """Arguments telling a new lab process which namespaces to join."""
        if self.holder_pid is None:
            return []
        return [f"--netns={self.holder_pid}" + (",user" if self.user_namespace else "")]

    def close(self) -> None:
        for sock in (self.packet_socket, self.diag_socket, self._channel):
            if sock is not None:
                sock.close()
        self.packet_socket = self.diag_socket = self._channel = None
        if self._holder is not None:
            try:
                self._holder.kill()
            except ProcessLookupError:
                pass
            self._holder.wait()
            self._holder = None


def read_host_sysctls() -> dict[str, str]:
    out = {}
    for name in SYSCTLS:
        try:
            with open(f"/proc/sys/{name}") as f:
                out[name.replace("/", ".")] = " ".join(f.read().split())
        except OSError:
            pass
    return out


def make_network(host_network: bool = False) -> LabNetwork:
    """A private namespace if the machine allows one, else the host's loopback (with the reason)."""
    if host_network:
        return LabNetwork(reason="--host-network was asked for", sysctls=read_host_sysctls())
    errors = []
    modes = ["root", "user"] if os.geteuid() == 0 else ["user"]
    for mode in modes:
        network, error = _start_holder(mode)
        if network is not None:
            return network
        errors.append(f"{mode}: {error}")
    return LabNetwork(
        reason="no network namespace could be made (" + "; ".join(errors) + ")", sysctls=read_host_sysctls()
    )


def _start_holder(mode: str) -> tuple[LabNetwork | None, str]:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        holder = subprocess.Popen(
            [sys.executable, "-S", "-c", _HOLDER, mode, str(theirs.fileno()), *SYSCTLS],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        theirs.close()
    ours.settimeout(10)
    try:
        data, ancdata, _, _ = ours.recvmsg(65536, socket.CMSG_SPACE(8))
    except OSError as exc:
        data, ancdata = f"error {exc}".encode(), []
    ours.settimeout(None)
    fds = array.array("i")
    for level, message_type, payload in ancdata:
        if level == socket.SOL_SOCKET and message_type == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    if not data.startswith(b"ok") and not data[8:].startswith(b"ok"):
        for fd in fds:
            os.close(fd)
        ours.close()
        holder.kill()
        holder.wait()
        text = data.decode(errors="replace")
        return None, text.removeprefix("error ").strip() or "the namespace holder exited"
    slots = array.array("i", data[:8])
    text = data[8:].decode(errors="replace")
    first, _, rest = text.partition("\n")
    received = list(fds)
    sockets: list[socket.socket | None] = []
    for slot in slots:
        sockets.append(socket.socket(fileno=received.pop(0)) if slot >= 0 and received else None)
    notes = first.removeprefix("ok").strip()
    sysctls = dict(line.split("=", 1) for line in rest.splitlines() if "=" in line)
    kind = "private namespace (root)" if mode == "root" else "private namespace (user namespace)"
    return LabNetwork(
        kind=kind,
        holder_pid=holder.pid,
        user_namespace=mode == "user",
        packet_socket=sockets[0],
        diag_socket=sockets[1],
        reason=notes or None,
        sysctls=sysctls,
        _channel=ours,
        _holder=holder,
    ), ""

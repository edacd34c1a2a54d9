"""Inspection: what the kernel says of the lab's sockets (getsockopt snapshots from each
lab process, sock_diag dumps of the lab's network)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from playground import lab_channel, protocol
from playground.constants import TCP_STATES
from playground.lab_process import CallHandle
from playground.outside.sockets import program_snapshot
from playground.sockdiag import KernelSocket, dump_tcp, open_diag_socket
from playground.socket_table import Shapes, SocketTable

if TYPE_CHECKING:
    from playground.lab import Lab

SNAPSHOT_TIMEOUT = 2.0


class Followed:
    """One process's sockets as the periodic inspection last saw them (what changed is merged in).

    They are kept in columns (socket_table.SocketTable): with 10,000 connections, a dict a
    socket cost 900 bytes each. `listed` is the same table while nothing changes: the view
    reuses what it built.
    """

    def __init__(self, pid: int, shapes: Shapes | None = None) -> None:
        self.pid = pid
        self.shapes = shapes or Shapes()
        self.listed = SocketTable(self.shapes)
        self.read = 0  # sockets the process read with getsockopt at the last inspection

    def merge(self, payload: dict) -> None:
        changed = payload["sockets"]
        gone = payload.get("gone") or []
        if payload.get("full"):
            fresh = SocketTable.of(self.shapes, changed)
            if not fresh.same(self.listed):
                self.listed = fresh
        elif changed or gone:
            self.listed = self.listed.changed(changed, gone)
        self.read = int(payload.get("read") or 0)


class Inspector:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self._host_diag: socket.socket | None = None
        self._dump_lock = threading.Lock()
        self.followed: dict[str, Followed] = {}
        self.shapes = Shapes()  # what sockets have alike, shared by every process's table

    def close(self) -> None:
        if self._host_diag is not None:
            self._host_diag.close()

    async def snapshot(self, name: str | None = None) -> dict[str, list[dict]]:
        """The kernel's view of every live process's sockets (or one process's): each socket read now."""
        out = self._programs(name)
        for proc, payload in await self._ask("inspect", name):
            out[proc.name] = payload["sockets"]
        return out

    def _programs(self, name: str | None) -> dict[str, list[dict]]:
        """Traced programs' sockets: the kernel's view, read here (a program has no channel to ask)."""
        lab = self.lab
        procs = [lab.process(name)] if name else list(lab.processes.values())
        outside = [p for p in procs if p.outside and p.alive and p.pid and p.remote is None]
        return {proc.name: program_snapshot(proc, self.dump_all) for proc in outside}

    async def follow(self) -> dict[str, Sequence[dict]]:
        """The kernel's view of every live process's sockets, as the periodic inspection keeps it.

        Each process reads again only the sockets that may have changed (worker.snapshot_delta)
        and sends those that did: an idle socket costs nothing. A process's list is the same
        object as last time while nothing in it changed.
        """
        lab = self.lab
        live = {proc.name: proc for proc in lab.processes.values() if proc.alive}
        for name in [n for n, f in self.followed.items() if n not in live or live[n].pid != f.pid]:
            del self.followed[name]
        out: dict[str, Sequence[dict]] = dict(self._programs(None))
        for proc, payload in await self._ask("inspect_delta", None, lambda p: {"full": p.name not in self.followed}):
            followed = self.followed.get(proc.name)
            if followed is None:
                followed = self.followed[proc.name] = Followed(proc.pid, self.shapes)
            if not isinstance(payload.get("gone", []), list) or not all(isinstance(fd, int) for fd in payload["gone"]):
                lab.lifecycle.misbehaved(proc, "a socket snapshot of the wrong shape")
                continue
            followed.merge(payload)
            out[proc.name] = followed.listed
        return out

    async def _ask(self, op: str, name: str | None, args=None) -> list[tuple]:
        """Send `op` to every live process (or one), then (process, payload) for each well-formed answer."""
        lab = self.lab
        procs = [lab.process(name)] if name else [p for p in lab.processes.values() if p.alive]
        waits = []
        loop = asyncio.get_running_loop()
        for proc in procs:
            if not proc.alive or proc.channel is None:
                continue
            handle = CallHandle(lab.next_id(), proc, None, "inspect", loop.create_future(), 0)
            proc.inflight[handle.call_id] = handle
            try:
                lab_channel.send(loop, proc, protocol.encode((handle.call_id, op, args(proc) if args else None)))
            except OSError:
                proc.inflight.pop(handle.call_id, None)
                continue
            waits.append((proc, handle))
        answers = []
        for proc, handle in waits:
            try:
                payload = await asyncio.wait_for(handle.future, SNAPSHOT_TIMEOUT)
            except (TimeoutError, asyncio.CancelledError):
                continue
            sockets = payload.get("sockets") if isinstance(payload, dict) else None
            if isinstance(sockets, list) and all(_is_snapshot(s) for s in sockets):
                answers.append((proc, payload))
            elif sockets is not None:
                lab.lifecycle.misbehaved(proc, "a socket snapshot of the wrong shape")
        return answers

    def kernel_sockets(self, skip_idle: bool = False) -> list[tuple[str | None, str | None, KernelSocket]]:
        """The kernel's TCP sockets in the lab's network, each with the lab socket it was (if known).

        Cheap (one netlink dump); on the host's network only the lab's own connections are kept.
        `skip_idle`: not those with a descriptor, no timer and no retransmission (sockdiag.dump_tcp).
        """
        return self._labelled(self._dump(self._diag_sockets(), skip_idle))

    async def kernel_sockets_aside(self, skip_idle: bool = False) -> list[tuple[str | None, str | None, KernelSocket]]:
        """As kernel_sockets, the netlink dump taken in a thread: with 20,000 sockets it takes
        50 ms and more, which the event loop (a key press) does not wait for."""
        found = await asyncio.to_thread(self._dump, self._diag_sockets(), skip_idle)
        return self._labelled(found)

    def dump_all(self) -> list[KernelSocket]:
        """Every TCP socket the kernel lists in the lab's network (and each host's), the lab's or not."""
        return self._dump(self._diag_sockets(), False)

    def _diag_sockets(self) -> list[socket.socket]:
        network = self.lab.network
        diag = network.diag_socket
        if diag is None:
            if self._host_diag is None:
                try:
                    self._host_diag = open_diag_socket()
                except OSError:
                    return []
            diag = self._host_diag
        return [diag, *(network.hosts.diag_sockets() if network.hosts is not None else ())]  # each host: a stack

    def _dump(self, diags: list[socket.socket], skip_idle: bool) -> list[KernelSocket]:
        """Every diag socket's dump (one dump at a time on them: a reply is read whole before the next request)."""
        found: list[KernelSocket] = []
        with self._dump_lock:
            try:
                for diag in diags:
                    found += dump_tcp(diag, skip_idle)
            except OSError:
                return []
        return found

    def _labelled(self, found: list[KernelSocket]) -> list[tuple[str | None, str | None, KernelSocket]]:
        private = self.lab.network.private
        out: list[tuple[str | None, str | None, KernelSocket]] = []
        for sock in found:
            owner = self.lab.labels.label_for(sock.local, sock.peer)
            if owner is None and not private:
                continue
            out.append((owner[0] if owner else None, owner[1] if owner else None, sock))
        return out

    async def socket_state(self, process: str, var: str) -> str:
        """The kernel's TCP state of a named socket: from its descriptor while it is open
        (LISTEN, ESTABLISHED, CLOSE-WAIT, ...), from sock_diag once it is not (FIN-WAIT-2,
        TIME-WAIT, ...), CLOSED when the kernel has no such socket any more."""
        proc = self.lab.process(process)
        fd, inode = proc.names.get(var), proc.inodes.get(var)
        if proc.alive and fd is not None:
            snapshot = await self.snapshot(process)
            for sock in snapshot.get(process, []):
                if sock["fd"] == fd and sock.get("socket") and (inode is None or sock.get("ino") == inode):
                    if sock.get("state") is None:
                        return "CLOSED"  # UDP has no TCP state
                    state = TCP_STATES.get(sock["state"], str(sock["state"]))
                    if state != "CLOSED":
                        return state
                    break  # closed under its descriptor: its connection may wait in TIME-WAIT
        label = f"{process}.{var}"
        for _, name, kernel_sock in self.kernel_sockets():
            if name == label:
                return kernel_sock.state
        return "CLOSED"


def _is_snapshot(sock: object) -> bool:
    fd = sock.get("fd") if isinstance(sock, dict) else None
    return type(fd) is int and -(1 << 31) <= fd < 1 << 31  # (a descriptor is a C int)

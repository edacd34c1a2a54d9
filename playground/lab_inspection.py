"""Inspection: what the kernel says of the lab's sockets (getsockopt snapshots from each
lab process, sock_diag dumps of the lab's network)."""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING

from playground import lab_channel, protocol
from playground.constants import TCP_STATES
from playground.lab_process import CallHandle
from playground.outside.sockets import program_snapshot
from playground.sockdiag import KernelSocket, dump_tcp, open_diag_socket

if TYPE_CHECKING:
    from playground.lab import Lab

SNAPSHOT_TIMEOUT = 2.0


class Inspector:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self._host_diag: socket.socket | None = None

    def close(self) -> None:
        if self._host_diag is not None:
            self._host_diag.close()

    async def snapshot(self, name: str | None = None) -> dict[str, list[dict]]:
        """The kernel's view of every live process's sockets (or one process's)."""
        lab = self.lab
        procs = [lab.process(name)] if name else [p for p in lab.processes.values() if p.alive]
        out: dict[str, list[dict]] = {}
        waits = []
        loop = asyncio.get_running_loop()
        outside = [p for p in procs if p.outside and p.alive and p.pid and p.remote is None]
        for proc in outside:  # a traced program: the kernel's view of its sockets, read here (it has no channel)
            out[proc.name] = program_snapshot(proc, self.dump_all)
        for proc in procs:
            if not proc.alive or proc.channel is None:
                continue
            handle = CallHandle(lab.next_id(), proc, None, "inspect", loop.create_future(), 0)
            proc.inflight[handle.call_id] = handle
            try:
                lab_channel.send(loop, proc, protocol.encode((handle.call_id, "inspect", None)))
            except OSError:
                proc.inflight.pop(handle.call_id, None)
                continue
            waits.append((proc, handle))
        for proc, handle in waits:
            try:
                payload = await asyncio.wait_for(handle.future, SNAPSHOT_TIMEOUT)
            except (TimeoutError, asyncio.CancelledError):
                continue
            sockets = payload.get("sockets") if isinstance(payload, dict) else None
            if isinstance(sockets, list) and all(_is_snapshot(s) for s in sockets):
                out[proc.name] = sockets
            elif sockets is not None:
                lab.lifecycle.misbehaved(proc, "a socket snapshot of the wrong shape")
        return out

    def dump_all(self) -> list[KernelSocket]:
        """Every TCP socket the kernel lists in the lab's network (and each host's), the lab's or not."""
        network = self.lab.network
        diag = network.diag_socket
        if diag is None:
            if self._host_diag is None:
                try:
                    self._host_diag = open_diag_socket()
                except OSError:
                    return []
            diag = self._host_diag
        try:
            found = dump_tcp(diag)
            for host_diag in network.hosts.diag_sockets() if network.hosts is not None else ():
                found += dump_tcp(host_diag)  # each host is a network stack of its own
        except OSError:
            return []
        return found

    def kernel_sockets(self) -> list[tuple[str | None, str | None, KernelSocket]]:
        """The kernel's TCP sockets in the lab's network, each with the lab socket it was (if known).

        Cheap (one netlink dump); on the host's network only the lab's own connections are kept.
        """
        network = self.lab.network
        found = self.dump_all()
        out: list[tuple[str | None, str | None, KernelSocket]] = []
        for sock in found:
            owner = self.lab.labels.label_for(sock.local, sock.peer)
            if owner is None and not network.private:
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
    return isinstance(sock, dict) and isinstance(sock.get("fd"), int)

"""Capture labelling: the lab's packets, each end named by the socket it belongs to (`proc.var`)."""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from collections.abc import Callable
from typing import Protocol

from playground.capture import Capture, Packet, PcapWriter
from playground.compact import Owners, PortOwners, PortSet, Strings, endpoint_key, endpoint_of
from playground.errors import LabError
from playground.lab_process import Process
from playground.netns import LabNetwork
from playground.packet_log import PacketChunk, PacketLog, StoredPacket
from playground.script.model import Address, AddressArg, NameArg, RefArg, Step

Endpoint = tuple[str, int]
HOLD_NS = 500_000_000  # on the host's loopback, how long a packet waits to be known as the lab's


class Flushable(Protocol):
    def flush(self) -> None: ...


class PacketLabels:
    """Captures the lab's network and names the sockets at both ends of each packet.

    `report` receives each batch of packets, labelled, on the event loop.
    """

    def __init__(self, processes: dict[str, Process], report: Callable[[list[StoredPacket]], None]) -> None:
        self.processes = processes
        self.report = report
        # The sockets' names, as numbers the packets' columns and `owners` share.
        self.names = Strings()
        # (local, peer) of each connection the lab made -> (process, "proc.var")
        self.owners = Owners(self.names)
        self.capture: Capture | None = None
        self.capture_reason: str | None = None
        self.packets = PacketLog(200_000, self.names)
        self.lab_ports = PortSet()
        self._held: list[Packet] = []
        self._flush_waiters: list[asyncio.Future] = []
        self._keep: Callable[[Packet], bool] | None = None
        self._pcap: PcapWriter | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # port -> (process, var) that have had an address with that port: where endpoint_label looks
        # (a scan of every process's addresses cost O(sockets) a packet, with 10,000 connections held).
        self._by_port = PortOwners(self.names, self.owners.processes)
        # With hosts, the switch's frames too (a SwitchCapture: on the loop, not a thread); a flush waits for both.
        self.switch_feed: Flushable | None = None
        # The address a connect reaches, from the one it names (with hosts, `alpha:7000` is alpha's address).
        self.reached: Callable[[Process | None, Address], Address] = lambda owner, address: address
        self._switch_waiters: list[asyncio.Future] = []

    def note_address(self, process: str, var: str, port: int) -> None:
        """A socket's address was learned (proc.addresses[var]): packets to or from that port may be its."""
        self._by_port.add(port, process, var)

    def start(self, loop: asyncio.AbstractEventLoop, network: LabNetwork, pcap: str | None) -> None:
        self._loop = loop
        sock = network.packet_socket
        keep = None
        if sock is None and not network.private:
            try:  # on the host's loopback: capture there, keeping only the lab's own traffic
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
                sock.bind(("lo", 0))
                keep = self._is_lab_packet
            except OSError as exc:
                self.capture_reason = f"packet capture needs CAP_NET_RAW on the host's network ({exc.strerror})"
                return
        if sock is None:
            self.capture_reason = network.reason or "packet capture is not available"
            return
        try:
            self._pcap = PcapWriter(pcap) if pcap else None
        except OSError as exc:  # checked by the command already, but the path may have changed since
            raise LabError(str(exc) if exc.errno == errno.EINVAL else f"cannot write {pcap}: {exc.strerror}") from None
        self._keep = keep
        self.capture = Capture(sock, self._packets_from_thread, self._drained_from_thread)
        self.capture.start()

    def stop(self) -> None:
        """Stop capturing: blocks until the capture thread has read what was queued and ended."""
        if self.capture is not None:
            self.capture.stop()

    def close_pcap(self) -> None:
        """Close the pcap file, in the event loop once the capture's last batch has been written to it."""
        if self._pcap is not None:
            self._pcap.close()
            self._pcap = None

    def _is_lab_packet(self, packet: Packet) -> bool:
        ports = self.lab_ports
        return (
            packet.src[1] in ports
            or packet.dst[1] in ports
            or (
                packet.icmp_about is not None and (packet.icmp_about[0][1] in ports or packet.icmp_about[1][1] in ports)
            )
        )

    def _packets_from_thread(self, packets: list[Packet]) -> None:
        self._call_soon(self.on_packets, packets)

    def _drained_from_thread(self) -> None:
        self._call_soon(self._on_drained)

    def _call_soon(self, callback: Callable, *args: object) -> None:
        if self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(callback, *args)
            except RuntimeError:
                pass

    def _on_drained(self) -> None:
        waiters, self._flush_waiters = self._flush_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def flush(self, timeout: float) -> bool:
        if self.capture is None or self._loop is None:
            return False
        waiter = self._loop.create_future()
        self._flush_waiters.append(waiter)
        self.capture.flush()
        waiters = [waiter]
        if self.switch_feed is not None:
            waiters.append(self._loop.create_future())
            self._switch_waiters.append(waiters[-1])
            self.switch_feed.flush()
        try:
            await asyncio.wait_for(asyncio.gather(*waiters), timeout)
        except TimeoutError:
            return False
        return True

    def switch_drained(self) -> None:
        """The switch's feed has delivered every frame it had decided on at the last flush."""
        waiters, self._switch_waiters = self._switch_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def on_packets(self, packets: list[Packet]) -> None:
        """Name each packet's ends, keep it, and report the kept packets (StoredPackets: their names change)."""
        if self._keep is not None:
            # On the host's loopback a packet is the lab's only if its ports are; a port the
            # kernel picked during a call is known once the call's result is in, so hold a while.
            self._held.extend(packets)
            packets = self._release_held()
        if not packets:
            return
        stored = []
        named: dict[tuple, tuple[int, int]] = {}  # a batch is mostly a few connections' packets
        for packet in packets:
            if packet.icmp_about is not None:
                names = (0, self._label_index(*packet.icmp_about))
            else:
                ends = (packet.src, packet.dst)
                found = named.get(ends)
                if found is None:
                    found = named[ends] = (self._label_index(*ends), self._label_index(ends[1], ends[0]))
                names = found
            if self._pcap is not None:
                self._pcap.write(packet.wall_ns, packet.frame)
            stored.append(self.packets.add(packet, *names))
        self.report(stored)

    def _label(self, chunk: PacketChunk, row: int) -> None:
        """Name a kept packet's two ends again."""
        packets = chunk.packets
        if packets is not None:
            packet = packets[row]
            if packet.icmp_about is not None:
                chunk.src_label[row], chunk.dst_label[row] = 0, self._label_index(*packet.icmp_about)
            else:
                src, dst = endpoint_key(packet.src), endpoint_key(packet.dst)
                chunk.src_label[row] = self._index_by_keys(src, dst)
                chunk.dst_label[row] = self._index_by_keys(dst, src)
            return
        about = chunk.icmp_about(row)
        if about is not None:
            chunk.src_label[row], chunk.dst_label[row] = 0, self._label_index(*about)
        else:
            src, dst = chunk.src[row], chunk.dst[row]
            chunk.src_label[row], chunk.dst_label[row] = self._index_by_keys(src, dst), self._index_by_keys(dst, src)

    def relabel_recent(self, local: Endpoint | None = None, peer: Endpoint | None = None) -> None:
        """A call's result named a socket: name it in packets that came in before the result did.

        A connection's packets carry its sockets' names once known, so the handshake a
        listener answered is shown as the accepted socket's, like the rest of that connection.
        With `local`, only the packets to or from its port (the only ones whose names changed),
        and with `peer` too, only that connection's (an accepted socket shares its listener's end).
        """
        recent = self.packets.recent(256)  # read in the columns: a view each would cost more than the naming
        if local is None:
            for chunk, row in recent:
                self._label(chunk, row)
            return
        if peer is None:  # a socket's packets: its port at either end (its own address may be a wildcard)
            port = local[1]
            for chunk, row in recent:
                packets = chunk.packets
                if packets is not None:
                    packet = packets[row]
                    mine = packet.src[1] == port or packet.dst[1] == port or packet.icmp_about is not None
                else:
                    mine = chunk.src[row] & 0xFFFF == port or chunk.dst[row] & 0xFFFF == port
                    mine = mine or chunk.icmp_about(row) is not None
                if mine:
                    self._label(chunk, row)
            return
        ends, keys = {tuple(local), tuple(peer)}, {endpoint_key(local), endpoint_key(peer)}
        for chunk, row in recent:  # a connection's packets: both ends its own
            packets = chunk.packets
            if packets is not None:
                packet = packets[row]
                mine = (packet.src in ends and packet.dst in ends) or packet.icmp_about is not None
            else:
                mine = (chunk.src[row] in keys and chunk.dst[row] in keys) or chunk.icmp_about(row) is not None
            if mine:
                self._label(chunk, row)

    def _release_held(self) -> list[Packet]:
        assert self._keep is not None
        now = time.monotonic_ns()
        keep, hold = [], []
        for packet in self._held:
            if self._keep(packet):
                keep.append(packet)
            elif now - packet.t_ns < HOLD_NS:
                hold.append(packet)
        self._held = hold
        return keep

    def endpoint_label(self, local: Endpoint, peer: Endpoint) -> str | None:
        """`proc.var` for the socket at this end of a packet, if the lab knows it."""
        return self.names[self._label_index(local, peer)]

    def _label_index(self, local: Endpoint, peer: Endpoint) -> int:
        """endpoint_label's name as its number in `names` (0: none)."""
        return self._index_by_keys(endpoint_key(local), endpoint_key(peer))

    def _index_by_keys(self, local: int, peer: int) -> int:
        found = self.owners.label_index(local, peer)
        if found is not None:
            return found
        return self._label_index_by_port(endpoint_of(local))

    def _label_index_by_port(self, local: Endpoint) -> int:
        """The number in `names` of the `proc.var` whose address has this end's port (0: none)."""
        by_port = self._by_port
        numbers = by_port.numbers(local[1])
        if not numbers:
            return 0
        for proc in self.processes.values():  # in the processes' order, as a scan of them all would find it
            wanted = by_port.processes.index(proc.name)
            for number in numbers:
                if number & 0xFFFF != wanted:
                    continue
                var = by_port.owner(number)[1]
                address = proc.addresses.get(var)
                if address is not None and address.port == local[1] and address.host in (local[0], "0.0.0.0", "::"):
                    return by_port.label_index(number)
        return 0

    def label_for(self, local: Endpoint, peer: Endpoint) -> tuple[str, str] | None:
        """(process, `proc.var`) of the socket with these endpoints, if the lab knows it."""
        return self.owners.get((local, peer))  # lists from JSON come too

    def note_port(self, local: Endpoint) -> None:
        """A call's result named a local port: packets held for want of it may be the lab's."""
        self.lab_ports.add(local[1])
        if self._held:
            self.on_packets([])

    def learn(self, proc: Process, step: Step, raw: dict, fd_arg: int | None) -> None:
        """A call's result named a connection's ends: label its packets, those seen already too."""
        var = proc.var_for(fd_arg) if fd_arg is not None else None
        if var is not None and var in proc.addresses:  # the lab has just learned its address
            self.note_address(proc.name, var, proc.addresses[var].port)
        self._learn_endpoints(proc, step, raw, fd_arg)
        if self.packets:
            host, port = raw["local"]
            peer = raw.get("peer") if step.call.name == "accept" else None
            self.relabel_recent((host, port), (peer[0], peer[1]) if peer else None)

    def _learn_endpoints(self, proc: Process, step: Step, raw: dict, fd_arg: int | None) -> None:
        """Remember which socket each connection belongs to, for what outlives its descriptor."""
        name = step.call.name
        local = raw["local"]
        if name in ("accept", "accept4") and raw.get("ret", -1) >= 0 and raw.get("peer"):
            label = f"{proc.name}.{step.var}" if step.var else f"{proc.name}:fd{raw['ret']}"
            self.owners[(local, raw["peer"])] = (proc.name, label)
        elif name == "connect" and fd_arg is not None:
            target = step.call.args[1]
            address = None
            if isinstance(target, AddressArg):
                address = target.address
            elif isinstance(target, RefArg):
                address = self.processes[target.process].addresses.get(target.name)
            elif isinstance(target, NameArg):
                address = proc.addresses.get(target.name)
            if address is not None:
                address = self.reached(self.processes.get(getattr(target, "process", "")), address)
                var = proc.var_for(fd_arg)
                label = f"{proc.name}.{var}" if var else f"{proc.name}:fd{fd_arg}"
                self.owners[(local, (address.host, address.port))] = (proc.name, label)

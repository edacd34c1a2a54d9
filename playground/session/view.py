"""What the Lab pane and the Inspector show: the lab's processes and the kernel's view of their sockets.

UI-free: built from the engine's state and an `inspect()` snapshot, so it can be tested without Textual.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, overload

from playground.constants import TCP_SHOWN, TCP_STATES, kind_name
from playground.lab_names import Names
from playground.remote.view import RemoteHostView
from playground.sequences import list_index
from playground.session.families import FamilyView, group_families
from playground.session.names import FdNames, FdVars, NameList, SortedNames
from playground.socket_table import SocketTable
from playground.socket_table import value as column_value

if TYPE_CHECKING:
    from playground.lab import Lab
    from playground.lab_process import Process
    from playground.netlab.controller import PortCounters
    from playground.session.wire import HiddenSocketView

__all__ = [
    "SocketView",
    "ProcessView",
    "HostView",
    "ThreadView",
    "LabView",
    "FamilyView",
    "RemoteHostView",
    "build_view",
    "ViewCache",
    "SocketViews",
    "format_address",
    "format_bytes",
    "mask_ports",
    "socket_badges",
]

# Options shown as badges when on; TCP_QUICKACK reads 1 on most sockets, so it is left out.
_BOOL_BADGES = {
    "SO_REUSEADDR": "REUSEADDR",
    "SO_REUSEPORT": "REUSEPORT",
    "SO_KEEPALIVE": "KEEPALIVE",
    "SO_BROADCAST": "BROADCAST",
    "TCP_NODELAY": "NODELAY",
    "TCP_CORK": "CORK",
    "IPV6_V6ONLY": "V6ONLY",
    "O_NONBLOCK": "NONBLOCK",
}


# ("process", name), ("socket", name, fd), ("host", name), ("remote", name) for a remote host,
# ("thread", name), ("hidden", ...),
# ("family", process, NAME) for the sockets NAME[i] of a process, ("more", process, NAME) for its next page
SelectionKey = tuple


@dataclass(frozen=True, slots=True)
class SocketView:
    """One open socket of one process, as the kernel reports it."""

    process: str
    fd: int
    name: str | None
    kind: str
    family: int
    type: int
    listening: bool
    state: str | None
    local: tuple[str, int] | None
    peer: tuple[str, int] | None
    inq: int | None
    outq: int | None
    options: dict = field(default_factory=dict, compare=True)
    tcp: dict | None = None
    observed: bool = False  # an outside program's: shown as the kernel has it, never acted on

    @property
    def wire_name(self) -> str:
        """The name its packets carry: `client.c`, or an outside program's `web.4` (its descriptor number)."""
        return f"{self.process}.{self.name if self.name is not None else self.fd}"

    @property
    def key(self) -> SelectionKey:
        return ("socket", self.process, self.fd)

    @property
    def ref(self) -> str:
        """How a script line names this socket: its variable, or its descriptor number."""
        return self.name if self.name is not None else str(self.fd)

    @property
    def is_stream(self) -> bool:
        return self.type == 1

    @property
    def is_ipv6(self) -> bool:
        return self.family == 10

    @property
    def shown_state(self) -> str:
        if self.is_stream:
            return self.state or "?"
        return "CONNECTED" if self.peer else "UNCONNECTED"


@dataclass(frozen=True)
class ThreadView:
    """One thread actor of a process (`thread NAME in PROC`): its TID and what it is blocked in."""

    name: str
    process: str
    tid: int
    alive: bool
    blocked: tuple[str, ...]

    @property
    def key(self) -> SelectionKey:
        return ("thread", self.name)


@dataclass(frozen=True)
class ProcessView:
    """One lab process: who it is, how it is, what it is blocked in, and its sockets."""

    name: str
    pid: int
    parent: str | None
    state: str
    alive: bool
    zombie: bool
    dispositions: tuple[tuple[str, str], ...]
    blocked: tuple[str, ...]
    sockets: Sequence[SocketView]  # SocketViews: each made when asked for
    names: Sequence[tuple[str, int]]  # (variable, fd) sorted: SortedNames
    children: tuple[str, ...]
    host: str | None = None  # the network lab's host it runs on
    threads: tuple[ThreadView, ...] = ()
    remote: RemoteHostView | None = None  # the remote host (`host NAME ssh DEST`) it runs on
    outside: bool = False  # an outside program (`spawn NAME exec ...`): watched, never driven

    @property
    def key(self) -> SelectionKey:
        return ("process", self.name)

    def disposition(self, signame: str) -> str:
        return dict(self.dispositions).get(signame, "SIG_DFL")

    @cached_property
    def entries(self) -> tuple[SocketView | FamilyView, ...]:
        """The sockets as the Lab pane lists them: each NAME[i] family as one entry."""
        return group_families(self.name, self.sockets)

    def family(self, name: str) -> FamilyView | None:
        return next((e for e in self.entries if isinstance(e, FamilyView) and e.name == name), None)


@dataclass(frozen=True)
class HostView:
    """One host of the network lab: its address and card, whether it is up, cut or crashed, and its cable."""

    name: str
    address: str
    mac: str
    state: str  # up, cut, crashed
    cable: tuple[tuple[str, str], ...] = ()  # ("in" / "out", the settings as a cable line writes them)
    counters: tuple[tuple[str, int], ...] = ()  # what its cable carried: sent, delivered, dropped, delayed, ...

    @property
    def key(self) -> SelectionKey:
        return ("host", self.name)


@dataclass(frozen=True)
class LabView:
    """Every process of the lab, in the order they started (and the network lab's hosts, if any)."""

    processes: tuple[ProcessView, ...] = ()
    ready: bool = False
    hidden: tuple[HiddenSocketView, ...] = ()  # sockets the kernel keeps with no descriptor left
    hosts: tuple[HostView, ...] = ()
    remote_hosts: tuple[RemoteHostView, ...] = ()  # `host NAME ssh DEST`: real machines

    def host(self, name: str) -> HostView | None:
        return next((h for h in self.hosts if h.name == name), None)

    def remote_host(self, name: str) -> RemoteHostView | None:
        return next((h for h in self.remote_hosts if h.name == name), None)

    def process(self, name: str) -> ProcessView | None:
        for proc in self.processes:
            if proc.name == name:
                return proc
        return None

    def thread(self, name: str) -> ThreadView | None:
        for proc in self.processes:
            for thread in proc.threads:
                if thread.name == name:
                    return thread
        return None

    def socket(self, process: str, fd: int) -> SocketView | None:
        proc = self.process(process)
        if proc is None:
            return None
        if isinstance(proc.sockets, SocketViews):
            return proc.sockets.by_fd(fd)
        for sock in proc.sockets:
            if sock.fd == fd:
                return sock
        return None

    def find(
        self, key: SelectionKey | None
    ) -> ProcessView | ThreadView | SocketView | HiddenSocketView | HostView | RemoteHostView | FamilyView | None:
        if key is None:
            return None
        if key[0] in ("family", "more"):
            proc = self.process(key[1])
            return proc.family(key[2]) if proc is not None else None
        if key[0] == "process":
            return self.process(key[1])
        if key[0] == "host":
            return self.host(key[1])
        if key[0] == "remote":
            return self.remote_host(key[1])
        if key[0] == "thread":
            return self.thread(key[1])
        if key[0] == "hidden":
            return next((h for h in self.hidden if h.key == key), None)
        return self.socket(key[1], key[2])


def socket_names(proc: Process | None, tracked: Mapping[int, str] | None) -> FdVars:
    """fd -> variable for one process: what the session saw named last, else the engine's newest names
    (copied from the lab's index, a list of pointers: a dict of them remade at each refresh while a
    block adds names churned the small-object allocator's pools, issue 13)."""
    names = proc.names if proc is not None else {}
    if isinstance(names, Names):
        out = names.by_descriptor().copy()
    else:
        out = FdVars()
        for var, fd in names.items():
            out[fd] = var  # the last name of each number wins
    if tracked:
        for fd in tracked:
            code = tracked.code(fd) if isinstance(tracked, FdVars) else 0
            if code and code == out.code(fd):
                continue  # (the same name: none made to see it)
            var = tracked[fd]
            if proc is None or names.get(var) == fd:
                out[fd] = var
    return out


def socket_view(process: str, raw: dict, name: str | None) -> SocketView:
    """One socket's view from its entry in an inspect() snapshot."""
    state_number = raw.get("state")
    return SocketView(
        process=process,
        fd=raw["fd"],
        name=name,
        kind=kind_name(raw.get("family", 0), raw.get("type", 0)),
        family=raw.get("family", 0),
        type=raw.get("type", 0),
        listening=bool(raw.get("listening")),
        state=TCP_STATES.get(state_number) if state_number is not None else None,
        local=tuple(raw["local"]) if raw.get("local") else None,
        peer=tuple(raw["peer"]) if raw.get("peer") else None,
        inq=raw.get("inq"),
        outq=raw.get("outq"),
        options=raw.get("options") or {},  # shared by sockets with the same options (lab_inspection): never changed
        tcp=_shown_tcp(raw.get("tcp")),
        observed=bool(raw.get("observed")),
    )


def _shown_tcp(tcp: dict | None) -> dict | None:
    """TCP_INFO's fields the Inspector shows: the entry's own dict where the inspection cut it so already."""
    if not tcp:
        return None
    return tcp if tuple(tcp) == TCP_SHOWN else {k: tcp.get(k) for k in TCP_SHOWN}


class SocketViews(Sequence[SocketView]):
    """A process's sockets as views, each made when it is asked for.

    With 10,000 connections (20,000 sockets) a SocketView a socket cost 400 bytes each, for
    the few the Lab pane and the Inspector show: here a view is made from its entry when
    asked, and the last few made are kept (a page of the Lab pane, what the Inspector shows).
    `decorated` gives the same sockets with a few views replaced (sock_diag's timers), still lazy.
    """

    __slots__ = ("process", "entries", "names", "_rows", "_made", "_summaries", "_decorations")

    def __init__(self, process: str, entries: Sequence[dict], names: Mapping[int, str]) -> None:
        self.process = process
        self.entries = entries
        self.names = names
        self._rows = _socket_rows(entries)  # None: every entry is a socket's
        self._made: dict[int, SocketView] = {}
        self._summaries: dict[int, tuple[str, str]] = {}  # shape id -> (kind, shown state)
        self._decorations: dict[int, SocketView] = {}  # position -> the view shown instead of its entry's

    def decorated(self, decorations: dict[int, SocketView]) -> SocketViews:
        """The same sockets, the view at each of these positions replaced (made from the same entries:
        no view of the others is made or kept; a tuple of 10,000 decorated views was 4 MB, issue 13)."""
        new = SocketViews.__new__(SocketViews)
        new.process, new.entries, new.names, new._rows = self.process, self.entries, self.names, self._rows
        new._made, new._summaries = {}, self._summaries  # (kind and shown state never read `tcp`)
        new._decorations = {**self._decorations, **decorations}
        return new

    def __len__(self) -> int:
        return len(self._rows) if self._rows is not None else len(self.entries)

    def _row(self, at: int) -> int:
        return self._rows[at] if self._rows is not None else at

    @overload
    def __getitem__(self, at: int) -> SocketView: ...
    @overload
    def __getitem__(self, at: slice) -> tuple[SocketView, ...]: ...
    def __getitem__(self, at: int | slice) -> SocketView | tuple[SocketView, ...]:
        if isinstance(at, slice):
            return tuple(self.view(i) for i in range(*at.indices(len(self))))
        return self.view(list_index(at, len(self)))

    def __iter__(self) -> Iterator[SocketView]:
        # Going through all of them (sock_diag timers, connect targets) keeps none: only what is asked for.
        made = self._made
        return (made.get(at) or self._make(at) for at in range(len(self)))

    def _make(self, at: int) -> SocketView:
        decorated = self._decorations.get(at)
        if decorated is not None:
            return decorated
        raw = self.entries[self._row(at)]
        return socket_view(self.process, raw, self.names.get(raw["fd"]))

    def view(self, at: int) -> SocketView:
        made = self._made.get(at)
        if made is None:
            made = self._make(at)
            if len(self._made) >= _MADE_KEPT:
                self._made.pop(next(iter(self._made)))
            self._made[at] = made
        return made

    def fd_at(self, at: int) -> int:
        entries, row = self.entries, self._row(at)
        return entries.fds[row] if isinstance(entries, SocketTable) else entries[row]["fd"]

    def name_at(self, at: int) -> str | None:
        return self.names.get(self.fd_at(at))

    def names_in_order(self) -> NameList:
        """Each socket's name, by position (None: none), as codes: one walk along the names (both are by
        descriptor), not a search a socket, and no str made (the Lab pane groups 10,000 names at each
        refresh while a block runs: 10,000 strs a time churned the small-object allocator, issue 13)."""
        names, entries, rows = self.names, self.entries, self._rows
        if not (isinstance(names, FdNames) and isinstance(entries, SocketTable)):
            return NameList(self.name_at(at) for at in range(len(self)))
        named, variables, table_fds = names.fds, names.vars, entries.fds
        codes, odd = variables.codes, variables.odd
        out = NameList()
        j, n = 0, len(named)
        for row in rows if rows is not None else range(len(table_fds)):
            fd = table_fds[row]
            while j < n and named[j] < fd:
                j += 1
            if j < n and named[j] == fd:
                out.append_code(codes[j], odd.get(j))
            else:
                out.append_code(0, None)
        return out

    def position(self, fd: int) -> int | None:
        """Where the socket with this descriptor is (None: the process has no such socket)."""
        entries = self.entries
        if isinstance(entries, SocketTable):
            if fd not in entries:
                return None
            return self._at_row(entries.position(fd))
        return next((at for at in range(len(self)) if self.fd_at(at) == fd), None)

    def without_tcp_info(self) -> list[int]:
        """The positions that may hold a stream socket without TCP_INFO, told from the table's shapes
        (with a row kept as its entry, which may be one): no view is made. Every position when the
        entries are not a table."""
        entries = self.entries
        if not isinstance(entries, SocketTable):
            return list(range(len(self)))
        return self._positions(entries.rows_of_shapes(lambda shape: shape[1] == 1 and not shape[6]))

    def at_ports(self, ports: Collection[tuple[int, int]]) -> list[int]:
        """The positions of the sockets with one of these (local port, peer port) pairs, in order (every
        position when the entries are not a table). A few pairs: each searched in the table's columns
        (microseconds); many (SO_KEEPALIVE on every connection): one pass along the two columns."""
        entries = self.entries
        if not isinstance(entries, SocketTable):
            return list(range(len(self)))
        if len(ports) <= _PORT_SEARCHES:
            rows = sorted({row for local, peer in ports for row in entries.rows_with(lports=local, pports=peer)})
        else:
            rows = [row for row, pair in enumerate(zip(entries.lports, entries.pports, strict=True)) if pair in ports]
        return self._positions(rows)

    def _positions(self, rows: list[int]) -> list[int]:
        if self._rows is None:
            return rows
        return [at for at in map(self._at_row, rows) if at is not None]

    def _at_row(self, row: int) -> int | None:
        """The position of the table's row (None: the row is not a socket's)."""
        rows = self._rows
        if rows is None:
            return row
        at = bisect_left(rows, row)  # (the socket rows, in order: a process with another kind of descriptor)
        return at if at < len(rows) and rows[at] == row else None

    def by_fd(self, fd: int) -> SocketView | None:
        at = self.position(fd)
        return self.view(at) if at is not None else None

    def summary(self, at: int) -> tuple[str, str, int | None, int | None]:
        """(kind, shown state, inq, outq) of a socket, read from its row (no view made)."""
        entries, row = self.entries, self._row(at)
        shape_id = entries.shape_ids[row] if isinstance(entries, SocketTable) else 0
        if not shape_id:  # a list's entry, or a row kept as its entry
            sock = self.view(at)
            return sock.kind, sock.shown_state, sock.inq, sock.outq
        assert isinstance(entries, SocketTable)
        known = self._summaries.get(shape_id)
        if known is None:
            sock = self.view(at)
            known = self._summaries[shape_id] = (sock.kind, sock.shown_state)
        return (*known, column_value(entries.inqs[row]), column_value(entries.outqs[row]))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SocketViews) and other.entries is self.entries and other.process == self.process:
            if (other.names is self.names or other.names == self.names) and self._decorations == other._decorations:
                return True
        if isinstance(other, SocketViews):
            told = self._same_rows(other)
            if told is not None:
                return told
        if isinstance(other, (SocketViews, tuple)):
            return len(self) == len(other) and tuple(self) == tuple(other)
        return NotImplemented

    def _same_rows(self, other: SocketViews) -> bool | None:
        """Equality told from the two tables' columns, making views only of the rows that differ
        (20,000 views made to compare took 100 ms); None: not two tables of the same kind."""
        mine, theirs = self.entries, other.entries
        if not (isinstance(mine, SocketTable) and isinstance(theirs, SocketTable)) or mine.shapes is not theirs.shapes:
            return None
        if self._rows is not None or other._rows is not None:
            return None
        if len(mine) != len(theirs) or mine.fds != theirs.fds or self.process != other.process:
            return False
        if not (self.names is other.names or self.names == other.names):
            if any(self.names.get(fd) != other.names.get(fd) for fd in mine.fds):
                return False
        rows = mine.differing(theirs) | self._decorations.keys() | other._decorations.keys()
        return all(self._make(at) == other._make(at) for at in rows)

    def __hash__(self) -> int:
        return hash((self.process, len(self)))

    def __repr__(self) -> str:
        return f"SocketViews({self.process!r}, {len(self)} sockets)"


_MADE_KEPT = 256  # views kept per process: more than the Lab pane shows at once
_PORT_SEARCHES = 8  # port pairs searched one by one (~45 µs each at 10,000 rows); more: one pass (~0.7 ms)


def _socket_rows(entries: Sequence[dict]) -> array | None:
    """The rows that are sockets' (an entry with "socket": False is a descriptor of another kind)."""
    if isinstance(entries, SocketTable):
        if not entries.odd:
            return None
        rows = [
            at
            for at in range(len(entries))
            if entries.shape_ids[at] or entries.odd[entries.fds[at]].get("socket", True)
        ]
    else:
        rows = [at for at, raw in enumerate(entries) if raw.get("socket", True)]
    return array("i", rows) if len(rows) != len(entries) else None


class ViewCache:
    """What build_view made last, per process: remade only where the snapshot or the names changed.

    The periodic inspection gives the same table while a process's sockets are unchanged;
    the sockets' views are made when asked for (SocketViews).
    """

    def __init__(self) -> None:
        self.processes: dict[str, tuple[int, Sequence[dict], Mapping[int, str], SocketViews]] = {}
        # process -> (what they were made from, fd -> variable, the names sorted): remade when the names change
        self.names: dict[str, tuple[tuple, FdNames, SortedNames]] = {}
        self.views: dict[str, ProcessView] = {}  # the last ProcessView of each process, given again while equal

    def names_of(
        self, proc: Process, tracked: Mapping[int, str] | None, tracked_version: int | None
    ) -> tuple[FdNames, SortedNames]:
        """fd -> variable, and the names sorted, for one process: the same objects while its names are unchanged.

        With 10,000 connections, remaking them took 10 ms a refresh. The process's names count
        their changes (lab_names.Names.version), the session its tracked ones (`tracked_version`).
        """
        version = getattr(proc.names, "version", None)
        key = (proc.pid, id(proc.names), version, tracked_version)
        last = self.names.get(proc.name)
        if last is not None and last[0] == key and version is not None and tracked_version is not None:
            return last[1], last[2]
        made = FdNames(socket_names(proc, tracked)), SortedNames(proc.names)
        self.names[proc.name] = (key, *made)
        return made

    def same_view(self, view: ProcessView) -> ProcessView:
        """The last view of this process if it equals this one (its grouped entries are made already)."""
        last = self.views.get(view.name)
        if last is not None and last == view:
            return last
        self.views[view.name] = view
        return view

    def sockets_of(self, name: str, pid: int, listed: Sequence[dict], names: Mapping[int, str]) -> SocketViews:
        last = self.processes.get(name)
        if last is not None and last[0] == pid and last[1] is listed and last[2] == names:
            return last[3]
        sockets = SocketViews(name, listed, names)
        self.processes[name] = (pid, listed, names, sockets)
        return sockets


def build_view(
    lab: Lab,
    snapshot: dict[str, Sequence[dict]],
    tracked_names: Mapping[str, Mapping[int, str]],
    blocked: dict[str, list[str]],
    host_counters: dict[str, PortCounters] | None = None,
    cache: ViewCache | None = None,
    tracked_version: int | None = None,
) -> LabView:
    """The Lab pane's content from the engine's processes and an inspect() snapshot.

    `tracked_version` counts the changes to `tracked_names` (None: unknown, the names are remade).
    """
    processes = []
    remote_hosts = {host.name: host for host in lab.lifecycle.remote_hosts.views()}
    cache = cache or ViewCache()
    for name, proc in lab.processes.items():
        names, sorted_names = cache.names_of(proc, tracked_names.get(name), tracked_version)
        sockets: Sequence[SocketView] = ()
        if proc.alive:
            sockets = cache.sockets_of(name, proc.pid, snapshot.get(name, []), names)
        view = ProcessView(
            name=name,
            pid=proc.pid,
            parent=proc.parent.name if proc.parent is not None else None,
            state=proc.state,
            alive=proc.alive,
            zombie=proc.zombie,
            dispositions=tuple(sorted(proc.dispositions.items())),
            blocked=tuple(blocked.get(name, ())),
            sockets=sockets,
            names=sorted_names,
            children=tuple(proc.children),
            host=proc.host,
            threads=thread_views(lab, proc, blocked),
            remote=remote_hosts.get(proc.remote.host) if proc.remote is not None else None,
            outside=proc.outside,
        )
        processes.append(cache.same_view(view))
    return LabView(
        tuple(processes),
        ready=True,
        hosts=host_views(lab, host_counters or {}),
        remote_hosts=tuple(remote_hosts.values()),
    )


def host_views(lab: Lab, counters: dict[str, PortCounters]) -> tuple[HostView, ...]:
    if lab.network.hosts is None:
        return ()
    return tuple(
        HostView(
            host.name,
            host.address,
            host.mac,
            host.state,
            tuple((d, i.describe()) for d, i in sorted(host.impairments.items()) if not i.clear),
            _counted(counters.get(host.name)),
        )
        for host in lab.network.hosts.hosts.values()
    )


def thread_views(lab: Lab, proc: Process, blocked: dict[str, list[str]]) -> tuple[ThreadView, ...]:
    """The thread actors of one process, in the order they started."""
    return tuple(
        ThreadView(name, proc.name, thread.tid or 0, thread.alive, tuple(blocked.get(name, ())))
        for name, thread in lab.threads.items()
        if thread.thread_of is proc
    )


def _counted(counters: PortCounters | None) -> tuple[tuple[str, int], ...]:
    if counters is None:
        return ()
    shown = ("sent", "delivered", "dropped", "delayed", "duplicated")
    return tuple((name, int(getattr(counters, name))) for name in shown)


_PORT = re.compile(r"(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]*\]):(\d{1,5})")


def mask_ports(text: str) -> str:
    """Replace ephemeral ports (which differ from run to run) with a placeholder."""
    from playground.outcomes import ephemeral_ports  # (the script's modules load after the first frame)

    ports = ephemeral_ports()

    def sub(match: re.Match[str]) -> str:
        port = int(match.group(2))
        return f"{match.group(1)}:PORT" if port in ports else match.group(0)

    return _PORT.sub(sub, text)


def format_address(address: tuple[str, int] | None, deterministic: bool = False) -> str:
    if address is None:
        return "-"
    host, port = address[0], address[1]
    if port == -1:  # an AF_UNIX socket's path (the inspector's snapshot gives it so), or none
        return '"' + host + '"' if host else "(unnamed)"
    text = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return mask_ports(text) if deterministic else text


def format_bytes(count: int | None) -> str:
    if count is None:
        return "-"
    if count < 10_000:
        return f"{count} B"
    if count < 10_000_000:
        return f"{count / 1024:.0f} KiB"
    return f"{count / 1048576:.1f} MiB"


def socket_badges(options: dict) -> list[str]:
    """Short names of the options that are on (and timeouts that are set)."""
    badges = [short for name, short in _BOOL_BADGES.items() if options.get(name)]
    linger = options.get("SO_LINGER")
    if isinstance(linger, (list, tuple)) and linger and linger[0]:
        badges.append(f"LINGER={linger[1]}")
    for name, short in (("SO_RCVTIMEO", "RCVTIMEO"), ("SO_SNDTIMEO", "SNDTIMEO")):
        value = options.get(name)
        if value:
            badges.append(f"{short}={value:g}")
    if options.get("TCP_USER_TIMEOUT"):
        badges.append(f"USER_TIMEOUT={options['TCP_USER_TIMEOUT']}")
    return badges

"""The Lab pane: processes and their sockets as a tree that follows the kernel."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.message import Message
from textual.reactive import var
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from playground.session.view import (
    HostView,
    LabView,
    ProcessView,
    RemoteHostView,
    SelectionKey,
    SocketView,
    ThreadView,
    format_address,
    format_bytes,
    socket_badges,
)
from widgets.palette import Palette
from widgets.wire_styles import hidden_label

__all__ = ["LabTree", "host_label", "process_label", "socket_label", "thread_label"]

_CALM_STATES = {"ESTABLISHED", "CONNECTED"}
_OPEN_STATES = {"LISTEN", "UNCONNECTED"}
_CLOSING_STATES = {"FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT", "CLOSE-WAIT", "LAST-ACK", "CLOSING"}


def host_label(host: HostView, palette: Palette) -> Text:
    """`alpha  192.0.2.1  up` and the cable's impairments (`out: delay 100ms`)."""
    text = Text()
    text.append(host.name, palette.strong)
    text.append(f"  {host.address}", palette.muted)
    style = palette.success if host.state == "up" else palette.error if host.state == "crashed" else palette.warning
    text.append(f"  {host.state}", style)
    for direction, settings in host.cable:
        text.append(f"  {direction}: {settings}", palette.accent)
    return text


def process_label(proc: ProcessView, palette: Palette, deterministic: bool = False) -> Text:
    text = Text()
    text.append(proc.name, palette.strong)
    text.append(f"  pid {'····' if deterministic else proc.pid}", palette.muted)
    if proc.state == "running":
        state_style = palette.success
    elif proc.zombie:
        state_style = palette.warning
    elif proc.state.startswith("killed"):
        state_style = palette.error
    else:
        state_style = palette.muted
    text.append(f"  {proc.state}", state_style)
    if proc.outside:
        text.append("  outside program, read-only", palette.muted)
    if proc.remote is not None:
        text.append(f"  on {proc.remote.name}", palette.primary)
        text.append(f" ({remote_host_text(proc.remote)})", palette.muted)
    for call in proc.blocked:
        text.append(f"  ⧗ {call}", palette.accent)
    return text


def thread_label(thread: ThreadView, palette: Palette, deterministic: bool = False) -> Text:
    """A thread actor under its process: its name, its TID, and the calls it is blocked in."""
    text = Text()
    text.append(f"⎇ {thread.name}", palette.strong)
    text.append(f"  tid {'····' if deterministic else thread.tid}", palette.muted)
    if not thread.alive:
        text.append("  ended", palette.muted)
    for call in thread.blocked:
        text.append(f"  ⧗ {call}", palette.accent)
    return text


def remote_host_text(host: RemoteHostView) -> str:
    """A remote host in a few words: where ssh reaches it, and the round trip (or that it is gone)."""
    if not host.connected:
        return f"ssh {host.destination}, disconnected"
    rtt = f", rtt {host.rtt_ms:.2f} ms" if host.rtt_ms is not None else ""
    return f"ssh {host.destination}{rtt}"


def socket_label(sock: SocketView, palette: Palette, deterministic: bool = False) -> Text:
    text = Text()
    text.append(sock.wire_name if sock.observed else sock.name or f"fd{sock.fd}", palette.strong)
    text.append(f" fd {sock.fd} {sock.kind} ", palette.muted)
    state = sock.shown_state
    if state in _CALM_STATES:
        style = palette.success
    elif state in _OPEN_STATES:
        style = palette.primary
    elif state in _CLOSING_STATES:
        style = palette.warning
    elif state in ("CLOSE", "CLOSED"):
        style = palette.muted
    else:
        style = palette.accent
    text.append(state, style)
    if sock.local is not None and sock.local[1] != 0:
        text.append(f" {format_address(sock.local, deterministic)}")
        if sock.peer is not None:
            text.append(f" ↔ {format_address(sock.peer, deterministic)}")
    if sock.inq is not None or sock.outq is not None:
        queued = f" in {format_bytes(sock.inq)} out {format_bytes(sock.outq)}"
        busy = bool(sock.inq) or bool(sock.outq)
        text.append(queued, palette.accent if busy else palette.muted)
    for badge in socket_badges(sock.options):
        text.append(f" {badge}", palette.primary)
    return text


class LabTree(Tree[tuple]):
    """Processes, then their sockets; forked children under their parent."""

    # Priority: the App runs these as the key arrives. Tree's own bindings run only after the key
    # has gone to the tree and bubbled back up through its containers and the screen, one
    # message queue (one turn of the event loop) each, which is slow while events stream in.
    BINDINGS = [
        Binding("up", "cursor_up", "Cursor Up", show=False, priority=True),
        Binding("down", "cursor_down", "Cursor Down", show=False, priority=True),
    ]

    view: var[LabView] = var(LabView)

    class SelectionChanged(Message):
        """The user highlighted another process or socket."""

        def __init__(self, key: SelectionKey | None) -> None:
            super().__init__()
            self.key = key

    def __init__(self, palette: Palette, deterministic: bool = False, **kwargs) -> None:
        super().__init__("lab", **kwargs)
        self.show_root = False
        self.guide_depth = 2
        self.auto_expand = False
        self.palette = palette
        self.deterministic = deterministic
        self.selected_key: SelectionKey | None = None
        self._node_by_key: dict[SelectionKey, TreeNode[tuple]] = {}
        self._labels: dict[SelectionKey, Text] = {}

    def set_palette(self, palette: Palette) -> None:
        self.palette = palette
        self._labels.clear()
        self._reconcile(self.view)

    def watch_view(self, view: LabView) -> None:
        self._reconcile(view)

    def _reconcile(self, view: LabView) -> None:
        """Bring the tree in line with the view, keeping the user's selection."""
        # The cursor moves at once on a key; NodeHighlighted (and selected_key) follow later.
        cursor = self.cursor_node
        keep = cursor.data if cursor is not None and cursor.data is not None else self.selected_key
        by_parent: dict[str | None, list[ProcessView]] = {}
        names = {p.name for p in view.processes}
        for proc in view.processes:
            parent = proc.parent if proc.parent in names else None
            by_parent.setdefault(parent, []).append(proc)
        hosts = {h.name for h in view.hosts}
        wanted: set[SelectionKey] = set()

        def sync(parent_node: TreeNode[tuple], children: list[tuple[SelectionKey, Text, bool]]) -> None:
            keys = [key for key, _, _ in children]
            for existing in list(parent_node.children):
                if existing.data not in keys:
                    self._forget(existing)
                    existing.remove()
            for index, (key, label, leaf) in enumerate(children):
                wanted.add(key)
                node = self._place(parent_node, index, key, label, leaf)
                if not leaf:
                    (add_host_children if key[0] == "host" else add_process_children)(node, key[1])

        def add_host_children(node: TreeNode[tuple], name: str) -> None:
            on_host = [p for p in by_parent.get(None, []) if p.host == name]
            sync(node, [(p.key, process_label(p, self.palette, self.deterministic), False) for p in on_host])

        def add_process_children(node: TreeNode[tuple], name: str) -> None:
            proc = view.process(name)
            if proc is None:
                return
            children: list[tuple[SelectionKey, Text, bool]] = [
                (thread.key, thread_label(thread, self.palette, self.deterministic), True) for thread in proc.threads
            ]
            children += [
                (sock.key, socket_label(sock, self.palette, self.deterministic), True) for sock in proc.sockets
            ]
            children += [
                (sock.key, hidden_label(sock, self.palette, self.deterministic), True)
                for sock in view.hidden
                if sock.process == name
            ]
            children += [
                (child.key, process_label(child, self.palette, self.deterministic), False)
                for child in by_parent.get(name, [])
            ]
            sync(node, children)

        top = [(h.key, host_label(h, self.palette), False) for h in view.hosts]
        top += [
            (p.key, process_label(p, self.palette, self.deterministic), False)
            for p in by_parent.get(None, [])
            if p.host not in hosts
        ]
        sync(self.root, top)
        for key in list(self._node_by_key):
            if key not in wanted:
                self._node_by_key.pop(key, None)
                self._labels.pop(key, None)
        self._restore_cursor(view, keep)

    def _place(
        self, parent_node: TreeNode[tuple], index: int, key: SelectionKey, label: Text, leaf: bool
    ) -> TreeNode[tuple]:
        """The node for `key`, child number `index` of `parent_node`: kept (relabelled), moved or made."""
        node = self._node_by_key.get(key)
        if node is not None and node.parent is not parent_node:
            self._forget(node)
            node.remove()
            node = None
        if node is None:
            return self._make_node(parent_node, key, label, leaf, index if index < len(parent_node.children) else None)
        current = parent_node.children.index(node) if node in parent_node.children else index
        if current != index:
            self._forget(node)
            node.remove()
            return self._make_node(parent_node, key, label, leaf, index)
        if self._labels.get(key) != label:
            node.set_label(label)
            self._labels[key] = label
        return node

    def _make_node(
        self, parent_node: TreeNode[tuple], key: SelectionKey, label: Text, leaf: bool, before: int | None
    ) -> TreeNode[tuple]:
        if leaf:
            node = parent_node.add_leaf(label, data=key, before=before)
        else:
            node = parent_node.add(label, data=key, expand=True, before=before)
        self._node_by_key[key] = node
        self._labels[key] = label
        return node

    def _forget(self, node: TreeNode[tuple]) -> None:
        for child in node.children:
            self._forget(child)
        if node.data is not None:
            self._node_by_key.pop(node.data, None)
            self._labels.pop(node.data, None)

    def _restore_cursor(self, view: LabView, key: SelectionKey | None) -> None:
        if key is None or key not in self._node_by_key:
            if key is not None and key[0] == "socket" and ("process", key[1]) in self._node_by_key:
                key = ("process", key[1])
            elif view.processes:
                key = view.processes[0].key
            else:
                return
        node = self._node_by_key.get(key)
        if node is None:
            return
        _ = self.last_line  # lays the lines out, so the node knows its line
        if self.cursor_node is not node or self.cursor_line != node.line:
            self.move_cursor(node)
        if key != self.selected_key:
            self.selected_key = key
            self.post_message(self.SelectionChanged(key))

    def select_key(self, key: SelectionKey) -> bool:
        node = self._node_by_key.get(key)
        if node is None:
            return False
        self.selected_key = key
        _ = self.last_line
        self.move_cursor(node)
        self.post_message(self.SelectionChanged(key))
        return True

    @on(Tree.NodeHighlighted)
    def _highlighted(self, event: Tree.NodeHighlighted) -> None:
        event.stop()
        key = event.node.data
        if key is not None and key != self.selected_key:
            self.selected_key = key
            self.post_message(self.SelectionChanged(key))

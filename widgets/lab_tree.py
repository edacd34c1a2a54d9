"""The Lab pane: processes and their sockets as a tree that follows the kernel."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.message import Message
from textual.reactive import var
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from playground.name_codes import split_name
from playground.session.view import (
    FamilyView,
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

__all__ = ["LabTree", "family_label", "host_label", "process_label", "socket_label", "thread_label", "PAGE"]

PAGE = 100  # a family's members are added to the tree this many at a time ("more…" adds the next page)

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


def remote_host_label(host: RemoteHostView, palette: Palette) -> Text:
    """`far  ssh me@lab.example.org  rtt 31.20 ms  Linux 6.1.0 x86_64`: a real machine, reached with ssh."""
    text = Text()
    text.append(host.name, palette.strong)
    text.append(f"  ssh {host.destination}", palette.muted)
    if not host.connected:
        text.append("  not connected" if host.kernel is None else "  disconnected", palette.warning)
        return text
    if host.rtt_ms is not None:
        text.append(f"  rtt {host.rtt_ms:.2f} ms", palette.accent)
    if host.kernel:
        text.append(f"  {host.kernel}", palette.muted)
    return text


def process_label(proc: ProcessView, palette: Palette, deterministic: bool = False, under_host: bool = False) -> Text:
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
    if proc.remote is not None and not under_host:
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


def family_label(family: FamilyView, palette: Palette) -> Text:
    """`c[0..9999]  10,000 tcp ESTABLISHED` (or the count by state), and the bytes queued if any."""
    text = Text()
    text.append(family.range_text, palette.strong)
    states = {state for state, _ in family.states}
    style = palette.success if states <= _CALM_STATES else palette.primary if states <= _OPEN_STATES else palette.accent
    text.append(f"  {family.summary()}", style)
    if family.missing:
        text.append(f"  ({family.missing:,} missing)", palette.muted)
    if family.busy:
        queued = f"  {family.busy:,} busy: in {format_bytes(family.inq)} out {format_bytes(family.outq)}"
        text.append(queued, palette.accent)
    return text


def more_label(family: FamilyView, shown: int, palette: Palette) -> Text:
    left = family.count - shown
    return Text(f"… {left:,} more of {family.range_text} (enter: {min(PAGE, left)} more)", palette.muted)


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
        self.open_pages: dict[SelectionKey, int] = {}  # open families: how many members are in the tree

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
        one_pass = _Pass(self, view)
        hosts = {h.name for h in view.hosts}
        top = [(h.key, host_label(h, self.palette), False) for h in view.hosts]
        top += [(("remote", h.name), remote_host_label(h, self.palette), False) for h in view.remote_hosts]
        top += [
            (p.key, process_label(p, self.palette, self.deterministic), False)
            for p in one_pass.by_parent.get(None, [])
            if p.host not in hosts and p.remote is None
        ]
        one_pass.sync(self.root, top)
        wanted = one_pass.wanted
        for key in list(self._node_by_key):
            if key not in wanted:
                self._node_by_key.pop(key, None)
                self._labels.pop(key, None)
        for key in list(self.open_pages):
            if key not in wanted:
                del self.open_pages[key]
        self._restore_cursor(view, keep)

    def place_node(
        self, parent_node: TreeNode[tuple], index: int, key: SelectionKey, label: Text, leaf: bool
    ) -> TreeNode[tuple]:
        """The node for `key`, child number `index` of `parent_node`: kept (relabelled), moved or made."""
        node = self._node_by_key.get(key)
        if node is not None and node.parent is not parent_node:
            self.forget_node(node)
            node.remove()
            node = None
        if node is None:
            return self._make_node(parent_node, key, label, leaf, index if index < len(parent_node.children) else None)
        siblings = parent_node.children
        if index < len(siblings) and siblings[index] is node:
            current = index
        else:
            current = siblings.index(node) if node in siblings else index
        if current != index:
            self.forget_node(node)
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
        else:  # a family opens when asked to (its members are added then)
            node = parent_node.add(label, data=key, expand=key[0] != "family", before=before)
        self._node_by_key[key] = node
        self._labels[key] = label
        return node

    def forget_node(self, node: TreeNode[tuple]) -> None:
        self.forget_node_children(node)
        if node.data is not None:
            self._node_by_key.pop(node.data, None)
            self._labels.pop(node.data, None)

    def forget_node_children(self, node: TreeNode[tuple]) -> None:
        for child in node.children:
            self.forget_node(child)

    def _restore_cursor(self, view: LabView, key: SelectionKey | None) -> None:
        if key is not None and key not in self._node_by_key and key[0] in ("socket", "more"):
            family = self._family_of(view, key)
            if family is not None and family.key in self._node_by_key:
                key = family.key  # a member no longer shown (its family closed, or a page went): the family
        if key is None or key not in self._node_by_key:
            if key is not None and key[0] in ("socket", "family", "more") and ("process", key[1]) in self._node_by_key:
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

    @staticmethod
    def _family_of(view: LabView, key: SelectionKey) -> FamilyView | None:
        if key[0] == "more":
            item = view.find(key)
            return item if isinstance(item, FamilyView) else None
        proc = view.process(key[1])
        if proc is None:
            return None
        sock = view.socket(key[1], key[2])
        found = split_name(sock.name if sock is not None else None)
        return proc.family(found[0]) if found is not None else None

    def open_family(self, key: SelectionKey, at_least: int = PAGE) -> None:
        """Show a family's members (the first `at_least`, rounded up to a page) under its node."""
        node = self._node_by_key.get(key)
        if node is None:
            return
        pages = -(-max(at_least, 1) // PAGE)
        self.open_pages[key] = max(self.open_pages.get(key, 0), pages * PAGE)
        self._reconcile(self.view)
        if not node.is_expanded:
            with self.prevent(Tree.NodeExpanded):
                node.expand()

    def close_family(self, key: SelectionKey) -> None:
        """Take a family's members out of the tree (the node stays, closed)."""
        self.open_pages.pop(key, None)
        node = self._node_by_key.get(key)
        if node is not None:
            self.forget_node_children(node)
            node.remove_children()

    def select_key(self, key: SelectionKey) -> bool:
        node = self._node_by_key.get(key)
        if node is None and key[0] == "socket":  # a member of a closed family: open it as far as the member
            family = self._family_of(self.view, key)
            at = family.position(key) if family is not None else None
            if family is not None and at is not None:
                self.open_family(family.key, at + 1)
                node = self._node_by_key.get(key)
        if node is None:
            return False
        self.selected_key = key
        _ = self.last_line
        self.move_cursor(node)
        self.post_message(self.SelectionChanged(key))
        return True

    @on(Tree.NodeExpanded)
    def _expanded(self, event: Tree.NodeExpanded) -> None:
        key = event.node.data
        if key is not None and key[0] == "family":
            event.stop()
            self.open_family(key)

    @on(Tree.NodeCollapsed)
    def _collapsed(self, event: Tree.NodeCollapsed) -> None:
        key = event.node.data
        if key is not None and key[0] == "family":
            event.stop()
            self.close_family(key)

    @on(Tree.NodeSelected)
    def _selected(self, event: Tree.NodeSelected) -> None:
        key = event.node.data
        if key is not None and key[0] == "family":  # enter opens (or closes) a family, as space does
            event.stop()
            event.node.toggle()
        elif key is not None and key[0] == "more":  # the next page of the family
            event.stop()
            family_key = ("family", *key[1:])
            self.open_family(family_key, self.open_pages.get(family_key, 0) + PAGE)

    @on(Tree.NodeHighlighted)
    def _highlighted(self, event: Tree.NodeHighlighted) -> None:
        event.stop()
        key = event.node.data
        if key is not None and key != self.selected_key:
            self.selected_key = key
            self.post_message(self.SelectionChanged(key))


class _Pass:
    """One reconciliation of the tree with a view: the nodes it wants, made or kept in order."""

    def __init__(self, tree: LabTree, view: LabView) -> None:
        self.tree = tree
        self.view = view
        self.wanted: set[SelectionKey] = set()
        self.by_parent: dict[str | None, list[ProcessView]] = {}
        names = {p.name for p in view.processes}
        for proc in view.processes:
            parent = proc.parent if proc.parent in names else None
            self.by_parent.setdefault(parent, []).append(proc)

    def sync(self, parent_node: TreeNode[tuple], children: list[tuple[SelectionKey, Text, bool]]) -> None:
        tree = self.tree
        keys = {key for key, _, _ in children}
        for existing in list(parent_node.children):
            if existing.data not in keys:
                tree.forget_node(existing)
                existing.remove()
        for index, (key, label, leaf) in enumerate(children):
            self.wanted.add(key)
            node = tree.place_node(parent_node, index, key, label, leaf)
            if key[0] == "family":
                self.family_children(node, key)
            elif key[0] == "host":
                self.host_children(node, key[1])
            elif key[0] == "remote":
                self.remote_children(node, key[1])
            elif not leaf:
                self.process_children(node, key[1])

    def host_children(self, node: TreeNode[tuple], name: str) -> None:
        tree = self.tree
        on_host = [p for p in self.by_parent.get(None, []) if p.host == name]
        self.sync(node, [(p.key, process_label(p, tree.palette, tree.deterministic), False) for p in on_host])

    def remote_children(self, node: TreeNode[tuple], name: str) -> None:
        tree = self.tree
        there = [p for p in self.by_parent.get(None, []) if p.remote is not None and p.remote.name == name]
        self.sync(node, [(p.key, process_label(p, tree.palette, tree.deterministic, True), False) for p in there])

    def family_children(self, node: TreeNode[tuple], key: SelectionKey) -> None:
        """An open family's members, a page at a time, then a "more…" node; none while it is closed."""
        tree = self.tree
        family = self.view.find(key)
        shown = tree.open_pages.get(key)
        if not isinstance(family, FamilyView) or shown is None:
            if node.children:
                tree.forget_node_children(node)
                node.remove_children()
            return
        shown = min(shown, family.count)
        children = [(m.key, socket_label(m, tree.palette, tree.deterministic), True) for m in family.members[:shown]]
        if shown < family.count:
            children.append((("more", *key[1:]), more_label(family, shown, tree.palette), True))
        self.sync(node, children)

    def process_children(self, node: TreeNode[tuple], name: str) -> None:
        tree, view = self.tree, self.view
        proc = view.process(name)
        if proc is None:
            return
        palette, deterministic = tree.palette, tree.deterministic
        children: list[tuple[SelectionKey, Text, bool]] = [
            (thread.key, thread_label(thread, palette, deterministic), True) for thread in proc.threads
        ]
        for entry in proc.entries:
            if isinstance(entry, FamilyView):
                children.append((entry.key, family_label(entry, palette), False))
            else:
                children.append((entry.key, socket_label(entry, palette, deterministic), True))
        children += [
            (sock.key, hidden_label(sock, palette, deterministic), True) for sock in view.hidden if sock.process == name
        ]
        children += [
            (child.key, process_label(child, palette, deterministic), False) for child in self.by_parent.get(name, [])
        ]
        self.sync(node, children)

"""The Inspector: whatever the Lab pane has selected (a socket, or a process)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import ContentSwitcher, Static

from playground.session.view import (
    FamilyView,
    HostView,
    LabView,
    ProcessView,
    RemoteHostView,
    SelectionKey,
    SocketView,
    ThreadView,
)
from playground.session.wire import HiddenSocketView
from widgets.palette import Palette

__all__ = ["Inspector", "EMPTY_HINT"]

EMPTY_HINT = (
    "Select a process or a socket in the Lab pane (↑/↓).\n\n"
    "Quick start: press F2 to connect a pair (server listens, client connects, server accepts),\n"
    "or select server and press n (socket), b (bind), l (listen); then client: n, c (connect)."
)


class Inspector(ContentSwitcher):
    """Shows whatever the Lab pane has selected; widgets here only post what the user asked for."""

    def __init__(self, palette: Palette, keys: dict[str, str], deterministic: bool = False, **kwargs) -> None:
        super().__init__(initial="inspector-empty", **kwargs)
        self.palette = palette
        self.keys = keys
        self.deterministic = deterministic
        self.lab_view = LabView()
        self.selected: SelectionKey | None = None
        self.panels_ready = False

    def compose(self) -> ComposeResult:
        yield Static(EMPTY_HINT, id="inspector-empty")

    def on_mount(self) -> None:
        # The panels (most of the screen's widgets) are built after the first frame.
        self.call_after_refresh(self._build_panels)

    async def _build_panels(self) -> None:
        from widgets.inspector_panels import ProcessPanel, SocketPanel
        from widgets.wire import KernelSocketPanel

        panels = [
            ProcessPanel(self.palette, self.keys, id="process-panel"),
            SocketPanel(self.palette, self.keys, id="socket-panel"),
            KernelSocketPanel(self.palette, id="kernel-panel"),
            Static(id="host-panel"),
            VerticalScroll(Static(id="family-text"), id="family-panel"),
        ]
        for panel in panels:
            panel.display = False
        if not self.is_attached or not self.app.is_running:
            return  # the app is already closing
        await self.mount(*panels)
        self.panels_ready = True
        self.show(self.lab_view, self.selected)

    def set_palette(self, palette: Palette) -> None:
        """New colours for the panels and their queue bars (the app's theme changed)."""
        self.palette = palette
        for panel in self.children:
            if hasattr(panel, "palette"):
                panel.palette = palette
        if not self.panels_ready:  # no queue bars yet (and their module loads after the first frame)
            return
        from widgets.inspector_panels import QueueBar

        for bar in self.query(QueueBar):
            bar.palette = palette
            bar.refresh()

    def show(self, view: LabView, selected: SelectionKey | None) -> None:
        self.lab_view = view
        self.selected = selected
        if not self.panels_ready:
            return
        from widgets.inspector_panels import ProcessPanel, SocketPanel  # loaded by _build_panels already
        from widgets.wire import KernelSocketPanel

        item = view.find(selected)
        thread = item if isinstance(item, ThreadView) else None
        if thread is not None:  # a thread has its process's descriptors, names and dispositions
            item = view.process(thread.process)
        if isinstance(item, SocketView):
            self.current = "socket-panel"
            self.query_one("#socket-panel", SocketPanel).show(item, self.deterministic)
            self._title(f"Inspector · {item.process}.{item.ref}")
        elif isinstance(item, HiddenSocketView):
            self.current = "kernel-panel"
            self.query_one("#kernel-panel", KernelSocketPanel).show(item, self.deterministic)
            self._title(f"Inspector · {item.label} (no descriptor)")
        elif isinstance(item, ProcessView):
            self.current = "process-panel"
            self.query_one("#process-panel", ProcessPanel).show(item, self.deterministic)
            self._title(
                f"Inspector · {item.name}" if thread is None else f"Inspector · {thread.name}, a thread of {item.name}"
            )
        elif isinstance(item, HostView):
            from widgets.host_panel import host_text

            self.current = "host-panel"
            self.query_one("#host-panel", Static).update(host_text(item, self.palette))
            self._title(f"Inspector · host {item.name}")
        elif isinstance(item, RemoteHostView):
            from widgets.host_panel import remote_host_text

            self.current = "host-panel"
            self.query_one("#host-panel", Static).update(remote_host_text(item, self.palette))
            self._title(f"Inspector · remote host {item.name}")
        elif isinstance(item, FamilyView):
            from widgets.family_panel import family_text

            self.current = "family-panel"
            self.query_one("#family-text", Static).update(family_text(item, self.palette))
            self._title(f"Inspector · {item.process}.{item.range_text} ({item.count:,} sockets)")
        else:
            self.current = "inspector-empty"
            self._title("Inspector")

    def _title(self, title: str) -> None:
        """Setting border_title repaints the whole Inspector, even to the same text: only on a change."""
        if self.border_title != title:
            self.border_title = title

    @property
    def socket_panel(self):
        return self.query_one("#socket-panel")

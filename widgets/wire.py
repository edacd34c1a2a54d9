"""The wire on the main screen: packets in the log (and the toggle), the ladder, pcap export,
the Inspector's panel for a socket the kernel keeps with no descriptor, and what the lab ran in.

MainScreen takes `WireActions` as a mixin and `WIRE_BINDINGS` into its bindings.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from playground.session.view import format_address
from widgets.event_log import EventHighlighter, EventsPane
from widgets.palette import Palette

if TYPE_CHECKING:
    from widgets.lab_screen import LabScreen as _Screen  # what the mixin finds on the screen it is mixed into
    from widgets.ladder_view import LadderSaved
else:
    _Screen = object

from playground.session.wire import PACKET_MARK, HiddenSocketView, WireBook, tcp_info_text, timer_text
from widgets.wire_styles import packet_styles

__all__ = ["WIRE_BINDINGS", "KernelSocketPanel", "WireActions", "WireHighlighter"]

WIRE_BINDINGS = [
    Binding(
        "t",
        "wire_show",
        "calls/packets",
        id="sockplay.wire_show",
        tooltip="the log shows calls and packets, calls only, or packets only (cycles)",
    ),
    Binding(
        "d",
        "ladder",
        "ladder",
        id="sockplay.ladder",
        tooltip="the ladder diagram of the selected socket's connection (or the latest one)",
    ),
    Binding(
        "o",
        "export_pcap",
        "save pcap",
        id="sockplay.export_pcap",
        tooltip="write the packets seen so far to a pcap file (Wireshark, tshark)",
    ),
]


class WireHighlighter(EventHighlighter):
    """The event log's colours, with a packet's flags standing out (SYN, FIN, RST, ICMP)."""

    def highlight(self, text: Text) -> None:
        plain = text.plain
        from playground.session.eventbook import MARK_COLUMN

        if len(plain) > MARK_COLUMN and plain[MARK_COLUMN] == PACKET_MARK:
            for start, end, style in packet_styles(plain, self.palette):
                text.stylize(style, start, end)
        super().highlight(text)


class KernelSocketPanel(VerticalScroll):
    """A TCP socket the kernel keeps after its descriptor is gone: state, timer, TCP_INFO."""

    def __init__(self, palette: Palette, **kwargs) -> None:
        super().__init__(**kwargs)
        self.palette = palette

    def compose(self):
        yield Static(id="kernel-title")
        yield Static(id="kernel-body")

    def show(self, sock: HiddenSocketView, deterministic: bool) -> None:
        p = self.palette
        title = Text()
        title.append(f"{sock.label}", p.strong)
        title.append("  no descriptor  tcp  ", p.muted)
        title.append(sock.state, p.warning)
        self.query_one("#kernel-title", Static).update(title)
        body = Text()
        body.append("local ", p.muted)
        body.append(format_address(sock.local, deterministic))
        body.append("  ↔  peer ", p.muted)
        body.append(format_address(sock.peer, deterministic) + "\n")
        body.append("timer ", p.muted)
        body.append(timer_text(sock.timer, sock.expires_ms, deterministic) + "\n", p.accent)
        body.append(tcp_info_text(dict(sock.info), deterministic) + "\n", p.muted)
        body.append(f"retransmit attempts {sock.retrans}\n\n", p.muted)
        body.append(
            "The process closed it; the kernel keeps it until the timer runs out "
            "(sock_diag lists it; no descriptor refers to it).",
            p.muted,
        )
        self.query_one("#kernel-body", Static).update(body)


class WireActions(_Screen):
    """Main-screen actions for the wire (a mixin for MainScreen)."""

    def on_mount(self) -> None:
        pane = self.query_one(EventsPane)
        highlighter = WireHighlighter(pane.highlighter.palette)
        pane.highlighter = highlighter
        pane.log_widget.highlighter = highlighter
        self._announce_network()

    @work(group="wire-network", exit_on_error=False)
    async def _announce_network(self) -> None:
        """Once the lab runs: say what it runs in, and (once) why there is no capture."""
        app = self.sockplay
        await app.lab_ready.wait()
        session = self.session
        if not session.started:
            return
        from widgets.lab_tree import LabTree

        now = time.monotonic_ns()
        if not getattr(app, "deterministic", False):  # differs from machine to machine
            self.query_one(LabTree).border_subtitle = session.wire.network_text
            session.book.note(f"lab network: {session.wire.network_text}", now)
        reason = session.no_capture_reason
        if reason is not None:
            session.book.note(f"no packet capture: {reason}", now, "fault")
            self.notify(reason, title="no packet capture", severity="warning", timeout=10)

    def _export_dir(self) -> Path:
        return Path(getattr(self.app, "export_dir", None) or Path.cwd())

    def _no_capture(self) -> bool:
        session = self.session
        if not session.started:
            self.notify("the lab is still starting", severity="warning")
            return True
        reason = session.no_capture_reason
        if reason is not None:
            self.notify(reason, title="no packet capture", severity="warning")
            return True
        return False

    def action_wire_show(self) -> None:
        pane = self.query_one(EventsPane)
        book = pane.book
        if not isinstance(book, WireBook):
            return
        book.show = book.next_show()
        pane.relist()
        self.notify(
            f"the log shows {'calls and packets' if book.show == 'both' else book.show + ' only'}",
            timeout=2,
        )

    def action_ladder(self) -> None:
        if self._no_capture():
            return
        from widgets.ladder_view import LadderScreen

        recorder = self.session.wire.ladder_recorder()
        if recorder is None:
            return
        ends = None
        selected = getattr(self, "selected", None)
        item = self.lab_view.find(selected) if selected else None
        local, peer = getattr(item, "local", None), getattr(item, "peer", None)
        if local and peer:
            ends = (tuple(local), tuple(peer))
        self.app.push_screen(LadderScreen(recorder, self.palette, ends, self._export_dir()))

    def action_export_pcap(self) -> None:
        if self._no_capture():
            return
        packets = self.session.packets()
        from widgets.ladder_view import export_path  # the ladder's module loads when first needed

        self.write_pcap(packets, export_path(self._export_dir(), "wire", ".pcap"))

    @work(thread=True, exit_on_error=False, group="export")
    def write_pcap(self, packets: list, path: Path) -> None:
        from playground.capture import PcapWriter

        try:
            writer = PcapWriter(str(path))
        except OSError as exc:
            self.post_message(_saved()(str(path), "pcap", exc.strerror or str(exc)))
            return
        try:
            for packet in packets:
                writer.write(packet.wall_ns, packet.frame)
        finally:
            writer.close()
        self.post_message(_saved()(str(path), f"pcap ({len(packets)} packets)"))

    def on_ladder_saved(self, event: LadderSaved) -> None:  # noqa: F821 - a name for readers only  # a mixin: no @on (it needs the metaclass)
        if event.error:
            self.notify(
                f"{event.path}: {event.error}",
                title=f"{event.what} not written",
                severity="error",
            )
            return
        self.last_export = event.path
        self.notify(event.path, title=f"{event.what} written")
        self.session.book.note(f"{event.what} written to {event.path}", time.monotonic_ns())


def _saved() -> type:
    from widgets.ladder_view import LadderSaved

    return LadderSaved

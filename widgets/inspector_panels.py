"""The Inspector's panels: a socket's queues, actions and options; a process's dispositions and actions.

Imported when the panels are built, after the first frame (they hold most of the screen's widgets)."""

from __future__ import annotations

from weakref import WeakKeyDictionary

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Label, Select, Static, Switch

from playground.constants import DISPOSITIONS, O_NONBLOCK_NAME, OPTIONS
from playground.session.families import compact_names
from playground.session.view import ProcessView, SocketView, format_address, format_bytes
from playground.session.wire import timer_text
from widgets.fields import Field
from widgets.messages import DispositionChosen, OptionEdited
from widgets.palette import Palette

__all__ = ["SocketPanel", "ProcessPanel", "QueueBar", "OptionsTable", "SOCKET_ACTIONS", "PROCESS_ACTIONS", "SEND_FLAGS"]

# (action, button label): the label's first word is the key, filled in from the bindings.
SOCKET_ACTIONS = [
    ("bind", "bind"),
    ("listen", "listen"),
    ("connect", "connect"),
    ("accept", "accept"),
    ("read", "read"),
    ("write", "write"),
    ("writev", "writev"),
    ("send", "send"),
    ("recv", "recv"),
    ("shut_rd", "shut RD"),
    ("shut_wr", "shut WR"),
    ("shut_rdwr", "shut RDWR"),
    ("close", "close"),
]
PROCESS_ACTIONS = [
    ("socket", "socket tcp"),
    ("socket_udp", "socket udp"),
    ("fork", "fork"),
    ("waitpid", "waitpid"),
    ("kill", "kill"),
    ("spawn", "spawn"),
]
SEND_FLAGS = ["MSG_NOSIGNAL", "MSG_DONTWAIT", "MSG_PEEK"]
# SO_ERROR is never read (reading clears it); TCP_INFO is shown whole beside the options.
OPTION_NAMES = [name for name in OPTIONS if name not in ("SO_ERROR", "TCP_INFO")] + [O_NONBLOCK_NAME]


class QueueBar(Widget):
    """Bytes queued against the buffer size, as a bar."""

    DEFAULT_CLASSES = "queue-bar"
    queued: reactive[int | None] = reactive(None)
    capacity: reactive[int | None] = reactive(None)

    def __init__(self, label: str, palette: Palette, **kwargs) -> None:
        super().__init__(**kwargs)
        self.label = label
        self.palette = palette

    def render(self) -> Text:
        queued, capacity = self.queued, self.capacity
        text = Text(f"{self.label:<10}", self.palette.muted)
        numbers = f" {format_bytes(queued)} / {format_bytes(capacity)}"
        width = max(4, self.size.width - len(text) - len(numbers) - 2)
        if queued is None or not capacity:
            text.append("▕" + "·" * width + "▏", self.palette.muted)
            text.append(" -" if queued is None else numbers, self.palette.muted)
            return text
        ratio = min(1.0, queued / capacity)
        filled = round(ratio * width)
        if queued and not filled:
            filled = 1
        style = self.palette.success if ratio < 0.5 else self.palette.warning if ratio < 0.9 else self.palette.error
        text.append("▕")
        text.append("█" * filled, style)
        text.append("░" * (width - filled), self.palette.muted)
        text.append("▏")
        text.append(numbers)
        return text


class OptionsTable(Horizontal):
    """Every option: a column of switches and fields holding the kernel's values, and their names.

    One widget per value (not per row) keeps the Inspector light enough to follow the cursor.
    """

    Edited = OptionEdited

    def __init__(self, palette: Palette, **kwargs) -> None:
        super().__init__(**kwargs)
        self.palette = palette
        self.shown: tuple[str, ...] = ()

    @staticmethod
    def kind(option: str) -> str:
        spec = OPTIONS.get(option)
        return spec.kind if spec is not None else "bool"

    @staticmethod
    def summary(option: str) -> str:
        spec = OPTIONS.get(option)
        return spec.summary if spec is not None else "file flag: reads and writes fail with EAGAIN instead of blocking"

    def compose(self) -> ComposeResult:
        with Vertical(id="opt-controls"):
            for option in OPTION_NAMES:
                kind = self.kind(option)
                tip = f"{option}: {self.summary(option)}"
                if kind == "bool":
                    yield Switch(animate=False, id=f"sw-{option}", classes="option-switch", tooltip=tip)
                elif kind == "linger":
                    with Horizontal(id=f"row-{option}", classes="option-linger"):
                        yield Switch(animate=False, id=f"sw-{option}", classes="option-switch", tooltip=tip)
                        yield Field(
                            "0",
                            id=f"in-{option}",
                            restrict=r"[0-9]*",
                            compact=True,
                            classes="option-input linger-secs",
                            tooltip="seconds",
                        )
                else:
                    restrict = r"[0-9.]*" if kind == "timeval" else r"-?[0-9]*"
                    yield Field(
                        "", id=f"in-{option}", restrict=restrict, compact=True, classes="option-input", tooltip=tip
                    )
        yield Static(id="opt-text")

    def _control(self, option: str) -> Widget:
        kind = self.kind(option)
        if kind == "linger":
            return self.query_one(f"#row-{option}")
        return self.query_one(f"#sw-{option}" if kind == "bool" else f"#in-{option}")

    def show(self, options: dict, applicable: list[str]) -> None:
        """Reflect the kernel's values (without posting changes) for the options that apply."""
        shown = tuple(applicable)
        if shown != self.shown:
            for option in OPTION_NAMES:
                control = self._control(option)
                visible = option in shown
                if control.display != visible:
                    control.display = visible
            text = Text(no_wrap=True, overflow="ellipsis")
            for i, option in enumerate(shown):
                if i:
                    text.append("\n")
                text.append(f"{option:<17}", self.palette.strong)
                text.append(self.summary(option), self.palette.muted)
            _set(self.query_one("#opt-text", Static), text, layout=True)
            self.shown = shown
        for option in shown:
            self.show_value(option, options.get(option))

    def show_value(self, option: str, value: object) -> None:
        kind = self.kind(option)
        if kind in ("bool", "linger"):
            on_off = value[0] if isinstance(value, (list, tuple)) else value
            switch = self.query_one(f"#sw-{option}", Switch)
            if switch.value != bool(on_off):
                with switch.prevent(Switch.Changed):
                    switch.value = bool(on_off)
            if kind == "bool":
                return
            value = value[1] if isinstance(value, (list, tuple)) and len(value) > 1 else 0
        field = self.query_one(f"#in-{option}", Input)
        text = f"{value:g}" if isinstance(value, float) else str(value)
        if not field.has_focus and field.value != text:
            field.value = text

    @on(Switch.Changed)
    def _switched(self, event: Switch.Changed) -> None:
        event.stop()
        option = (event.switch.id or "").removeprefix("sw-")
        if self.kind(option) == "linger":
            secs = self.query_one(f"#in-{option}", Input).value.strip() or "0"
            self.post_message(self.Edited(option, f"{{{int(event.value)}, {secs}}}"))
        else:
            self.post_message(self.Edited(option, "1" if event.value else "0"))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        option = (event.input.id or "").removeprefix("in-")
        value = event.value.strip()
        if not value:
            return
        if self.kind(option) == "linger":
            on_off = int(self.query_one(f"#sw-{option}", Switch).value)
            self.post_message(self.Edited(option, f"{{{on_off}, {value}}}"))
        else:
            self.post_message(self.Edited(option, value))


_SHOWN: WeakKeyDictionary[Static, tuple] = WeakKeyDictionary()  # what each Static shows, by _set


def _set(static: Static, content: Text, layout: bool = False) -> None:
    """Update a Static only when its text changes (an update costs a repaint, or a layout)."""
    key = (content.plain, tuple((s.start, s.end, str(s.style)) for s in content.spans))
    if _SHOWN.get(static) != key:
        _SHOWN[static] = key
        static.update(content, layout=layout)


def _action_button(action: str, label: str, keys: dict[str, str]) -> Button:
    key = keys.get(action, "")
    text = f"{key} {label}" if key else label
    return Button(text, id=f"do-{action}", action=f"screen.{action}", compact=True, classes="action-button")


OPTIONS_TITLE = "Options (the kernel's values; changing one runs setsockopt, then getsockopt)"
OBSERVED_OPTIONS_TITLE = "Options (the kernel's values, read from a copy of the program's descriptor; read-only)"


class SocketPanel(VerticalScroll):
    def __init__(self, palette: Palette, keys: dict[str, str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.palette = palette
        self.keys = keys

    def compose(self) -> ComposeResult:
        yield Static(id="sock-title")
        yield Static(id="sock-addresses")
        yield Static(id="sock-tcp")
        yield QueueBar("recv queue", self.palette, id="recv-bar")
        yield QueueBar("send queue", self.palette, id="send-bar")
        with Horizontal(classes="field-row"):
            yield Label("data", classes="field-label")
            yield Field(
                "hello\\n",
                id="data-field",
                compact=True,
                tooltip="text with C escapes (hello\\n), a size (65536 sends that many x), "
                'or script data ("a" * 10); writev splits at |',
            )
            yield Label("size", classes="field-label")
            yield Field("100", id="size-field", type="integer", compact=True, tooltip="bytes to read")
        with Horizontal(classes="flags-row"):
            yield Label("flags", classes="field-label")
            for flag in SEND_FLAGS:
                yield Checkbox(flag, id=f"flag-{flag}", compact=True, classes="flag")
        with Grid(id="socket-actions", classes="actions"):
            for action, label in SOCKET_ACTIONS:
                yield _action_button(action, label, self.keys)
        yield Label(OPTIONS_TITLE, classes="section-title", id="options-title")
        yield OptionsTable(self.palette, id="options")

    def _read_only(self, observed: bool) -> None:
        """An outside program's socket: no data, flags or actions, and options only shown."""
        for widget in self.query(".field-row, .flags-row, #socket-actions"):
            widget.display = not observed
        self.query_one("#options-title", Label).update(OBSERVED_OPTIONS_TITLE if observed else OPTIONS_TITLE)

    def show(self, sock: SocketView, deterministic: bool) -> None:
        p = self.palette
        self._read_only(sock.observed)
        title = Text()
        name = sock.wire_name if sock.observed else f"{sock.process} · {sock.name or 'fd' + str(sock.fd)}"
        title.append(name, p.strong)
        title.append(f"  fd {sock.fd}  {sock.kind}  ", p.muted)
        title.append(sock.shown_state, p.primary)
        if sock.listening:
            title.append("  listening", p.muted)
        _set(self.query_one("#sock-title", Static), title)
        addresses = Text()
        addresses.append("local ", p.muted)
        addresses.append(format_address(sock.local, deterministic))
        addresses.append("  ↔  peer ", p.muted)
        addresses.append(format_address(sock.peer, deterministic))
        _set(self.query_one("#sock-addresses", Static), addresses)
        tcp = sock.tcp or {}
        if sock.is_stream and tcp:
            rtt = "·" if deterministic else f"{tcp.get('rtt', 0)} µs"
            cwnd = "·" if deterministic else tcp.get("snd_cwnd", "-")
            info = f"rtt {rtt}  cwnd {cwnd}  unacked {tcp.get('unacked', '-')}  retrans {tcp.get('total_retrans', '-')}"
            if tcp.get("timer"):  # from sock_diag (playground.session.wire)
                info += f"  timer {timer_text(tcp['timer'], tcp.get('expires_ms', 0), deterministic)}"
        else:
            info = "no TCP state (datagram socket)" if not sock.is_stream else ""
        _set(self.query_one("#sock-tcp", Static), Text(info, p.muted))
        recv_bar = self.query_one("#recv-bar", QueueBar)
        recv_bar.queued, recv_bar.capacity = sock.inq, sock.options.get("SO_RCVBUF")
        send_bar = self.query_one("#send-bar", QueueBar)
        send_bar.queued, send_bar.capacity = sock.outq, sock.options.get("SO_SNDBUF")
        applicable = []
        for option in OPTION_NAMES:
            spec = OPTIONS.get(option)
            if option in sock.options and not (
                spec is not None and ((spec.tcp_only and not sock.is_stream) or (spec.ipv6_only and not sock.is_ipv6))
            ):
                applicable.append(option)
        self.query_one(OptionsTable).show(sock.options, applicable)

    @property
    def data_text(self) -> str:
        return self.query_one("#data-field", Input).value

    @property
    def read_size(self) -> int:
        try:
            return max(0, int(self.query_one("#size-field", Input).value))
        except ValueError:
            return 100

    @property
    def flags(self) -> list[str]:
        return [flag for flag in SEND_FLAGS if self.query_one(f"#flag-{flag}", Checkbox).value]


class ProcessPanel(VerticalScroll):
    DispositionChosen = DispositionChosen

    def __init__(self, palette: Palette, keys: dict[str, str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.palette = palette
        self.keys = keys

    def compose(self) -> ComposeResult:
        yield Static(id="proc-title")
        yield Static(id="proc-info")
        for signame in ("SIGPIPE", "SIGCHLD"):
            with Horizontal(classes="field-row disposition-row"):
                key = self.keys.get(signame.lower(), "")
                yield Label(f"{signame}" + (f" ({key})" if key else ""), classes="field-label disposition-label")
                yield Select(
                    [(d, d) for d in DISPOSITIONS],
                    value="SIG_DFL",
                    allow_blank=False,
                    compact=True,
                    id=f"disp-{signame}",
                    classes="disposition",
                )
        with Grid(id="process-actions", classes="actions"):
            for action, label in PROCESS_ACTIONS:
                yield _action_button(action, label, self.keys)

    def show(self, proc: ProcessView, deterministic: bool) -> None:
        p = self.palette
        title = Text()
        title.append(proc.name, p.strong)
        title.append(f"  pid {'····' if deterministic else proc.pid}  ", p.muted)
        title.append(proc.state, p.success if proc.alive else p.error)
        _set(self.query_one("#proc-title", Static), title)
        info = Text()
        if proc.parent:
            info.append(f"forked from {proc.parent}\n", p.muted)
        names = compact_names(proc.names) or "none yet"
        info.append(f"names  {names}\n", p.muted)
        if proc.children:
            info.append(f"children  {', '.join(proc.children)}\n", p.muted)
        for call in proc.blocked:
            info.append(f"blocked in {call}\n", p.accent)
        info.append(f"sockets  {len(proc.sockets):,}", p.muted)
        _set(self.query_one("#proc-info", Static), info, layout=True)
        for signame in ("SIGPIPE", "SIGCHLD"):
            select = self.query_one(f"#disp-{signame}", Select)
            value = proc.disposition(signame)
            if select.value != value and not select.expanded:
                with select.prevent(Select.Changed):
                    select.value = value
            if select.disabled == proc.alive:
                select.disabled = not proc.alive

    @on(Select.Changed, ".disposition")
    def _chosen(self, event: Select.Changed) -> None:
        event.stop()
        signame = (event.select.id or "").removeprefix("disp-")
        if event.value is not Select.NULL:
            self.post_message(self.DispositionChosen(signame, str(event.value)))

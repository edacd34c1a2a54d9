"""The main screen: Lab pane, Inspector, Event log and command line, and every action as a binding.

Each action writes a script line and runs it like a typed one, so it shows in the log.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Header, Input

from playground.errors import LabError
from playground.script.errors import LineError
from playground.session.lines import COMMON_SIGNALS, DataError, data_expression, fresh_name, writev_expressions
from playground.session.view import LabView, ProcessView, SelectionKey, SocketView
from widgets.command_line import CommandLine
from widgets.event_log import EventsPane
from widgets.inspector import Inspector
from widgets.key_footer import KeyFooter
from widgets.lab_tree import LabTree
from widgets.messages import DispositionChosen, OptionEdited
from widgets.palette import Palette
from widgets.wire import WIRE_BINDINGS, WireActions

__all__ = ["MainScreen", "SOCKET_ACTIONS", "PROCESS_ACTIONS"]

SOCKET_ACTIONS = {
    "bind",
    "listen",
    "connect",
    "accept",
    "read",
    "write",
    "writev",
    "send",
    "recv",
    "shut_rd",
    "shut_wr",
    "shut_rdwr",
    "close",
}
PROCESS_ACTIONS = {"socket", "socket_udp", "fork", "waitpid", "kill", "sigpipe", "sigchld"}
DISPOSITION_CYCLE = {"SIG_DFL": "catch", "catch": "SIG_IGN", "SIG_IGN": "SIG_DFL"}


def _binding(
    key: str, action: str, description: str, tooltip: str, show: bool = True, priority: bool = False
) -> Binding:
    return Binding(key, action, description, show=show, tooltip=tooltip, id=f"sockplay.{action}", priority=priority)


class MainScreen(WireActions, Screen):
    """Everything at once: the lab, the selected thing, the log and the command line."""

    BINDINGS = [
        # A priority binding runs as the key arrives, so keys typed right after ':' land in the
        # command line; in a text field ':' is just typed (check_action says no there).
        _binding(
            "colon", "command", "command", "type any script line (the selected process is the actor)", priority=True
        ),
        _binding("question_mark,f1", "help", "help", "keys and script syntax"),
        _binding("f2", "pair", "connect a pair", "server listens, client connects, server accepts"),
        _binding("n", "socket", "socket", "new TCP socket in the selected process"),
        _binding("u", "socket_udp", "udp socket", "new UDP socket in the selected process"),
        _binding("b", "bind", "bind", "bind the selected socket to loopback, port chosen by the kernel"),
        _binding("l", "listen", "listen", "listen on the selected socket"),
        _binding("c", "connect", "connect", "connect the selected socket to a listening one"),
        _binding("a", "accept", "accept", "accept a connection on the selected listening socket"),
        _binding("r", "read", "read", "read up to the size field's bytes"),
        _binding("w", "write", "write", "write the data field"),
        _binding("v", "writev", "writev", "writev the data field, split at |"),
        _binding("s", "send", "send", "send the data field with the ticked flags"),
        _binding("e", "recv", "recv", "recv the size field's bytes with the ticked flags"),
        _binding("R", "shut_rd", "shut RD", "shutdown(SHUT_RD)"),
        _binding("W", "shut_wr", "shut WR", "shutdown(SHUT_WR): send FIN"),
        _binding("X", "shut_rdwr", "shut RDWR", "shutdown(SHUT_RDWR)"),
        _binding("x", "close", "close", "close the selected socket"),
        _binding("p", "spawn", "spawn", "start a new process"),
        _binding("k", "kill", "kill", "send a signal to the selected process"),
        _binding("f", "fork", "fork", "fork the selected process"),
        _binding("y", "waitpid", "waitpid", "reap an exited child: waitpid(-1, WNOHANG)"),
        _binding("P", "sigpipe", "SIGPIPE", "cycle SIGPIPE: SIG_DFL → catch → SIG_IGN"),
        _binding("C", "sigchld", "SIGCHLD", "cycle SIGCHLD: SIG_DFL → catch → SIG_IGN"),
        _binding("F", "filter", "filter log", "show only the selected process or socket in the log (again: all)"),
        _binding("slash", "search", "search log", "find text in the log"),
        _binding("h", "hex", "hex", "show data in hex too"),
        *WIRE_BINDINGS,
    ]

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    selected: var[SelectionKey | None] = var(None, always_update=True, init=False)

    def __init__(self, palette: Palette, deterministic: bool = False, id: str = "main") -> None:
        super().__init__(id=id)
        self.palette = palette
        self.deterministic = deterministic
        self.lab_view = LabView()

    # Layout.

    def compose(self) -> ComposeResult:
        session = self.app.session  # type: ignore[attr-defined]
        keys = self.key_names()
        yield Header(icon="⇄")
        with Vertical(id="body"):
            with Horizontal(id="top"):
                tree = LabTree(self.palette, self.deterministic, id="lab-tree")
                tree.border_title = "Lab"
                yield tree
                inspector = Inspector(self.palette, keys, self.deterministic, id="inspector")
                inspector.border_title = "Inspector"
                yield inspector
            yield EventsPane(session.book, self.palette, id="events")
        yield CommandLine(self._completion_context, id="command-line")
        yield KeyFooter(self.palette, id="footer")

    def on_mount(self) -> None:
        self.title = "sockplay"
        self.sub_title = "starting the lab…"
        self.query_one(LabTree).focus()

    def _completion_context(self):
        return self.app.session.completion_context(self.actor)  # type: ignore[attr-defined]

    def key_names(self) -> dict[str, str]:
        """action -> the key shown for it (after the user's keymap)."""
        overrides = getattr(self.app, "keymap_overrides", {}) or {}
        names = {}
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            key = overrides.get(binding.id, binding.key).split(",")[0]
            names[binding.action] = self.app.get_key_display(Binding(key, binding.action))
        return names

    def help_rows(self) -> list[tuple[str, str, str]]:
        keys = self.key_names()
        rows = []
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            rows.append((keys[binding.action], f"{binding.description}: {binding.tooltip}", binding.id or ""))
        return rows

    def set_palette(self, palette: Palette) -> None:
        self.palette = palette
        self.query_one(LabTree).set_palette(palette)
        self.query_one(EventsPane).set_palette(palette)
        inspector = self.query_one(Inspector)
        inspector.palette = palette
        for panel in inspector.children:
            if hasattr(panel, "palette"):
                panel.palette = palette  # type: ignore[attr-defined]
        self.query_one(KeyFooter).set_palette(palette)
        for bar in self.query(".queue-bar"):
            bar.palette = palette  # type: ignore[attr-defined]
            bar.refresh()
        inspector.show(self.lab_view, self.selected)

    # State coming down from the app.

    def show_view(self, view: LabView) -> None:
        self.lab_view = view
        subtitle = "real processes · real kernel · loopback" if view.ready else "starting the lab…"
        if self.sub_title != subtitle:
            self.sub_title = subtitle
        self.query_one(LabTree).view = view
        self.query_one(Inspector).show(view, self.selected)
        self._refresh_bindings_if_changed()

    def flush_log(self) -> None:
        self.query_one(EventsPane).flush()

    @on(LabTree.SelectionChanged)
    def _selection_changed(self, event: LabTree.SelectionChanged) -> None:
        self.selected = event.key

    def watch_selected(self, key: SelectionKey | None) -> None:
        self.query_one(Inspector).show(self.lab_view, key)
        self.query_one(CommandLine).actor = key[1] if key else None
        self._refresh_bindings_if_changed()

    def _refresh_bindings_if_changed(self) -> None:
        """Bindings change with the kind of thing selected and whether its process lives."""
        proc = self.selected_process
        state = (self.selected[0] if self.selected else None, proc.alive if proc else None, self.lab_view.ready)
        if state != getattr(self, "_binding_state", None):
            self._binding_state = state
            self.refresh_bindings()

    @property
    def actor(self) -> str | None:
        return self.selected[1] if self.selected else None

    @property
    def selected_process(self) -> ProcessView | None:
        return self.lab_view.process(self.selected[1]) if self.selected else None

    @property
    def selected_socket(self) -> SocketView | None:
        if self.selected and self.selected[0] == "socket":
            return self.lab_view.socket(self.selected[1], self.selected[2])
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "command":
            return not isinstance(self.focused, Input)
        if action in SOCKET_ACTIONS:
            return self.selected_socket is not None
        if action in PROCESS_ACTIONS:
            proc = self.selected_process
            if proc is None:
                return False
            return True if proc.alive else None
        if action in ("spawn", "pair"):
            return True if self.lab_view.ready else None
        return True

    # Running lines.

    @on(CommandLine.Submitted)
    def _typed(self, event: CommandLine.Submitted) -> None:
        self.run_lines([event.text], source="command")

    @work(group="lines")
    async def run_lines(self, lines: list[str], source: str = "action") -> bool:
        """Run lines in order; a refused line stops the rest. Typed lines show their errors in place."""
        for text in lines:
            if not await self._run_one(text, source):
                return False
        return True

    async def _run_one(self, text: str, source: str) -> bool:
        session = self.app.session  # type: ignore[attr-defined]
        command_line = self.query_one(CommandLine)
        actor = self.actor

        def accepted(node) -> None:
            if source == "command":
                command_line.accept(text)
            else:
                command_line.show_hint(f"ran: {text}")

        try:
            await session.run_line(text, actor, accepted)
        except LineError as exc:
            self._refused(text, source, exc.column, exc.message)
            return False
        except LabError as exc:
            self._refused(text, source, None, str(exc))
            return False
        return True

    def _refused(self, text: str, source: str, column: int | None, message: str) -> None:
        command_line = self.query_one(CommandLine)
        if source == "command":
            command_line.show_error(column, message)
        else:
            self.app.session.book.note(f"{text}: {message}", self.app.session.lab.now_ns(), "fault")  # type: ignore
            self.notify(f"{text}\n{message}", title="refused", severity="error", timeout=6)

    def _refuse(self, message: str) -> None:
        self.notify(message, severity="warning", timeout=5)

    # Actions on the selected socket.

    def _socket_line(self, template: str) -> None:
        sock = self.selected_socket
        if sock is None:
            self._refuse("select a socket in the Lab pane first")
            return
        self.run_lines([f"{sock.process}: " + template.format(s=sock.ref)])

    def _data(self) -> str | None:
        try:
            return data_expression(self.query_one(Inspector).socket_panel.data_text)
        except DataError as exc:
            self._refuse(str(exc))
            return None

    def _flags(self) -> str:
        flags = self.query_one(Inspector).socket_panel.flags
        return "|".join(flags)

    def action_bind(self) -> None:
        sock = self.selected_socket
        if sock is not None:
            self._socket_line("bind({s}, [::1]:0)" if sock.is_ipv6 else "bind({s}, 127.0.0.1:0)")

    def action_listen(self) -> None:
        self._socket_line("listen({s}, 8)")

    def action_accept(self) -> None:
        sock = self.selected_socket
        if sock is None:
            return
        proc = self.app.session.lab.processes.get(sock.process)  # type: ignore[attr-defined]
        var = fresh_name("a", proc.names if proc else {})
        self._socket_line(f"{var} = accept({{s}})")

    def action_read(self) -> None:
        self._socket_line(f"read({{s}}, {self.query_one(Inspector).socket_panel.read_size})")

    def action_recv(self) -> None:
        flags = self._flags()
        size = self.query_one(Inspector).socket_panel.read_size
        self._socket_line(f"recv({{s}}, {size}, {flags})" if flags else f"recv({{s}}, {size})")

    def action_write(self) -> None:
        data = self._data()
        if data is not None:
            self._socket_line(f"write({{s}}, {data})")

    def action_send(self) -> None:
        data = self._data()
        if data is None:
            return
        flags = self._flags()
        self._socket_line(f"send({{s}}, {data}, {flags})" if flags else f"send({{s}}, {data})")

    def action_writev(self) -> None:
        try:
            parts = writev_expressions(self.query_one(Inspector).socket_panel.data_text)
        except DataError as exc:
            self._refuse(str(exc))
            return
        self._socket_line(f"writev({{s}}, {', '.join(parts)})")

    def action_shut_rd(self) -> None:
        self._socket_line("shutdown({s}, SHUT_RD)")

    def action_shut_wr(self) -> None:
        self._socket_line("shutdown({s}, SHUT_WR)")

    def action_shut_rdwr(self) -> None:
        self._socket_line("shutdown({s}, SHUT_RDWR)")

    def action_close(self) -> None:
        self._socket_line("close({s})")

    def connect_targets(self, sock: SocketView) -> list[str]:
        """PROC.VAR of every other socket that listens (or, for UDP, is bound) with a known address."""
        lab = self.app.session.lab  # type: ignore[attr-defined]
        targets = []
        for proc in self.lab_view.processes:
            engine_proc = lab.processes.get(proc.name)
            if engine_proc is None or not proc.alive:
                continue
            for other in proc.sockets:
                if other.key == sock.key or other.name is None or other.name not in engine_proc.addresses:
                    continue
                if engine_proc.names.get(other.name) != other.fd:
                    continue
                if (sock.is_stream and other.listening) or (not sock.is_stream and not other.is_stream):
                    targets.append(f"{proc.name}.{other.name}")
        return targets

    def action_connect(self) -> None:
        sock = self.selected_socket
        if sock is None:
            return
        targets = self.connect_targets(sock)
        if len(targets) == 1:
            self._socket_line(f"connect({{s}}, {targets[0]})")
            return

        def chosen(target: str | None) -> None:
            if target:
                self._socket_line(f"connect({{s}}, {target})")

        from widgets.prompt import PromptScreen

        hint = (
            "an address (127.0.0.1:9000) or PROC.VAR"
            if targets
            else ("nothing listens yet: type an address, or make a listening socket first (n, b, l)")
        )
        self.app.push_screen(
            PromptScreen(
                f"connect {sock.process}.{sock.ref} to", targets[0] if targets else "127.0.0.1:", hint, targets
            ),
            chosen,
        )

    # Actions on the selected process.

    def _process_line(self, template: str) -> None:
        proc = self.selected_process
        if proc is None:
            self._refuse("select a process in the Lab pane first")
            return
        self.run_lines([f"{proc.name}: " + template])

    def action_socket(self) -> None:
        self._new_socket("tcp", "s")

    def action_socket_udp(self) -> None:
        self._new_socket("udp", "u")

    def _new_socket(self, kind: str, base: str) -> None:
        proc = self.selected_process
        if proc is None:
            return
        engine_proc = self.app.session.lab.processes.get(proc.name)  # type: ignore[attr-defined]
        var = fresh_name(base, engine_proc.names if engine_proc else {})
        self._process_line(f"{var} = socket({kind})")

    def action_fork(self) -> None:
        lab = self.app.session.lab  # type: ignore[attr-defined]
        self._process_line(f"{fresh_name('child', lab.processes)} = fork()")

    def action_waitpid(self) -> None:
        self._process_line("waitpid(-1, WNOHANG)")

    def _cycle_disposition(self, signame: str) -> None:
        proc = self.selected_process
        if proc is None:
            return
        self._process_line(f"signal({signame}, {DISPOSITION_CYCLE[proc.disposition(signame)]})")

    def action_sigpipe(self) -> None:
        self._cycle_disposition("SIGPIPE")

    def action_sigchld(self) -> None:
        self._cycle_disposition("SIGCHLD")

    @on(DispositionChosen)
    def _disposition(self, event: DispositionChosen) -> None:
        proc = self.selected_process
        if proc is not None and proc.disposition(event.signal) != event.disposition:
            self._process_line(f"signal({event.signal}, {event.disposition})")

    @on(OptionEdited)
    def _option(self, event: OptionEdited) -> None:
        sock = self.selected_socket
        if sock is None:
            return
        prefix = f"{sock.process}: "
        if event.option == "O_NONBLOCK":
            lines = [f"fcntl({sock.ref}, O_NONBLOCK, {event.value})", f"fcntl({sock.ref}, O_NONBLOCK)"]
        else:
            lines = [
                f"setsockopt({sock.ref}, {event.option}, {event.value})",
                f"getsockopt({sock.ref}, {event.option})",
            ]
        self.run_lines([prefix + line for line in lines])

    def action_kill(self) -> None:
        proc = self.selected_process
        if proc is None:
            return
        from widgets.prompt import PromptScreen

        def chosen(signame: str | None) -> None:
            if signame:
                sig = signame.upper()
                sig = sig if sig.startswith("SIG") else "SIG" + sig
                self.run_lines([f"kill {proc.name}" + ("" if sig == "SIGTERM" else f" {sig}")])

        self.app.push_screen(PromptScreen(f"signal to send to {proc.name}", "SIGTERM", "", COMMON_SIGNALS), chosen)

    def action_spawn(self) -> None:
        from widgets.prompt import PromptScreen

        lab = self.app.session.lab  # type: ignore[attr-defined]
        name = fresh_name("peer", lab.processes) if lab is not None else "peer"

        def chosen(value: str | None) -> None:
            if value:
                self.run_lines([f"spawn {value}"])

        self.app.push_screen(
            PromptScreen("name of the new process", name, "lowercase letters, digits, - and _"), chosen
        )

    def action_pair(self) -> None:
        """The first experiment in one key: a listening server and a connected client."""
        lab = self.app.session.lab  # type: ignore[attr-defined]
        if lab is None or "server" not in lab.processes or "client" not in lab.processes:
            self._refuse("connect a pair needs processes named server and client")
            return
        server, client = lab.processes["server"], lab.processes["client"]
        listener = fresh_name("l", server.names)
        conn = fresh_name("c", client.names)
        accepted = fresh_name("a", set(server.names) | {listener})
        self.run_lines(
            [
                f"server: {listener} = socket(tcp)",
                f"server: setsockopt({listener}, SO_REUSEADDR, 1)",
                f"server: bind({listener}, 127.0.0.1:0)",
                f"server: listen({listener}, 8)",
                f"client: {conn} = socket(tcp)",
                f"client: connect({conn}, server.{listener})",
                f"server: {accepted} = accept({listener})",
            ]
        )

    # Log, help, command line.

    def action_command(self) -> None:
        # Focus now, not after the queue: keys typed right after ':' must land in the command line.
        self.set_focus(self.query_one(CommandLine).input)

    def action_help(self) -> None:
        from widgets.help_screen import HelpScreen

        self.app.push_screen(HelpScreen(self.help_rows()))

    def action_filter(self) -> None:
        events = self.query_one(EventsPane)
        if events.book.filter is not None or self.selected is None:
            events.set_filter(None)
        elif self.selected[0] == "socket":
            events.set_filter(self.selected[1], self.selected[2])
        else:
            events.set_filter(self.selected[1])

    def action_search(self) -> None:
        self.query_one(EventsPane).open_search()

    def action_hex(self) -> None:
        self.query_one(EventsPane).toggle_hex()

"""The actions on the selected socket (a mixin for MainScreen): each writes a script line and runs it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from playground.session.lines import DataError, data_expression, writev_expressions
from playground.session.view import SocketView
from widgets.inspector import Inspector
from widgets.messages import OptionEdited

if TYPE_CHECKING:  # what the mixin finds on the screen it is mixed into
    from widgets.lab_screen import LabScreen as _Screen
else:
    _Screen = object

__all__ = ["SOCKET_ACTIONS", "SocketActions"]

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


class SocketActions(_Screen):
    """Main-screen actions on the selected socket (mixed in before LabScreen)."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in SOCKET_ACTIONS:
            return self.selected_socket is not None and not self.selected_socket.observed
        return super().check_action(action, parameters)

    def unavailable_reason(self, action: str) -> str | None:
        sock = self.selected_socket
        if action not in SOCKET_ACTIONS or (sock is not None and not sock.observed):
            return super().unavailable_reason(action)
        key = self.key_names().get(action, action)
        if sock is not None:
            return f"{key} ({action}): {sock.wire_name} is an outside program's socket, watched and never acted on"
        proc = self.selected_process
        if proc is None:
            return f"{key} ({action}) acts on a socket: select one in the Lab pane first"
        if not proc.sockets:
            return f"{key} ({action}) acts on a socket, and {proc.name} has none: make one first (n or u)"
        return f"{key} ({action}) acts on a socket, not on a process: select one of {proc.name}'s sockets (↓)"

    def _socket_line(self, template: str) -> None:
        sock = self.selected_socket
        if sock is None:
            self.refuse("select a socket in the Lab pane first")
            return
        if sock.observed:
            self.refuse(f"{sock.wire_name} is an outside program's socket: it is watched, never acted on")
            return
        self.run_lines([f"{sock.process}: " + template.format(s=sock.ref)])

    @property
    def _socket_panel(self):
        return self.query_one(Inspector).socket_panel

    def _data(self) -> str | None:
        try:
            return data_expression(self._socket_panel.data_text)
        except DataError as exc:
            self.refuse(str(exc))
            return None

    def _flags(self) -> str:
        return "|".join(self._socket_panel.flags)

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
        var = self.session.fresh_var(sock.process, "a")
        self._socket_line(f"{var} = accept({{s}})")

    def action_read(self) -> None:
        self._socket_line(f"read({{s}}, {self._socket_panel.read_size})")

    def action_recv(self) -> None:
        flags = self._flags()
        size = self._socket_panel.read_size
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
            parts = writev_expressions(self._socket_panel.data_text)
        except DataError as exc:
            self.refuse(str(exc))
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
        return self.session.connect_targets(sock, self.lab_view)

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

    def on_option_edited(self, event: OptionEdited) -> None:  # a mixin: no @on (it needs the metaclass)
        sock = self.selected_socket
        if sock is None:
            return
        if sock.observed:
            self.refuse(f"{sock.wire_name} is an outside program's socket: its options are shown, never set")
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

"""The help screen: every key (as currently mapped) and the script syntax in brief."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from playground.calls import CALLS
from playground.constants import OPTIONS

__all__ = ["HelpScreen", "SYNTAX"]

SYNTAX = """\
A line is a directive or a step (the same language as .sockplay scripts):

  spawn NAME              start a process          kill NAME [SIGNAL]   signal it (default SIGTERM)
  sleep SECONDS           wait                     thread NAME in PROC  a thread of PROC (an actor)
  [+DELAY] [ACTOR:] [VAR =] CALL(ARG, ...) [...]

On the command line the actor may be left out: the selected process is meant.
A step ending in ... is expected to block; `ACTOR: ... = OUTCOME` states its outcome later.
An outcome may be stated (= 4, = -1 EPIPE, = killed SIGPIPE): a different one is reported as diverged.

Arguments:  sockets by name (l, a) or fd number · addresses 127.0.0.1:9000, [::1]:9000, server.l
            data "text\\r\\n" with C escapes, "x" * 65536 · options SO_REUSEADDR, SO_LINGER {1, 0}, ...
            how SHUT_RD|SHUT_WR|SHUT_RDWR · flags MSG_NOSIGNAL|MSG_PEEK|MSG_DONTWAIT, WNOHANG

Example:
  server: l = socket(tcp)            server: bind(l, 127.0.0.1:0)      server: listen(l, 8)
  client: c = socket(tcp)            client: connect(c, server.l)      server: a = accept(l)
  client: write(c, "ping\\n")         server: read(a, 100)              client: close(c)
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,question_mark,f1", "close", "close help", id="sockplay.help.close"),
    ]

    def __init__(self, keys: list[tuple[str, str, str]]) -> None:
        super().__init__(classes="help-screen")
        self.keys = keys

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(Text("sockplay — keys", style="bold"), classes="help-title")
            table = Table(box=None, show_header=True, header_style="bold", pad_edge=False, expand=False)
            table.add_column("key", no_wrap=True)
            table.add_column("action")
            table.add_column("binding id", style="dim", no_wrap=True)
            for key, description, binding_id in self.keys:
                table.add_row(key, description, binding_id)
            for key, description in (
                ("ctrl+p", "command palette: every action by name"),
                ("tab / shift+tab", "move between panes and fields"),
                ("ctrl+q", "quit (ends every lab process)"),
            ):
                table.add_row(key, description, "")
            yield Static(table, classes="help-keys")
            yield Static(
                Text('Remap keys in ~/.config/sockplay/keymap.toml:  "sockplay.read" = "ctrl+r"', style="dim"),
                classes="help-note",
            )
            yield Static(Text("Script syntax", style="bold"), classes="help-title")
            yield Static(Text(SYNTAX), classes="help-syntax")
            yield Static(Text("Calls", style="bold"), classes="help-title")
            calls = Table(box=None, show_header=False, pad_edge=False)
            calls.add_column(no_wrap=True)
            calls.add_column()
            for spec in CALLS.values():
                calls.add_row(spec.usage, spec.summary)
            yield Static(calls, classes="help-calls")
            yield Static(Text("Options", style="bold"), classes="help-title")
            options = Table(box=None, show_header=False, pad_edge=False)
            options.add_column(no_wrap=True)
            options.add_column()
            for option in OPTIONS.values():
                options.add_row(option.name, option.summary)
            options.add_row("O_NONBLOCK", "fcntl(fd, O_NONBLOCK, 1): calls fail with EAGAIN instead of blocking")
            yield Static(options, classes="help-options")

    def action_close(self) -> None:
        self.dismiss(None)

"""The lab layout both MainScreen and ReplayScreen show: Lab pane, Inspector, Event log, command line.

`LabScreen` owns the layout, the selection, running script lines (typed or made by an action)
and the log's keys; the actions on a socket and on a process are mixins (socket_actions,
process_actions) that MainScreen composes with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Header, Input

from playground.errors import LabError
from playground.script.errors import LineError
from playground.session.lab_session import LabSession
from playground.session.lines import CompletionContext
from playground.session.view import LabView, ProcessView, SelectionKey, SocketView
from widgets.command_line import CommandLine
from widgets.event_log import EventsPane
from widgets.inspector import Inspector
from widgets.key_footer import KeyFooter
from widgets.lab_tree import LabTree
from widgets.palette import Palette

if TYPE_CHECKING:
    from widgets.app import SockplayApp

__all__ = ["LabScreen", "binding"]


def binding(
    key: str, action: str, description: str, tooltip: str, show: bool = True, priority: bool = False
) -> Binding:
    return Binding(key, action, description, show=show, tooltip=tooltip, id=f"sockplay.{action}", priority=priority)


class LabScreen(Screen):
    """Everything at once: the lab, the selected thing, the log and the command line."""

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    selected: var[SelectionKey | None] = var(None, always_update=True, init=False)

    def __init__(self, palette: Palette, deterministic: bool = False, id: str = "main") -> None:
        super().__init__(id=id)
        self.palette = palette
        self.deterministic = deterministic
        self.lab_view = LabView()
        self._binding_state: tuple | None = None
        self._key_actions: dict[str, str] | None = None

    @property
    def sockplay(self) -> SockplayApp:
        """The app, as the SockplayApp it is (Screen.app is typed as any App)."""
        return cast("SockplayApp", self.app)

    @property
    def session(self) -> LabSession:
        """The app's LabSession: what the panes ask about the lab."""
        return self.sockplay.session

    # Layout.

    def compose(self) -> ComposeResult:
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
            yield EventsPane(self.session.book, self.palette, id="events")
        yield CommandLine(self._completion_context, id="command-line")
        yield KeyFooter(self.palette, id="footer")

    def on_mount(self) -> None:
        self.title = "sockplay"
        self.sub_title = "starting the lab…"
        self.query_one(LabTree).focus()

    def _completion_context(self) -> CompletionContext:
        return self.session.completion_context(self.actor)

    def key_names(self) -> dict[str, str]:
        """action -> the key shown for it (after the user's keymap)."""
        overrides = getattr(self.app, "keymap_overrides", {}) or {}
        names = {}
        for item in self.BINDINGS:
            assert isinstance(item, Binding)
            key = overrides.get(item.id, item.key).split(",")[0]
            names[item.action] = self.app.get_key_display(Binding(key, item.action))
        return names

    def key_actions(self) -> dict[str, str]:
        """key -> action, for every key of every binding (after the user's keymap)."""
        if self._key_actions is None:
            overrides = getattr(self.app, "keymap_overrides", {}) or {}
            self._key_actions = {}
            for item in self.BINDINGS:
                assert isinstance(item, Binding)
                for key in overrides.get(item.id, item.key).split(","):
                    self._key_actions.setdefault(key.strip(), item.action)
        return self._key_actions

    def help_rows(self) -> list[tuple[str, str, str]]:
        keys = self.key_names()
        rows = []
        for item in self.BINDINGS:
            assert isinstance(item, Binding)
            rows.append((keys[item.action], f"{item.description}: {item.tooltip}", item.id or ""))
        return rows

    def set_palette(self, palette: Palette) -> None:
        self.palette = palette
        self.query_one(LabTree).set_palette(palette)
        self.query_one(EventsPane).set_palette(palette)
        self.query_one(Inspector).set_palette(palette)
        self.query_one(KeyFooter).set_palette(palette)
        self.query_one(Inspector).show(self.lab_view, self.selected)

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
        if state != self._binding_state:
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

    # Bindings.

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "command":
            return not isinstance(self.focused, Input)
        return True

    def unavailable_reason(self, action: str) -> str | None:
        """Why `action` cannot run now, in a line for the status line (None: no reason to give)."""
        return None

    def on_key(self, event: events.Key) -> None:
        """A key whose action cannot run now would do nothing at all: say why in the status line."""
        if isinstance(self.focused, Input):
            return
        action = self.key_actions().get(event.key)
        if action is None or self.check_action(action, ()):
            return
        reason = self.unavailable_reason(action)
        if reason is not None:
            self.query_one(CommandLine).show_status(reason)

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
        command_line = self.query_one(CommandLine)
        actor = self.actor

        def accepted(node) -> None:
            if source == "command":
                command_line.accept(text)
            else:
                command_line.show_hint(f"ran: {text}")

        try:
            await self.session.run_line(text, actor, accepted)
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
            self.session.book.note(f"{text}: {message}", self.session.now_ns(), "fault")
            self.notify(f"{text}\n{message}", title="refused", severity="error", timeout=6)

    def refuse(self, message: str) -> None:
        self.notify(message, severity="warning", timeout=5)

    # Log, help, command line.

    def action_command(self) -> None:
        # Focus now, not after the queue: keys typed right after ':' must land in the command line.
        self.set_focus(self.query_one(CommandLine).input)

    def action_help(self) -> None:
        from widgets.help_screen import HelpScreen

        self.app.push_screen(HelpScreen(self.help_rows()))

    def action_filter(self) -> None:
        events_pane = self.query_one(EventsPane)
        if events_pane.book.filter is not None or self.selected is None:
            events_pane.set_filter(None)
        elif self.selected[0] == "socket":
            events_pane.set_filter(self.selected[1], self.selected[2])
        else:
            events_pane.set_filter(self.selected[1])

    def action_search(self) -> None:
        self.query_one(EventsPane).open_search()

    def action_hex(self) -> None:
        self.query_one(EventsPane).toggle_hex()

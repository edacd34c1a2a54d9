"""The command line: any script line, with history, completion, and mistakes shown in place."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.suggester import Suggester
from textual.widgets import Input, Label, Static

from playground.session.lines import CompletionContext, Completions, complete
from widgets.fields import Field

__all__ = ["CommandLine", "ScriptInput", "ScriptSuggester"]

ContextProvider = Callable[[], CompletionContext]
HISTORY_LIMIT = 1000


class ScriptSuggester(Suggester):
    """Suggests the first completion as ghost text (→ accepts it)."""

    def __init__(self, provider: ContextProvider) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.provider = provider

    async def get_suggestion(self, value: str) -> str | None:
        if not value.strip():
            return None
        comps = complete(value, len(value), self.provider())
        if not comps.candidates:
            return None
        word = value[comps.start :]
        first = comps.candidates[0]
        if first.startswith(word) and len(first) > len(word):
            return value[: comps.start] + first
        return None


class ScriptInput(Field):
    BINDINGS = [
        Binding("up", "history(-1)", "previous line", show=False),
        Binding("down", "history(1)", "next line", show=False),
        Binding("tab", "complete", "complete", show=False, priority=True),
        Binding("escape", "leave", "leave the command line", show=False),
    ]

    class Completed(Message):
        def __init__(self, comps: Completions) -> None:
            super().__init__()
            self.comps = comps

    def __init__(self, provider: ContextProvider, **kwargs) -> None:
        super().__init__(suggester=ScriptSuggester(provider), **kwargs)
        self.provider = provider
        self.history: list[str] = []
        self.history_index: int | None = None
        self._draft = ""
        self._cycle: tuple[int, list[str], int, str] | None = None  # (start, candidates, index, before)

    def on_key(self, event: events.Key) -> None:
        # Pressing ':' before every line (vim's habit, and the footer's ": command") must not type
        # it into the empty field: the line would start with ':' and fail to parse.
        if event.key == "colon" and not self.value:
            event.prevent_default()  # Input's own key handler (which inserts it) does not run
            event.stop()

    def remember(self, line: str) -> None:
        if line and (not self.history or self.history[-1] != line):
            self.history.append(line)
            del self.history[:-HISTORY_LIMIT]
        self.history_index = None

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        if self.history_index is None:
            if step > 0:
                return
            self._draft = self.value
            self.history_index = len(self.history) - 1
        else:
            self.history_index += step
        if self.history_index < 0:
            self.history_index = 0
        if self.history_index >= len(self.history):
            self.history_index = None
            self.value = self._draft
        else:
            self.value = self.history[self.history_index]
        self.cursor_position = len(self.value)

    def action_complete(self) -> None:
        if self._cycle is not None and self._cycle[3] == self.value:
            start, candidates, index, _ = self._cycle
            index = (index + 1) % len(candidates)
            head = self.value[:start] + candidates[index]
            tail = self.value[self.cursor_position :]
            self.value = head + tail
            self.cursor_position = len(head)
            self._cycle = (start, candidates, index, self.value)
            return
        comps = complete(self.value, self.cursor_position, self.provider())
        if not comps.candidates:
            self.post_message(self.Completed(comps))
            return
        word = self.value[comps.start : self.cursor_position]
        tail = self.value[self.cursor_position :]
        if len(comps.candidates) == 1:
            insert = comps.candidates[0]
        else:
            prefix = comps.common_prefix()
            insert = prefix if len(prefix) > len(word) else comps.candidates[0]
        head = self.value[: comps.start] + insert
        self.value = head + tail
        self.cursor_position = len(head)
        if len(comps.candidates) > 1:
            index = comps.candidates.index(insert) if insert in comps.candidates else -1
            self._cycle = (comps.start, comps.candidates, index, self.value)
        else:
            self._cycle = None
        self.post_message(self.Completed(comps))  # after the Changed that setting the value posted

    def action_leave(self) -> None:
        tree = self.screen.query("#lab-tree")
        if tree:
            tree.first().focus()


class CommandLine(Vertical):
    """A prompt naming the default actor, the input, and a line for hints and errors."""

    actor: reactive[str | None] = reactive(None)

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, provider: ContextProvider, **kwargs) -> None:
        super().__init__(**kwargs)
        self.provider = provider
        self.error: tuple[int | None, str] | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="command-row"):
            yield Label("›", id="command-prompt")
            yield ScriptInput(
                self.provider,
                placeholder="type a script line, e.g. l = socket(tcp)    (: focuses here · Tab completes · ↑ history)",
                id="command-input",
                compact=True,
            )
        yield Static("", id="command-hint")

    @property
    def input(self) -> ScriptInput:
        return self.query_one(ScriptInput)

    def watch_actor(self, actor: str | None) -> None:
        self.query_one("#command-prompt", Label).update(f"{actor} ›" if actor else "›")

    def show_error(self, column: int | None, message: str) -> None:
        """Show a mistake under the typed text, which stays as typed.

        The cursor stays at the end of the text: a caret under the text marks the column, and
        what is typed next goes after the text, never into the middle of it.
        """
        self.error = (column, message)
        self.add_class("-error")
        hint = self.query_one("#command-hint", Static)
        prompt_width = len(str(self.query_one("#command-prompt", Label).content)) + 1
        if column is not None:
            field = self.input
            offset = prompt_width + max(0, column - 1) - field.scroll_offset.x
            text = Text(" " * max(0, offset) + "^ ", "bold")
            text.append(f"column {column}: {message}")
            hint.update(text)
        else:
            hint.update(Text(" " * prompt_width + message, "bold"))
        self.input.cursor_position = len(self.input.value)

    def show_hint(self, message: str) -> None:
        if self.error is None:
            self.query_one("#command-hint", Static).update(Text(message), layout=False)

    def show_status(self, message: str) -> None:
        """Say why something did not happen, in the hint line, even over an error's caret."""
        self.query_one("#command-hint", Static).update(Text(message, "bold"), layout=False)

    def clear_error(self) -> None:
        if self.error is not None:
            self.error = None
            self.remove_class("-error")
            self.query_one("#command-hint", Static).update("")

    def accept(self, text: str) -> None:
        """The line ran: remember it and empty the field."""
        field = self.input
        field.remember(text)
        if field.value == text:
            field.value = ""
        self.clear_error()

    @on(Input.Submitted, "#command-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value
        if text.lstrip().startswith(":"):
            # ':' before a line (vim's habit, or the footer's ": command") is not part of it: the field
            # shows the line without it, so an error's column points into what the field shows.
            text = text.lstrip().lstrip(":").lstrip()
            self.input.value = text
            self.input.cursor_position = len(text)
        if text.strip():
            self.post_message(self.Submitted(text))

    @on(Input.Changed, "#command-input")
    def _changed(self, event: Input.Changed) -> None:
        self.clear_error()
        if not event.value.strip():
            self.query_one("#command-hint", Static).update("")
            return
        comps = complete(event.value, self.input.cursor_position, self.provider())
        if comps.usage:
            self.show_hint(comps.usage)

    @on(ScriptInput.Completed)
    def _completed(self, event: ScriptInput.Completed) -> None:
        comps = event.comps
        if self.error is not None:
            return
        if len(comps.candidates) > 1:
            shown = "  ".join(c.strip() for c in comps.candidates[:30])
            self.show_hint(shown)
        elif not comps.candidates:
            self.show_hint(comps.usage or "nothing to complete here")
        elif comps.usage:
            self.show_hint(comps.usage)

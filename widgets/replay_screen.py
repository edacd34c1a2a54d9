"""Replay mode: a recording's steps beside the lab and the log, run one by one on a fresh lab.

The steps run through playground.runner.Runner on the app's lab, as `sockplay replay
--check` runs them, in a worker; each row shows the recorded line and, once it ran, the
live one, and a divergence is marked. Taking over hands the lab to the user: the session
recording (which has followed the replay from its first line) goes on with what they do.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Label, ListItem, ListView, OptionList, Static
from textual.widgets.option_list import Option

from playground.exit_codes import EXIT_USAGE
from playground.recording import read_header, wait_before
from playground.recording_list import list_sessions
from playground.replay import (
    beyond_loopback,
    environment_notes,
    kernel_notes,
    load_recording,
    recorded_gaps,
    scaled,
)
from playground.runner import DEFAULT_STEP_TIMEOUT, Runner, StepReport
from playground.script.errors import ScriptError
from playground.script.format import format_node
from playground.script.model import Line, Repeat
from widgets.main_screen import PROCESS_ACTIONS, SOCKET_ACTIONS, MainScreen
from widgets.palette import Palette
from widgets.palette_match import score

__all__ = [
    "NetworkConfirmScreen",
    "RecordingCommands",
    "ReplayScreen",
    "ReplaySource",
    "SessionPickerScreen",
    "StepRow",
]

# Lines the user runs by hand: refused until they take over.
MANUAL_ACTIONS = SOCKET_ACTIONS | PROCESS_ACTIONS | {"command", "spawn", "pair"}
_MODE_NUMBERS = itertools.count(1)  # each recording opened from the live TUI gets an app mode of its own
REPLAY_ACTIONS = {"replay_step", "replay_to_selected", "replay_all", "replay_restart", "replay_take_over"}


def _binding(key: str, action: str, description: str, tooltip: str) -> Binding:
    return Binding(key, action, description, tooltip=tooltip, id=f"sockplay.{action}")


REPLAY_BINDINGS = [
    _binding("f5", "replay_step", "step", "run the next line of the recording"),
    _binding("f6", "replay_to_selected", "run to line", "run up to and including the selected line"),
    _binding("f7", "replay_all", "run all", "run every remaining line"),
    _binding("f8", "replay_restart", "restart", "start again on a fresh lab"),
    _binding("f9", "replay_take_over", "take over", "stop replaying and go on by hand (recorded as a new session)"),
]


@dataclass
class ReplaySource:
    """What to replay and how."""

    path: Path
    speed: float = 1.0
    fresh_lab: bool = False  # the app's lab already ran something (opened from the live TUI)


class StepRow(ListItem):
    """One line of the recording: as recorded and, once it ran, as it ran live."""

    def __init__(self, index: int, line: Line) -> None:
        super().__init__(classes="replay-step")
        self.index = index
        self.line = line
        self.recorded = line.text.strip() if isinstance(line.node, Repeat) else format_node(line.node)
        self.live: str | None = None
        self.why: str | None = None
        self.state = "waiting"  # waiting -> next -> ok | diverged
        self.label = Static(self._text(), classes="replay-step-text")

    def compose(self) -> ComposeResult:
        yield self.label

    def show(self, state: str, live: str | None = None, why: str | None = None) -> None:
        self.state, self.live, self.why = state, live, why
        for name in ("waiting", "next", "ok", "diverged"):
            self.set_class(name == state, f"-{name}")
        self.label.update(self._text())

    def _text(self) -> Text:
        mark = {"waiting": " ", "next": "▶", "ok": "✓", "diverged": "✗"}[self.state]
        text = Text(f"{mark} {self.line.number:>3}  ", style="bold")
        text.append(self.recorded)
        if self.live is not None:
            text.append("\n       live: ", style="dim")
            text.append(self.live)
        if self.why:
            text.append(f"\n       ✗ DIVERGES: {self.why}", style="bold")
        return text

    @property
    def plain(self) -> str:
        return self._text().plain


class ReplayScreen(MainScreen):
    """The main screen plus the recording's steps, with keys to step, run, restart and take over."""

    CSS_PATH = str(Path(__file__).with_name("replay.tcss"))
    BINDINGS = [*MainScreen.BINDINGS, *REPLAY_BINDINGS]

    class StepsRan(Message):
        """The worker ran lines of the recording (reports in order; `index` the row they belong to)."""

        def __init__(self, index: int, reports: list[StepReport]) -> None:
            super().__init__()
            self.index = index
            self.reports = reports

    class Ready(Message):
        """A fresh lab is up and the rows are reset: stepping may start."""

    def __init__(
        self, palette: Palette, source: ReplaySource, deterministic: bool = False, screen_id: str = "replay"
    ) -> None:
        super().__init__(palette, deterministic, id=screen_id)
        self.source = source
        self.script = load_recording(str(source.path))
        self.runnable = scaled(self.script, source.speed)
        self.header = read_header(self.script.header_comments)
        longest, outcome_wait = recorded_gaps(self.script)
        self.step_timeout = max(DEFAULT_STEP_TIMEOUT, outcome_wait * 1.5 + 2.0)
        self.kernel_notes = kernel_notes(self.header)
        self.next_index = 0
        self.target = -1  # the last line asked for (keys pressed while lines run add to it)
        self.taken_over = False
        self.ready = False
        self.busy = False
        self.runner: Runner | None = None
        self.rows = [StepRow(i, line) for i, line in enumerate(self.script.lines)]

    # Layout.

    # LabScreen's on_mount runs too (Textual calls each class's handler and awaits the async ones).
    async def on_mount(self) -> None:  # type: ignore[override]
        panel = Vertical(
            Static(self._info(), id="replay-info"), ListView(*self.rows, id="replay-steps"), id="replay-panel"
        )
        panel.border_title = f"Replay · {self.source.path.name}"
        await self.query_one("#top").mount(panel, before=0)
        self.query_one("#replay-steps", ListView).focus()
        self.title = self.title_text("")
        for note in self.kernel_notes:
            self.notify(note, title="a different kernel", severity="warning", timeout=10)
            self.session.book.note(note, self.session.now_ns(), "notice")
        reaching = beyond_loopback(self.script)
        if reaching and not self.session.allow_network:
            self.app.push_screen(NetworkConfirmScreen(str(self.source.path), reaching), self._network_answer)
        else:
            self.prepare(fresh=self.source.fresh_lab)

    def _network_answer(self, allowed: bool | None) -> None:
        if not allowed:
            self.app.exit(EXIT_USAGE)
            return
        self.session.allow_network = True
        self.prepare(fresh=True)

    def _info(self) -> Text:
        text = Text()
        done = min(self.next_index, len(self.rows))
        text.append(f"{done}/{len(self.rows)} lines run", style="bold")
        diverged = sum(1 for row in self.rows if row.state == "diverged")
        if diverged:
            text.append(f" · ✗ {diverged} diverged", style="bold red")
        if self.source.speed != 1.0:
            text.append(f" · speed {self.source.speed:g}")
        if self.taken_over:
            text.append(" · taken over: you have the lab", style="bold")
        if self.script.truncated is not None:
            text.append(f"\nline {self.script.truncated} is cut off: left out")
        for note in self.kernel_notes:
            text.append(f"\n⚠ {note}", style="yellow")
        status = self.sockplay.recording.status() if self.taken_over else ""
        if status:
            text.append(f"\n{status}")
        return text

    def title_text(self, status: str) -> str:
        """The title: what is replayed, and once taken over, where the new session is recorded."""
        if self.taken_over:
            return f"sockplay · {status}" if status else "sockplay"
        return f"sockplay · replay of {self.source.path.name}"

    def _update_info(self) -> None:
        self.query_one("#replay-info", Static).update(self._info())

    # Bindings.

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in REPLAY_ACTIONS:
            if not self.ready:
                return None
            if action == "replay_restart":
                return True
            if self.taken_over:
                return None
            if action == "replay_take_over":
                return True
            return None if self.target >= len(self.rows) - 1 else True
        if action in MANUAL_ACTIONS and not self.taken_over:
            return None
        return super().check_action(action, parameters)

    def unavailable_reason(self, action: str) -> str | None:
        if action in MANUAL_ACTIONS and not self.taken_over:
            key = self.key_names().get("replay_take_over", "f9")
            return f"the recording has the lab: take over ({key}) to act by hand"
        return super().unavailable_reason(action)

    def action_replay_step(self) -> None:
        self.run_until(self.target + 1)

    def action_replay_to_selected(self) -> None:
        selected = self.query_one("#replay-steps", ListView).index
        self.run_until(self.target + 1 if selected is None else selected)

    def action_replay_all(self) -> None:
        self.run_until(len(self.rows) - 1)

    def action_replay_restart(self) -> None:
        self.prepare(fresh=True)

    def action_replay_take_over(self) -> None:
        self.workers.cancel_group(self, "replay")
        self.busy = False
        self.taken_over = True
        recording = self.sockplay.recording
        recording.keep = True
        recording.note(f"taken over by hand after line {self._last_line()} of a replay of {self.source.path}")
        where = recording.status() or "not recording"
        self.notify(f"The lab is yours: go on by hand. {where}", title="taken over", timeout=8)
        self._update_info()
        self.sockplay.show_recording()
        self.refresh_bindings()
        self.query_one("#lab-tree").focus()

    def _last_line(self) -> int:
        return self.rows[self.next_index - 1].line.number if self.next_index else 0

    # Running.

    @work(group="replay", exclusive=True, exit_on_error=False)
    async def prepare(self, fresh: bool) -> None:
        """Wait for the lab (a fresh one, if asked), start recording it, and reset the rows."""
        app = self.sockplay
        self.ready = False
        self.refresh_bindings()
        await app.lab_ready.wait()
        session = app.session
        recording = app.recording
        if fresh:
            recording.close()
            await session.restart()
            session.book.note(f"a fresh lab for the replay of {self.source.path.name}", session.now_ns(), "notice")
        session.start_recording(recording, {"replay-of": str(self.source.path)})
        recording.keep = False  # kept only if the user takes over
        kind, sysctls = session.environment()
        for note in environment_notes(self.header, kind, sysctls):
            session.book.note(note, session.now_ns(), "notice")
        session.forbid_exec()  # a recording's outside programs never run here, --allow-exec or not
        self.runner = session.new_runner(self.step_timeout)
        await app.refresh_lab()
        self.post_message(self.Ready())

    @on(Ready)
    def _ready(self) -> None:
        self.next_index = 0
        self.target = -1
        self.taken_over = False
        self.busy = False
        self.ready = True
        for row in self.rows:
            row.show("waiting")
        if self.rows:
            self.rows[0].show("next")
        self._update_info()
        self.refresh_bindings()

    def run_until(self, last: int) -> None:
        """Run lines up to `last` (while lines run, this moves where they stop)."""
        if not self.ready or self.taken_over:
            return
        self.target = max(self.target, min(last, len(self.rows) - 1))
        if not self.busy and self.next_index <= self.target:
            self.busy = True
            self._run_lines(self.next_index)
        self.refresh_bindings()

    @work(group="replay", exclusive=True, exit_on_error=False)
    async def _run_lines(self, first: int) -> None:
        runner = self.runner
        assert runner is not None
        index = first
        try:
            while index <= self.target and not self.taken_over:
                line = self.runnable.lines[index]
                pause = wait_before(line.leading) * self.source.speed
                if pause > 0:
                    await asyncio.sleep(pause)
                if isinstance(line.node, Repeat):
                    reports = await runner.run_repeat(line, keep_last=3)
                else:
                    reports = [await runner.run_line(line)]
                self.post_message(self.StepsRan(index, reports))
                index += 1
        finally:
            self.post_message(self.StepsRan(-1, []))

    @on(StepsRan)
    def _steps_ran(self, event: StepsRan) -> None:
        if event.index < 0:
            self.busy = False
            if self.ready and not self.taken_over and self.next_index <= self.target:
                self.run_until(self.target)  # asked for more just as the worker ended
            self.refresh_bindings()
            return
        if self.taken_over:
            return
        row = self.rows[event.index]
        bad = [r for r in event.reports if r.divergence or r.error]
        live = "\n             ".join(r.text for r in event.reports[-3:]) if event.reports else "(nothing ran)"
        if bad:
            first = bad[0]
            row.show("diverged", live, first.divergence or f"could not run: {first.error}")
        else:
            row.show("ok", live)
        self.next_index = event.index + 1
        if self.next_index < len(self.rows):
            self.rows[self.next_index].show("next")
            steps = self.query_one("#replay-steps", ListView)
            if steps.index is None or steps.index <= event.index:
                steps.index = self.next_index
        self._update_info()
        self.sockplay.want_refresh()


class NetworkConfirmScreen(ModalScreen[bool]):
    """Asks before a recording that reaches beyond loopback runs."""

    CSS_PATH = str(Path(__file__).with_name("replay.tcss"))
    BINDINGS = [Binding("escape", "cancel", "cancel", id="sockplay.network.cancel")]

    def __init__(self, path: str, reaching: list[tuple[int, str]]) -> None:
        super().__init__(classes="prompt-screen")
        self.path = path
        self.reaching = reaching

    def compose(self) -> ComposeResult:
        lines = [f"line {number}: would {what}" for number, what in self.reaching[:5]]
        if len(self.reaching) > 5:
            lines.append(f"… and {len(self.reaching) - 5} more")
        with Vertical(id="network-box"):
            yield Label(f"{self.path} reaches beyond loopback", id="network-title")
            yield Static("\n".join(lines), id="network-lines")
            yield Label("sockplay stays on 127.0.0.1 and ::1 unless you trust this recording.")
            with Horizontal(id="network-buttons"):
                yield Button("Run it anyway", id="network-allow", variant="warning")
                yield Button("Don't run it", id="network-deny", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#network-deny", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "network-allow")

    def action_cancel(self) -> None:
        self.dismiss(False)


class SessionPickerScreen(ModalScreen[Path | None]):
    """The recordings in the sessions directory, newest first; Enter opens one."""

    CSS_PATH = str(Path(__file__).with_name("replay.tcss"))
    BINDINGS = [Binding("escape", "cancel", "cancel", id="sockplay.sessions.cancel")]

    def __init__(self, directory: Path | None = None) -> None:
        super().__init__(classes="prompt-screen")
        self.sessions = [info for info in list_sessions(directory) if info.error is None]

    def compose(self) -> ComposeResult:
        with Vertical(id="sessions-box"):
            yield Label(
                "Open a recording in replay mode" if self.sessions else "No recordings yet", id="sessions-title"
            )
            options = []
            for info in self.sessions:
                when = info.started.astimezone().strftime("%Y-%m-%d %H:%M:%S") if info.started else "?"
                options.append(
                    Option(
                        f"{when}  {info.steps or 0:>4} steps  {info.kernel or '?'}  {info.path.name}", id=str(info.path)
                    )
                )
            yield OptionList(*options, id="sessions-list")

    def on_mount(self) -> None:
        self.query_one("#sessions-list", OptionList).focus()

    @on(OptionList.OptionSelected, "#sessions-list")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(Path(event.option.id or ""))

    def action_cancel(self) -> None:
        self.dismiss(None)


async def open_recording(app, path: Path) -> None:
    """Switch the app to replay mode on `path`: a mode of its own, on a fresh lab.

    The live session's recording is kept; its screen stays in the default mode.
    """
    try:
        source = ReplaySource(path, fresh_lab=True)
        load_recording(str(path))
    except (OSError, ScriptError) as exc:
        app.notify(str(exc), title="cannot open the recording", severity="error", timeout=8)
        return
    mode = f"replay-{next(_MODE_NUMBERS)}"
    app.add_mode(mode, lambda: ReplayScreen(app.palette, source, app.deterministic, screen_id=mode))
    await app.switch_mode(mode)


class RecordingCommands(Provider):
    """The palette's entry for opening a recording."""

    TITLE = "open recording"
    HELP = "list the recorded sessions, newest first, and replay one step by step · key ctrl+o"

    async def discover(self) -> Hits:
        yield DiscoveryHit(self.TITLE, self._open, help=self.HELP)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        found = score(matcher, query, self.TITLE, f"sessions replay recording {self.HELP}")
        if found > 0:
            yield Hit(found, matcher.highlight(self.TITLE), self._open, text=self.TITLE, help=self.HELP)

    async def _open(self) -> None:
        await self.app.run_action("open_recording")

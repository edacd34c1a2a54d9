"""SockplayApp: the playground's TUI on top of the engine (playground.lab).

The app owns one LabSession. Engine events arrive in the app's own event loop; the
log takes them in batches, and the Lab pane and Inspector follow `inspect()` snapshots
taken on a short timer and after each call.
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import os
import signal
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, cast

from textual.app import App
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.reactive import var
from textual.theme import Theme

from playground.errors import LabError
from playground.events import CallDone, Event, ProcessEnded, ProcessReaped, ProcessStarted, SignalCaught
from playground.script.errors import LineError
from playground.session.gc_pacing import CollectorPacing
from playground.session.lab_session import DEFAULT_PROCESSES, LabSession
from playground.session.recording import SessionRecording
from playground.session.terminal_watch import input_fd, terminal_gone
from playground.session.view import LabView
from widgets.lesson_mode import LESSON_BINDINGS, LessonMode
from widgets.main_screen import MainScreen
from widgets.palette import Palette, palette_from_variables
from widgets.textual_internals import bound_style_cache, keep_strips_acyclic

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel

    from widgets.replay_screen import ReplaySource

__all__ = ["SockplayApp", "keymap_file", "load_keymap", "run_replay"]

POLL_INTERVAL = 0.25  # seconds between inspect() snapshots when nothing happens
UI_TICK = 0.1  # the log's batched writes and the panes' new snapshot land together, in one frame
# While calls stream in (more than STREAM_EVENTS events since the last tick), the tick's news lands
# this often instead: each time is a frame that redraws the whole log, and the fewer such frames,
# the sooner a key press finds the event loop free.
STREAM_TICK = 0.2
REFRESH_GAP = 0.1  # at most one snapshot per this many seconds after a call
# While calls stream in (more than STREAM_EVENTS events in a REFRESH_GAP), snapshots are further
# apart: each one repaints the Lab pane and the Inspector, and the frame that does is one of the
# costliest the app draws.
STREAM_REFRESH_GAP = 0.25
STREAM_EVENTS = 20
NOTIFY_BURST = 4  # notifications allowed per NOTIFY_WINDOW; the log keeps the rest
NOTIFY_WINDOW = 2.0
TERMINAL_CHECK = 1.0  # seconds between checks that the terminal is still there
HINT = [
    "server and client are real processes; each call goes to the kernel.",
    "Try F2: server listens, client connects, server accepts.",
    "Or select a process (↑↓): n socket, b bind, l listen, c connect,",
    "a accept, w write, r read, x close.  ? help · : type a script line",
]


def _sockplay_commands():
    """The palette's provider, imported when the palette first opens (textual.command is not small)."""
    from widgets.palette_commands import SockplayCommands

    return SockplayCommands


def _host_commands():
    from widgets.host_commands import HostCommands

    return HostCommands


def _lesson_commands():
    from widgets.lesson_commands import LessonCommands

    return LessonCommands


def _recording_commands():
    """The palette's "open recording" entry (replay mode loads when first asked for)."""
    from widgets.replay_screen import RecordingCommands

    return RecordingCommands


def keymap_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "sockplay" / "keymap.toml"


def load_keymap(path: Path | None = None) -> dict[str, str]:
    """Binding id -> keys, from a TOML file of `"sockplay.read" = "ctrl+r"` lines (missing file: none)."""
    path = path or keymap_file()
    try:
        text = path.read_text()
    except OSError:
        return {}
    import tomllib  # only when there is a keymap to read

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return {}
    return {str(k): str(v) for k, v in data.items() if isinstance(v, str)}


class SockplayApp(LessonMode, App[int]):
    """A split-pane playground for live sockets."""

    CSS_PATH = [str(Path(__file__).with_name("app.tcss")), str(Path(__file__).with_name("wire.tcss"))]
    TITLE = "sockplay"
    COMMANDS = App.COMMANDS | {
        lambda: _sockplay_commands(),
        lambda: _lesson_commands(),
        lambda: _recording_commands(),
        lambda: _host_commands(),
    }
    BINDINGS = [
        Binding("ctrl+q", "quit", "quit", priority=True, id="sockplay.quit", tooltip="quit: ends every lab process"),
        Binding(
            "ctrl+o",
            "open_recording",
            "open recording",
            id="sockplay.open_recording",
            show=False,
            tooltip="list the recorded sessions, newest first, and replay one step by step",
        ),
        *LESSON_BINDINGS,
    ]

    lab_view: var[LabView] = var(LabView)

    def __init__(
        self,
        allow_network: bool = False,
        *,
        deterministic: bool = False,
        default_lab: bool = True,
        keymap: dict[str, str] | None = None,
        poll_interval: float = POLL_INTERVAL,
        pcap: str | None = None,
        host_network: bool = False,
        record: bool = True,
        record_path: str | Path | None = None,
        replay: ReplaySource | None = None,
        first_lines: tuple[str, ...] = (),
    ) -> None:
        """`deterministic` hides what differs from run to run (pids, ports, times) for snapshots;
        `first_lines` run once the lab is up (`sockplay trace` starts its program so)."""
        super().__init__()
        bound_style_cache()
        keep_strips_acyclic()
        self.session = LabSession(allow_network, deterministic, pcap=pcap, host_network=host_network)
        self.deterministic = deterministic
        self.default_lab = default_lab and replay is None
        self.first_lines = first_lines
        self.attach_to: tuple[str, int] | None = None  # (name, pid): `sockplay trace -p PID` watches that process
        # Every session is recorded (`record_path` None: the sessions directory); `replay` opens replay mode.
        self.recording = SessionRecording(record, record_path)
        self.recording.on_change = self.show_recording
        self.replay = replay
        self.keymap_overrides = load_keymap() if keymap is None else dict(keymap)
        self.poll_interval = poll_interval
        self.lab_ready = asyncio.Event()
        self._palette: Palette | None = None
        self._refresh_wanted = asyncio.Event()
        self._notified: deque[float] = deque()
        self._view_stale = False
        self._atexit_registered = False
        self.collector_pacing = CollectorPacing()
        self._events_seen = 0  # engine events so far (the tick tells a stream from a quiet lab)
        self._events_at_tick = 0
        self._ticked_at = 0.0
        if deterministic:
            self.animation_level = "none"

    # Life cycle.

    @property
    def palette(self) -> Palette:
        if self._palette is None:
            self._palette = palette_from_variables(self.get_css_variables())
        return self._palette

    def get_default_screen(self) -> MainScreen:
        if self.replay is not None:
            from widgets.replay_screen import ReplayScreen

            return ReplayScreen(self.palette, self.replay, self.deterministic)
        return MainScreen(self.palette, self.deterministic)

    @property
    def main_screen(self) -> MainScreen:
        return cast("MainScreen", self.screen_stack[0])  # the first screen, under any pushed

    # Textual calls each class's on_mount (LessonMode's too) and awaits the async ones: mypy sees an override.
    async def on_mount(self) -> None:  # type: ignore[override]
        if self.keymap_overrides:
            self.set_keymap(self.keymap_overrides)
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self.set_interval(UI_TICK, self._tick)
        # The lab starts after the first frame: the screen is up while the processes spawn.
        self.call_after_refresh(self.run_worker, self._boot(), group="boot", exit_on_error=False)
        self.call_after_refresh(gc.enable)  # `sockplay` turns it off while the app loads (cli.tui_command)

    async def _boot(self) -> None:
        await self.session.start()
        if self.replay is None:  # replay mode records from its own fresh lab
            self.session.start_recording(self.recording)
        self.session.on_event = self._lab_event
        self._install_guards()
        self.run_worker(self._refresh_loop(), group="inspect", exit_on_error=False)
        self.set_interval(self.poll_interval, self.want_refresh)
        now = time.monotonic_ns()
        if self.default_lab:
            for line in HINT:
                self.session.book.note(line, now)
            await self.session.spawn_defaults(DEFAULT_PROCESSES)
        for line in self.first_lines:
            try:
                await self.session.run_line(line)
            except (LineError, LabError) as exc:
                self.session.book.note(f"{line}: {exc}", time.monotonic_ns(), "fault")
        if self.attach_to is not None:
            try:
                await self.session.attach(*self.attach_to)
            except LabError as exc:
                self.session.book.note(f"cannot watch pid {self.attach_to[1]}: {exc}", time.monotonic_ns(), "fault")
        await self.refresh_lab()
        self.lab_ready.set()
        self.refresh_bindings()

    def _install_guards(self) -> None:
        """Quitting or the terminal closing must end every lab process."""
        if not self.session.started:
            return
        atexit.register(self.session.kill_all_now)
        self._atexit_registered = True
        if not self.is_headless:
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGHUP, signal.SIGTERM):
                try:
                    loop.add_signal_handler(signum, self._terminated)
                except (ValueError, RuntimeError, NotImplementedError):
                    pass
            terminal = input_fd()
            if terminal is not None:  # a terminal can also vanish without a SIGHUP
                self.set_interval(TERMINAL_CHECK, lambda: self._terminated() if terminal_gone(terminal) else None)

    def _terminated(self) -> None:
        """SIGHUP (the terminal closed) or SIGTERM: quit; on_unmount shuts the lab down and reaps it."""
        self.exit(1)

    async def on_unmount(self) -> None:
        self.collector_pacing.release()
        self.recording.close()
        await self.session.shutdown()
        if self._atexit_registered:
            atexit.unregister(self.session.kill_all_now)
            self._atexit_registered = False

    async def action_quit(self) -> None:
        self.recording.close()
        await self.session.shutdown()
        self.exit(0)

    # Following the lab.

    def want_refresh(self) -> None:
        self._refresh_wanted.set()

    async def _refresh_loop(self) -> None:
        while True:
            await self._refresh_wanted.wait()
            self._refresh_wanted.clear()
            await self.refresh_lab(show_now=False)
            seen = self._events_seen
            await asyncio.sleep(REFRESH_GAP)
            if self._events_seen - seen > STREAM_EVENTS:
                await asyncio.sleep(STREAM_REFRESH_GAP - REFRESH_GAP)

    async def refresh_lab(self, show_now: bool = True) -> None:
        """Take an inspect() snapshot; show it now, or at the next tick."""
        if not self.session.started:
            return
        await self.session.refresh()
        if show_now:
            self.lab_view = self.session.view()
        else:
            self._view_stale = True

    def _tick(self) -> None:
        """One frame's worth of news: the latest snapshot and the log lines written since the last tick."""
        if not self.is_running:
            return
        now = time.monotonic()
        streaming = self._events_seen - self._events_at_tick > STREAM_EVENTS
        if streaming and now - self._ticked_at < STREAM_TICK and not self.deterministic:
            return
        self._ticked_at = now
        if self._view_stale:
            self._view_stale = False
            self.lab_view = self.session.view()
        screen = self.screen_stack[0] if self.screen_stack else None
        if isinstance(screen, MainScreen) and screen.is_mounted and self.is_running:
            try:
                screen.flush_log()
            except NoMatches:  # the screen is being taken down
                pass
        busy = self._events_seen != self._events_at_tick
        self._events_at_tick = self._events_seen
        self.collector_pacing.tick(busy)

    def watch_lab_view(self, view: LabView) -> None:
        if self.screen_stack:
            screen = self.screen_stack[0]
            if isinstance(screen, MainScreen) and screen.is_mounted and self.is_running:
                try:
                    screen.show_view(view)
                except NoMatches:  # the screen is being taken down
                    pass

    def _lab_event(self, event: Event) -> None:
        """Every engine event, in the event loop: cheap work only (the log batches itself)."""
        self._events_seen += 1
        if isinstance(event, CallDone):
            self._refresh_wanted.set()
            outcome = event.result.outcome
            if outcome.signals and outcome.death is None:
                self._announce(
                    f"{event.process} caught {', '.join(outcome.signals)}",
                    f"during {event.text.split(': ', 1)[-1]}",
                    "warning",
                )
        elif isinstance(event, SignalCaught):
            self._refresh_wanted.set()
            self._announce(f"{event.process} caught {', '.join(event.signals)}", "between calls", "warning")
        elif isinstance(event, ProcessEnded):
            self._refresh_wanted.set()
            death = event.death
            if death is not None and death.how == "killed":
                self._announce(f"{event.process} was killed by {death.detail}", "the process is gone", "error")
            else:
                self._announce(
                    f"{event.process} {death or 'ended'}",
                    "a zombie until its parent reaps it" if event.zombie else "",
                    "information",
                )
        elif isinstance(event, (ProcessStarted, ProcessReaped)):
            self._refresh_wanted.set()
        else:
            pass

    def _announce(self, title: str, message: str, severity: SeverityLevel) -> None:
        now = time.monotonic()
        while self._notified and now - self._notified[0] > NOTIFY_WINDOW:
            self._notified.popleft()
        if len(self._notified) >= NOTIFY_BURST:
            return
        self._notified.append(now)
        self.notify(
            message or title,
            title=title if message else "",
            severity=severity,
            timeout=6,
        )

    def _theme_changed(self, theme: Theme) -> None:
        self._palette = palette_from_variables(self.get_css_variables())
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                screen.set_palette(self._palette)

    # Recording and replay.

    def show_recording(self) -> None:
        """The title says where the session is recorded, or why it is not."""
        screen = self.screen_stack[0] if self.screen_stack else None
        if not isinstance(screen, MainScreen):
            return
        status = "" if self.deterministic else self.recording.status()  # the path differs from run to run
        title_text = getattr(screen, "title_text", None)
        screen.title = title_text(status) if title_text else (f"sockplay · {status}" if status else "sockplay")
        if self.recording.failed:
            self.notify(status, title="recording", severity="error", timeout=8)

    def action_open_recording(self) -> None:
        from widgets.replay_screen import SessionPickerScreen, open_recording

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.run_worker(open_recording(self, path), group="open-recording", exit_on_error=False)

        self.push_screen(SessionPickerScreen(), chosen)


def run_replay(
    path: str | Path,
    *,
    speed: float = 1.0,
    allow_network: bool = False,
    host_network: bool = False,
    pcap: str | None = None,
) -> int:
    """`sockplay replay FILE`: the TUI in replay mode on that recording."""
    from widgets.replay_screen import ReplaySource

    app = SockplayApp(allow_network=allow_network, replay=ReplaySource(Path(path), speed), pcap=pcap)
    app.session.host_network = host_network
    app.run()
    return app.return_code or 0

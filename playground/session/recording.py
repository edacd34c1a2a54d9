"""The TUI's recording of its lab: one playground.recording.Recorder at a time, and what to show of it.

UI-free. The app owns one SessionRecording; it starts a Recorder on each lab the app
starts (a replay's restart starts a new one) and says where it writes, or why it stopped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from playground.events import Event, Notice

if TYPE_CHECKING:  # the recorder loads with the lab, after the app's first frame
    from playground.lab import Lab
    from playground.recording import Recorder

__all__ = ["SessionRecording"]


class SessionRecording:
    """Records the app's lab to a file (`path` None: the default sessions directory), unless disabled.

    `keep` False means the file is deleted when the recording closes (a replay that
    nobody took over adds nothing new). `on_change` is called when the status changes.
    """

    def __init__(self, enabled: bool = True, path: Path | str | None = None) -> None:
        self.enabled = enabled
        self.requested_path = Path(path) if path is not None else None
        self.recorder: Recorder | None = None
        self.keep = True
        self.error: str | None = None
        self.on_change: Callable[[], None] | None = None
        self._unsubscribe: Callable[[], None] | None = None

    @property
    def path(self) -> Path | None:
        return self.recorder.path if self.recorder is not None else None

    @property
    def recording(self) -> bool:
        return self.recorder is not None and not self.recorder.closed

    def start(self, lab: Lab, header_extra: dict[str, str] | None = None, path: Path | str | None = None) -> None:
        """Record `lab` from now on (closing any earlier recording first)."""
        self.close()
        self.error = None
        self.keep = True
        if not self.enabled:
            self._changed()
            return
        target = path if path is not None else self.requested_path
        try:
            from playground.recording import Recorder

            self.recorder = Recorder(lab, target, header_extra=header_extra)
        except OSError as exc:
            self.recorder = None
            self.error = f"cannot record to {target or 'the sessions directory'}: {exc.strerror or exc}"
        else:
            self.requested_path = None  # `--record PATH` names the first recording only
            self._unsubscribe = lab.subscribe(self._observe)
        self._changed()

    @property
    def failed(self) -> bool:
        """It could not start, or its recorder stopped on an error."""
        return self.error is not None or (self.recorder is not None and self.recorder.error is not None)

    def note(self, text: str) -> None:
        if self.recorder is not None:
            self.recorder.note(text)

    def close(self) -> None:
        """Finish the file (or delete it, if not `keep`)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return
        recorder.close()
        if not self.keep:
            with contextlib.suppress(OSError):
                recorder.path.unlink()

    def status(self) -> str:
        """One short line for the title: where the session is recorded, or why not."""
        if self.error:
            return f"⚠ not recording: {self.error}"
        if self.recorder is None:
            return "not recording" if not self.enabled else ""
        if self.recorder.error:
            return f"⚠ recording stopped: {self.recorder.error}"
        return f"● rec {_shown(self.recorder.path)}"

    def _observe(self, event: Event) -> None:
        if isinstance(event, Notice) and self.recorder is not None and self.recorder.error:
            self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()


def _shown(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return "~/" + str(path.relative_to(Path.home()))
    return str(path)

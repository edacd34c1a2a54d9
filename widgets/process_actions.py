"""The actions on the selected process, and on the lab as a whole (a mixin for MainScreen)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from playground.session.lines import COMMON_SIGNALS
from widgets.messages import DispositionChosen

if TYPE_CHECKING:  # what the mixin finds on the screen it is mixed into
    from widgets.lab_screen import LabScreen as _Screen
else:
    _Screen = object

__all__ = ["DISPOSITION_CYCLE", "PROCESS_ACTIONS", "ProcessActions"]

PROCESS_ACTIONS = {"socket", "socket_udp", "fork", "waitpid", "kill", "sigpipe", "sigchld"}
DISPOSITION_CYCLE = {"SIG_DFL": "catch", "catch": "SIG_IGN", "SIG_IGN": "SIG_DFL"}


class ProcessActions(_Screen):
    """Main-screen actions on the selected process, spawn and the F2 pair (mixed in before LabScreen)."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in PROCESS_ACTIONS:
            proc = self.selected_process
            if proc is None:
                return False
            return True if proc.alive else None
        if action in ("spawn", "pair"):
            return True if self.lab_view.ready else None
        return super().check_action(action, parameters)

    def unavailable_reason(self, action: str) -> str | None:
        if action in ("spawn", "pair"):
            return "the lab is still starting"
        if action not in PROCESS_ACTIONS:
            return super().unavailable_reason(action)
        key = self.key_names().get(action, action)
        proc = self.selected_process
        if proc is None:
            return f"{key} ({action}) acts on a process: select one in the Lab pane first"
        return f"{key} ({action}) needs a running process: {proc.name} is {proc.state}"

    def _run_in_process(self, template: str) -> None:
        proc = self.selected_process
        if proc is None:
            self.refuse("select a process in the Lab pane first")
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
        var = self.session.fresh_var(proc.name, base)
        self._run_in_process(f"{var} = socket({kind})")

    def action_fork(self) -> None:
        self._run_in_process(f"{self.session.fresh_process_name('child')} = fork()")

    def action_waitpid(self) -> None:
        self._run_in_process("waitpid(-1, WNOHANG)")

    def _cycle_disposition(self, signame: str) -> None:
        proc = self.selected_process
        if proc is None:
            return
        self._run_in_process(f"signal({signame}, {DISPOSITION_CYCLE[proc.disposition(signame)]})")

    def action_sigpipe(self) -> None:
        self._cycle_disposition("SIGPIPE")

    def action_sigchld(self) -> None:
        self._cycle_disposition("SIGCHLD")

    def on_disposition_chosen(self, event: DispositionChosen) -> None:  # a mixin: no @on (it needs the metaclass)
        proc = self.selected_process
        if proc is not None and proc.disposition(event.signal) != event.disposition:
            self._run_in_process(f"signal({event.signal}, {event.disposition})")

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

        name = self.session.fresh_process_name("peer")

        def chosen(value: str | None) -> None:
            if value:
                self.run_lines([f"spawn {value}"])

        self.app.push_screen(
            PromptScreen("name of the new process", name, "lowercase letters, digits, - and _"), chosen
        )

    def action_pair(self) -> None:
        """The first experiment in one key: a listening server and a connected client."""
        session = self.session
        if not (session.has_process("server") and session.has_process("client")):
            self.refuse("connect a pair needs processes named server and client")
            return
        listener = session.fresh_var("server", "l")
        conn = session.fresh_var("client", "c")
        accepted = session.fresh_var("server", "a", also_taken=(listener,))
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

"""Process lifecycle: starting lab processes, checking what they claim, signalling and reaping them.

A lab process is untrusted (it runs a downloaded script), so nothing it says about
a pid is believed unchecked: a forked child is adopted only if the kernel says it
is that process's child, and a signal goes through the pidfd opened when the pid
was verified, so it can never reach a process that merely reused the number.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import fcntl
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from playground import lab_threads
from playground.constants import SIGNAL_NAMES, SIGNALS
from playground.errors import LabError
from playground.events import DirectiveDone, ProcessEnded, ProcessReaped, ProcessStarted
from playground.lab_process import Process
from playground.lab_unix import UnixDir
from playground.netns import LabNetwork
from playground.remote.hosts import RemoteHosts
from playground.script.format import format_node
from playground.script.model import Death, Kill

if TYPE_CHECKING:
    from playground.lab import Lab

PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)
_PR_SET_CHILD_SUBREAPER = 36
SPAWN_TIMEOUT = 10.0


def become_subreaper() -> None:
    """Orphans of lab processes come back to us, so none is left a zombie."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def out_of_descriptors(exc: OSError) -> bool:
    return exc.errno in (errno.EMFILE, errno.ENFILE)


def start_worker(
    network: LabNetwork, netns_args: list[str] | None = None, cwd: str | None = None
) -> tuple[int, socket.socket]:
    """Start a lab process: (its pid, sockplay's end of its control channel).

    netns_args: the namespaces it joins, if not the lab network's (a host's); cwd: where it runs
    (the lab's directory for AF_UNIX paths)."""
    try:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    except OSError as exc:
        raise LabError(no_room(exc, "a channel for a new process")) from None
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    debug = os.environ.get("SOCKPLAY_DEBUG")
    try:
        child = subprocess.Popen(
            [
                sys.executable,
                "-S",
                "-c",
                f"import sys; sys.path.insert(0, {PACKAGE_ROOT!r}); from playground.worker.main import main; main()",
                str(theirs.fileno()),
                *(network.worker_args() if netns_args is None else netns_args),
                *([f"--lab-dir={cwd}"] if cwd else []),  # removed by the process that outlives sockplay
            ],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=None if debug else subprocess.DEVNULL,
            env=env,
            close_fds=True,
            cwd=cwd,
            restore_signals=True,
            start_new_session=True,
        )
    except OSError as exc:
        ours.close()
        raise LabError(no_room(exc, "a new process")) from None
    finally:
        theirs.close()
    # Popen keeps a handle that would reap the child behind our back.
    child.returncode = 0
    return child.pid, ours


def no_room(exc: OSError, what: str) -> str:
    if out_of_descriptors(exc):
        return (
            f"sockplay has run out of file descriptors for {what} ({exc.strerror}): "
            "end some processes or raise `ulimit -n`"
        )
    return f"cannot start {what}: {exc.strerror}"


class OutOfDescriptors(Exception):
    """sockplay itself has no descriptor free for what it must open."""


def parent_of(pid: int) -> int | None:
    """The parent pid the kernel gives for pid (/proc/PID/stat), or None if there is no such process.

    OutOfDescriptors if sockplay cannot open the file to know."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError as exc:
        if out_of_descriptors(exc):
            raise OutOfDescriptors(exc.strerror) from None
        return None
    except ValueError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    try:
        return int(fields[1])
    except (IndexError, ValueError):
        return None


def session_of(pid: int) -> int | None:
    """The session id the kernel gives for pid (/proc/PID/stat), or None if there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    try:
        return int(fields[3])
    except (IndexError, ValueError):
        return None


def in_sessions(sessions: set[int]) -> list[int]:
    """Every process in these sessions, from one pass over /proc."""
    return [int(e) for e in os.listdir("/proc") if e.isdigit() and session_of(int(e)) in sessions]


def close_quietly(fd: int) -> None:
    """Close a descriptor received for a child the lab will not track (-1: none was received)."""
    if fd >= 0:
        os.close(fd)


def is_child_of(pid: object, parent: Process) -> bool:
    """Whether the kernel says pid is a child of this lab process (a fork it reports must be).

    OutOfDescriptors if sockplay cannot look."""
    if parent.remote is not None:  # its host's agent checks it there, and signals it by its channel alone
        return isinstance(pid, int) and pid > 0
    return isinstance(pid, int) and pid > 0 and parent_of(pid) == parent.pid


def send_signal(proc: Process, signum: int) -> None:
    """Signal a lab process through its pidfd (never a process that reused its number)."""
    if proc.remote is not None:
        proc.remote.signal(signum)
    elif proc.pidfd is not None:
        signal.pidfd_send_signal(proc.pidfd, signum)
    else:
        os.kill(proc.pid, signum)


def kill_quietly(proc: Process) -> None:
    try:
        send_signal(proc, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def collect(proc: Process) -> Death | None:
    """Reap a process that is our own child, or read a zombie's status from /proc."""
    if proc.remote is not None:
        return remote_death(proc)
    try:
        pid, status = os.waitpid(proc.pid, os.WNOHANG)
    except ChildProcessError:
        pid, status = 0, 0
        exit_code = zombie_exit_code(proc.pid)
        if exit_code is None:
            # Reaped already (its parent ignores SIGCHLD): the pidfd still knows how it ended.
            proc.reaped = True
            known = pidfd_exit_status(proc.pidfd) if proc.pidfd is not None else None
            return None if known is None else death_from_status(known)
        proc.zombie = True
        return death_from_status(exit_code)
    if pid == 0:
        # Not a zombie yet (the pidfd may be early); wait for it.
        _, status = os.waitpid(proc.pid, 0)
    proc.reaped = True
    return death_from_status(status)


def remote_death(proc: Process) -> Death | None:
    """How a remote process ended, as its host's agent said (None: not known, the connection dropped)."""
    assert proc.remote is not None
    status, zombie = proc.remote.death() or (None, False)
    proc.zombie = zombie
    proc.reaped = not zombie
    return None if status is None else death_from_status(status)


def reap_if_ours(proc: Process) -> bool:
    if proc.remote is not None:  # its host's agent reaps what comes to it
        return False
    try:
        pid, status = os.waitpid(proc.pid, os.WNOHANG)
    except ChildProcessError:
        return False
    if pid == 0:
        return False
    proc.reaped = True
    proc.zombie = False
    if proc.death is None:
        proc.death = death_from_status(status)
    return True


def reap_all(pids: list[int], timeout: float) -> None:
    """Reap these processes as they become ours (SIGKILLed already), for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    remaining = set(pids)
    while remaining and time.monotonic() < deadline:
        for pid in list(remaining):
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    remaining.discard(pid)
                    continue
            except ChildProcessError:  # not (yet) ours: reaped by its parent, or still being adopted
                pass
            if not Path(f"/proc/{pid}").exists():
                remaining.discard(pid)
        if remaining:
            time.sleep(0.01)


def zombie_exit_code(pid: int) -> int | None:
    """The wait status of a zombie that is not our child, from /proc/PID/stat."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    if not fields or fields[0] != "Z":
        return None
    try:
        return int(fields[-1])
    except ValueError:
        return None


_PIDFD_INFO = struct.Struct("=QQ11Ii")
_PIDFD_GET_INFO = (3 << 30) | (_PIDFD_INFO.size << 16) | (0xFF << 8) | 11
_PIDFD_INFO_EXIT = 8


def pidfd_exit_status(pidfd: int) -> int | None:
    """The wait status of a process already reaped, from its pidfd (Linux 6.15 and later)."""
    buf = bytearray(_PIDFD_INFO.pack(_PIDFD_INFO_EXIT, 0, *([0] * 11), 0))
    try:
        fcntl.ioctl(pidfd, _PIDFD_GET_INFO, buf)
    except OSError:
        return None
    fields = _PIDFD_INFO.unpack(buf)
    return fields[-1] if fields[0] & _PIDFD_INFO_EXIT else None


def death_from_status(status: int) -> Death:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return Death("killed", SIGNAL_NAMES.get(sig, str(sig)))
    if os.WIFEXITED(status):
        return Death("exited", os.WEXITSTATUS(status))
    return Death("exited", "?")


class Lifecycle:
    """The lab's processes from start to reaping: spawn, fork adoption, signals, deaths, zombies."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self._closed = False
        from playground.outside.program import OutsidePrograms  # it builds on this module

        # Outside programs (`spawn NAME exec ...`), each under a supervisor of its own; refused unless allowed.
        self.outside = OutsidePrograms(lab)
        # Processes the lab started but does not track (a fork it refused or could not watch),
        # each with a pidfd opened while it was verified to be in a lab process's session.
        self.strays: dict[int, int] = {}
        self.unix_dir = UnixDir()  # where its processes run: their AF_UNIX paths are names in it
        self.remote_hosts = RemoteHosts(lambda: lab.allow_network, lab.notice, lab._emit, lab.labels.on_packets)

    @property
    def _loop(self) -> asyncio.AbstractEventLoop | None:
        return self.lab._loop

    async def shutdown(self) -> None:
        """End every process the lab started and wait until each is gone."""
        if self._closed:
            return
        self._closed = True
        # What the last calls put on the wire is reported (and in the pcap) before the processes are ended.
        await self.lab.capture_flush()
        await self.outside.shutdown()  # each outside program's supervisor ends its whole tree
        procs = await self.end_remote()
        self.note_strays()
        for proc in procs:
            if proc.death is None or proc.zombie:
                kill_quietly(proc)
        for pidfd in self.strays.values():
            try:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5.0
        for proc in procs:
            while time.monotonic() < deadline:
                if reap_if_ours(proc) or not Path(f"/proc/{proc.pid}").exists():
                    break
                await asyncio.sleep(0.005)
            self.close_channel(proc)
        # Anything still there (a slow machine): wait for it for real, so that no zombie is left
        # to whoever adopts it after sockplay exits. Killed processes go fast; orphans come to us.
        leftover = [p.pid for p in procs if Path(f"/proc/{p.pid}").exists()] + list(self.strays)
        loop = asyncio.get_running_loop()
        if leftover:
            await loop.run_in_executor(None, reap_all, leftover, 20.0)
        for pidfd in self.strays.values():
            os.close(pidfd)
        self.strays.clear()
        for proc in procs:
            for handle in list(proc.inflight.values()):
                if not handle.future.done():
                    handle.future.cancel()
        await loop.run_in_executor(None, self.lab.labels.stop)
        # The capture thread's last batch was handed to the loop before its end was: it has been written.
        self.lab.labels.close_pcap()
        if self.lab.network.hosts is not None:
            await self.lab.network.hosts.shutdown()
        self.lab.network.close()
        self.lab.inspector.close()
        self.unix_dir.remove()

    async def end_remote(self) -> list[Process]:
        """End the remote hosts' processes (each agent ends its host's); the local processes, left to end."""
        await self.remote_hosts.close()
        for proc in self.lab.processes.values():
            if proc.remote is not None:
                self.close_channel(proc)
        return [p for p in self.lab.processes.values() if p.remote is None]

    def kill_all_now(self) -> None:
        """Synchronous last resort (atexit, signal handlers): SIGKILL every process."""
        self.outside.kill_all_now()
        self.remote_hosts.kill_now()
        local = [p for p in self.lab.processes.values() if p.remote is None]
        for proc in local:
            kill_quietly(proc)
        for proc in local:
            try:
                os.waitpid(proc.pid, 0)
            except ChildProcessError:
                pass
        if self.lab.network.hosts is not None:
            self.lab.network.hosts.close()
        self.unix_dir.remove()

    def kill_now(self, proc: Process) -> None:
        """SIGKILL a lab process (a crash of its host), reaping it if it becomes a zombie."""
        kill_quietly(proc)

    def check_room_for_process(self) -> None:
        live = sum(1 for p in self.lab.processes.values() if p.alive)
        if live >= self.lab.limits.processes:
            raise LabError(
                f"the lab's limit of {self.lab.limits.processes} live processes is reached: "
                "raise it with --max-processes"
            )

    async def spawn(self, name: str, host: str | None = None) -> Process:
        if name in self.lab.processes:
            raise LabError(f"a process named {name!r} already exists")
        self.check_room_for_process()
        if host is not None and host in self.remote_hosts.declared:
            pid, ours, remote = await self.remote_hosts.spawn(host)
            proc = Process(name=name, pid=pid, remote=remote)
        else:
            netns_args = None
            if host is not None:
                if self.lab.network.hosts is None:
                    raise LabError(f"no host named {host!r}: this lab has no hosts")
                netns_args = self.lab.network.hosts.worker_args(host)
            pid, ours = start_worker(self.lab.network, netns_args, self.unix_dir.path)
            proc = Process(name=name, pid=pid, host=host)
        try:
            self.attach(proc, ours)
        except LabError:
            kill_quietly(proc)
            if proc.remote is None:
                os.waitpid(pid, 0)
            raise
        self.lab.processes[name] = proc
        assert proc.hello is not None
        try:
            await asyncio.wait_for(asyncio.shield(proc.hello), SPAWN_TIMEOUT)
        except TimeoutError:
            raise LabError(f"process {name} did not start within {SPAWN_TIMEOUT:g} s") from None
        self.lab._emit(ProcessStarted(name, proc.pid, None, time.monotonic_ns(), host=host))
        return proc

    def attach(self, proc: Process, channel_end: socket.socket) -> None:
        assert self._loop is not None
        channel_end.setblocking(False)
        proc.channel = channel_end
        proc.hello = self._loop.create_future()
        try:
            # A remote process's pid is another machine's: it is watched through its channel alone.
            proc.pidfd = os.pidfd_open(proc.pid) if proc.remote is None else None
        except OSError as exc:
            if out_of_descriptors(exc):
                channel_end.close()
                proc.channel = None
                raise LabError(no_room(exc, f"watching {proc.name}")) from None
            proc.pidfd = None
        if proc.pidfd is not None:
            self._loop.add_reader(proc.pidfd, self.on_exit, proc)
        self._loop.add_reader(channel_end.fileno(), self.lab._on_readable, proc)

    def close_channel(self, proc: Process) -> None:
        assert self._loop is not None
        if proc.channel is not None:
            self._loop.remove_reader(proc.channel.fileno())
            self._loop.remove_writer(proc.channel.fileno())
            proc.channel.close()
            proc.channel = None
        if proc.pidfd is not None:
            self._loop.remove_reader(proc.pidfd)
            os.close(proc.pidfd)
            proc.pidfd = None

    def note_strays(self) -> None:
        """Find the processes the lab started but does not track (a fork it refused, or could not watch).

        Each spawned lab process leads a session of its own, and its forks stay in it (a lab
        process cannot call setsid), so they are found by session even once reparented to us.
        """
        roots = {p.pid for p in self.lab.processes.values() if p.parent is None and p.remote is None}
        known = {p.pid for p in self.lab.processes.values() if p.remote is None}
        for pid in in_sessions(roots):
            if pid in known or pid in self.strays:
                continue
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:
                continue
            if session_of(pid) in roots:  # still that process (not a number reused meanwhile)
                self.strays[pid] = pidfd
            else:
                os.close(pidfd)

    def misbehaved(self, proc: Process, what: str) -> None:
        """A lab process sent what no lab process sends: kill it, and say so (it is a bug or an attack)."""
        assert self._loop is not None
        self.lab.notice(
            f"{proc.name} (pid {proc.pid}) sent {what}: it is killed, and nothing more it says is read", "error"
        )
        if proc.channel is not None:
            self._loop.remove_reader(proc.channel.fileno())
        while proc.fd_queue:
            close_quietly(proc.fd_queue.popleft())
        if proc.death is None:
            kill_quietly(proc)
            if proc.pidfd is None:
                self.on_exit(proc)

    def children_of(self, proc: Process) -> list[Process]:
        return [p for p in self.lab.processes.values() if p.parent is proc]

    def learn_reaped(self, proc: Process, pid: int, raw: dict) -> None:
        for child in self.children_of(proc):
            if child.pid == pid:
                child.reaped = True
                child.zombie = False
                if "child" in raw:
                    how, detail = raw["child"]
                    child.death = Death(how, SIGNAL_NAMES.get(detail, detail) if how == "killed" else detail)
                self.lab._emit(ProcessReaped(child.name, child.pid, proc.name, time.monotonic_ns()))

    def adopt_child(self, parent: Process, name: str, pid: int) -> None:
        """Track a fork's child (checked already to be the parent's child, with its channel sent)."""
        fd = parent.fd_queue.popleft()
        child = Process(
            name=name,
            pid=pid,
            parent=parent,
            names=dict(parent.names),
            inodes=dict(parent.inodes),
            addresses=dict(parent.addresses),
            paths=dict(parent.paths),
            dispositions=dict(parent.dispositions),
            host=parent.host,
            data=dict(parent.data),  # a child has a copy of its parent's memory: the bytes its reads named too
            data_bytes=parent.data_bytes,
            closed=set(parent.closed),
        )
        if parent.remote is not None:
            child.remote = parent.remote.child(fd)
        parent.children[name] = child
        self.lab.processes[name] = child
        for var, address in child.addresses.items():
            self.lab.labels.note_address(name, var, address.port)
        try:
            self.attach(child, socket.socket(fileno=fd))
        except LabError as exc:  # sockplay has no descriptor left to watch it: it cannot be tracked
            self.lab.notice(f"{exc}; {name} (pid {pid}) is killed", "error")
            kill_quietly(child)
            child.death = Death("killed", "SIGKILL")
        self.lab._emit(ProcessStarted(name, pid, parent.name, time.monotonic_ns(), host=self.host_of(parent)))

    @staticmethod
    def host_of(proc: Process) -> str | None:
        return proc.remote.host if proc.remote is not None else None

    def channel_closed(self, proc: Process) -> None:
        if proc.pidfd is None:
            self.on_exit(proc)

    def on_exit(self, proc: Process) -> None:
        """The pidfd turned readable: the process has ended."""
        if proc.death is not None:
            return
        assert self._loop is not None
        if proc.pidfd is not None:
            self._loop.remove_reader(proc.pidfd)
        death = collect(proc)
        if death is None and not proc.zombie:
            # Reaped before we could look, on a kernel whose pidfds keep no exit status.
            death = Death("exited", proc.exit_request if proc.exit_request is not None else "?")
        proc.death = death
        for handle in list(proc.inflight.values()):
            proc.inflight.pop(handle.call_id, None)
            if handle.timer is not None:
                handle.timer.cancel()
            if handle.node is None:  # an inspect or ping the process will never answer
                if not handle.future.done():
                    handle.future.set_result({})
                continue
            self.lab._finish_call(proc, handle, {"ret": None, "start": handle.sent_ns, "dur": 0}, death)
        if proc.channel is not None:
            self._loop.remove_reader(proc.channel.fileno())
        self.lab._emit(ProcessEnded(proc.name, proc.pid, death, proc.zombie, time.monotonic_ns()))
        # Its children, if any, are now ours (we are their subreaper).
        for child in self.children_of(proc):
            if child.zombie:
                reap_if_ours(child)

    async def kill(self, name: str, signame: str = "SIGTERM") -> None:
        proc = self.lab.process(name)
        if proc.thread_of is not None:  # thread-directed, as tgkill sends it
            await lab_threads.kill_thread(self.lab, proc, signame)
            return
        if proc.death is not None and not proc.zombie:
            raise LabError(f"{name} is {proc.state}: there is nothing to signal")
        fatal = proc.fatal(signame)
        try:
            send_signal(proc, SIGNALS[signame])
        except ProcessLookupError:  # ended, and reaped, before its end was reported (an outside program's may be)
            raise LabError(f"{name} has ended: there is nothing to signal") from None
        self.lab._emit(DirectiveDone(Kill(name, signame), format_node(Kill(name, signame)), time.monotonic_ns()))
        if fatal and not proc.zombie:
            await self.lab.wait_dead(proc, 5.0)

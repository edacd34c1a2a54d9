"""The supervisor of one outside program: a small process between sockplay and the program.

sockplay starts it (`python -S -c ... main()`) with its control channel, the program's output
pipes, the namespace to enter and the program's words. It enters the lab's network, becomes a
subreaper (so every process the program starts, even one that leaves its session, stays its
descendant), and forks the program: in a process group of its own, with SIGKILL as its
parent-death signal, default signal dispositions (Python ignores SIGPIPE; a C program must not
inherit that) and nothing open but its standard streams. With a tracer, the tracer is executed
and runs the program (strace -D: the program stays this process's child, strace a grandchild).

It tells sockplay `pid N`, then `ended STATUS` (the wait status) when the program ends, and it
stays until its channel closes: when sockplay shuts the lab down or dies (even by SIGKILL), it
SIGKILLs the program's group and every descendant, reaps them and exits. Nothing is left
running, stopped or traced.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import socket
import sys

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_CLONE_NEWNET, _CLONE_NEWUSER = 0x40000000, 0x10000000
_CHECK_EXEC_BYTES = 4096
ATTACH = "--attach"  # in place of the program's path: trace the running process whose pid follows

_libc = ctypes.CDLL(None, use_errno=True)


def enter_network(spec: str) -> None:
    """Enter a network namespace, given as `PID` or `PID,user` (that process's net, and user, namespaces).

    The lab passes its own namespace holder; a host of the network lab passes its own.
    """
    pid, _, extra = spec.partition(",")
    for kind in (["user"] if extra == "user" else []) + ["net"]:
        fd = os.open(f"/proc/{int(pid)}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if _libc.setns(fd, _CLONE_NEWUSER if kind == "user" else _CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns {kind}: {os.strerror(err)}")
        finally:
            os.close(fd)


def main() -> None:
    args = sys.argv[1:]
    ctl_fd, out_fd, err_fd, trace_fd = (int(a) for a in args[:4])
    netns, tracer_words = args[4], int(args[5])
    tracer = args[6 : 6 + tracer_words]
    path, argv = args[6 + tracer_words], args[7 + tracer_words :]
    ctl = socket.socket(fileno=ctl_fd)
    _libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    try:
        if netns != "-":
            enter_network(netns)
    except OSError as exc:
        ctl.sendall(f"fail cannot enter the lab's network: {exc.strerror}\n".encode())
        return
    for fd in (ctl_fd, out_fd, err_fd, trace_fd):
        if fd >= 0:
            os.set_inheritable(fd, False)
    tracer = [word.replace("{trace}", f"/proc/{os.getpid()}/fd/{trace_fd}") for word in tracer]
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    os.set_blocking(wake_r, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    check_r, check_w = os.pipe()  # close-on-exec: it reads empty once the exec happened
    me = os.getpid()
    pid = os.fork()
    if pid == 0:
        _become_program(me, out_fd, err_fd, check_w, tracer, path, argv)
    os.close(check_w)
    for fd in (out_fd, err_fd):
        os.close(fd)
    failure = os.read(check_r, _CHECK_EXEC_BYTES)
    os.close(check_r)
    if failure:
        ctl.sendall(b"fail " + failure.replace(b"\n", b" ") + b"\n")
        _end_all(pid, wake_r)
        return
    ctl.sendall(f"pid {pid}\n".encode())
    _watch(ctl, pid, wake_r)
    if path == ATTACH:
        _detach(pid, wake_r)
    _end_all(pid, wake_r)


def _become_program(
    supervisor: int, out_fd: int, err_fd: int, check_w: int, tracer: list[str], path: str, argv: list[str]
) -> None:
    """In the forked child: become the program (or its tracer), or say why not and exit."""
    try:
        os.setpgid(0, 0)
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != supervisor:  # the supervisor died before the line above: so do we
            os._exit(127)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        if path == ATTACH:  # strace attaches to a running process (argv: ATTACH, its pid) instead of starting one
            os.execv(tracer[0], [*tracer, "-p", argv[-1]])
        if tracer:
            os.execv(tracer[0], [*tracer, "--", path, *argv[1:]])
        os.execv(path, argv)
    except OSError as exc:
        what = tracer[0] if tracer else path
        os.write(check_w, f"cannot run {what}: {exc.strerror}".encode())
    os._exit(127)


def _watch(ctl: socket.socket, pid: int, wake_r: int) -> None:
    """Report the program's end; return when the channel closes (sockplay is done with it, or gone)."""
    ended = False
    while True:
        ended = _reap(pid, ctl, ended)
        try:
            readable, _, _ = select.select([ctl.fileno(), wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in readable:
            try:
                os.read(wake_r, 512)
            except BlockingIOError:
                pass
        if ctl.fileno() in readable:
            try:
                if not ctl.recv(64):
                    return
            except OSError:
                return


def _reap(pid: int, ctl: socket.socket, ended: bool) -> bool:
    """Reap every child that has ended; report the program's own status once. Whether it has ended."""
    while True:
        try:
            found, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended
        if found == 0:
            return ended
        if found == pid and not ended:
            ended = True
            try:
                ctl.sendall(f"ended {status}\n".encode())
            except OSError:
                pass


def _descendants(root: int) -> list[int]:
    """Every process below root, from one pass over /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        fields = raw[raw.rfind(b")") + 2 :].split()
        if len(fields) > 1:
            parents[int(entry)] = int(fields[1])
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found.extend(children)
        frontier.extend(children)
    return found


def _detach(tracer: int, wake_r: int) -> None:
    """Let an attached strace detach from a process we did not start (SIGTERM), before anything is killed."""
    try:
        os.kill(tracer, signal.SIGTERM)
    except OSError:
        return
    for _ in range(40):  # at most 2 s
        try:
            if os.waitpid(tracer, os.WNOHANG)[0] == tracer:
                return
        except ChildProcessError:
            return
        select.select([wake_r], [], [], 0.05)
        try:
            os.read(wake_r, 512)
        except BlockingIOError:
            pass


def _end_all(pid: int, wake_r: int) -> None:
    """SIGKILL the program's group and every descendant (a tracer too), and reap them all."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    for _ in range(200):  # each pass waits at most 50 ms: 10 s in all, for a machine far too busy
        victims = _descendants(os.getpid())
        for victim in victims:
            try:
                os.kill(victim, signal.SIGKILL)
            except OSError:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            if not victims:
                return
        select.select([wake_r], [], [], 0.05)
        try:
            os.read(wake_r, 512)
        except BlockingIOError:
            pass

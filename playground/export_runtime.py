# ─────────────────────────────────────────────────────────────────────────────
# The runtime: how the experiment below is carried out. Read the experiment
# first; come back here to see how a step reaches its process.
#
# This program is the conductor. `spawn` forks a process that waits for
# orders; a step is a function that the conductor asks that process to run.
# Each process runs each call in a thread of its own, so a call that blocks
# (a read with no data) stays blocked in its process while later steps go on.
# The calls are the C calls, made through Python's os and socket modules:
# each makes the one system call and returns what C would (or raises OSError,
# printed as `= -1 ERRNO`). Descriptors are plain numbers, as in C: a new
# process's first socket is 3.
# ─────────────────────────────────────────────────────────────────────────────
import errno
import fcntl as fcntllib
import json
import os
import resource
import select
import signal as signals
import socket as socketlib
import struct
import sys
import threading
import time
import traceback
import warnings
from collections import deque
from os import O_NONBLOCK, WNOHANG, WUNTRACED  # noqa: F401  (used by the experiment)
from select import POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI, POLLRDHUP  # noqa: F401
from signal import SIG_DFL, SIG_IGN  # noqa: F401
from socket import (  # noqa: F401
    AF_INET,
    AF_INET6,
    IPPROTO_IPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    SHUT_RD,
    SHUT_RDWR,
    SHUT_WR,
    SOCK_DGRAM,
    SOCK_STREAM,
    SOL_SOCKET,
)

warnings.simplefilter("ignore", DeprecationWarning)  # fork() in a process with threads, as C programs do

SPEED = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0  # scales the recorded pauses: 0 skips them
CATCH = "catch"  # signal(SIG, CATCH): note the signal, and go on


# ── The calls, as C has them ────────────────────────────────────────────────


class Fd(int):
    """A descriptor number (an int) that this process's names hold."""


class Names:
    """A process's variables: `me.l` is a descriptor, `me.kid` a child's pid, as in C."""

    def __getitem__(self, name):
        return self.__dict__[name]

    def __setitem__(self, name, value):
        self.__dict__[name] = value


class Out(threading.local):
    """What the current call gives besides its return value (a peer's address, poll's events, ...)."""


OUT = Out()


def _sock(fd):
    """A Python socket object on a copy of the descriptor, so the descriptor itself is never closed by Python."""
    return socketlib.socket(fileno=fcntllib.fcntl(fd, fcntllib.F_DUPFD_CLOEXEC, W.floor - 64))


def socket(family, type_, proto=0):
    return Fd(socketlib.socket(family, type_, proto).detach())


def setsockopt(fd, level, option, value):
    if isinstance(value, tuple):  # SO_LINGER: struct linger {on, seconds}
        value = struct.pack("ii", *value)
    elif isinstance(value, float):  # SO_RCVTIMEO, SO_SNDTIMEO: struct timeval
        value = struct.pack("ll", int(value), round(value % 1 * 1_000_000))
    with _sock(fd) as s:
        s.setsockopt(level, option, value)
    return 0


def getsockopt(fd, level, option, kind="int"):
    with _sock(fd) as s:
        if kind == "int":
            return s.getsockopt(level, option)
        raw = s.getsockopt(level, option, 16)
    if kind == "linger":
        return tuple(struct.unpack_from("ii", raw))
    seconds, microseconds = struct.unpack_from("ll", raw)
    return seconds + microseconds / 1_000_000


def fcntl(fd, flag, on=None):
    """fcntl(fd, O_NONBLOCK, 1) sets the flag, 0 clears it; without a value it is read (1 or 0)."""
    flags = fcntllib.fcntl(fd, fcntllib.F_GETFL)
    if on is None:
        return 1 if flags & flag else 0
    fcntllib.fcntl(fd, fcntllib.F_SETFL, flags | flag if on else flags & ~flag)
    return 0


def bind(fd, address):
    with _sock(fd) as s:
        s.bind(address)
    return 0


def listen(fd, backlog=128):
    with _sock(fd) as s:
        s.listen(backlog)
    return 0


def accept(fd):
    with _sock(fd) as s:
        conn, OUT.peer = s.accept()
    return Fd(conn.detach())


def connect(fd, address):
    with _sock(fd) as s:
        s.connect(address)
    return 0


def getsockname(fd):
    with _sock(fd) as s:
        return tuple(s.getsockname()[:2])


def getpeername(fd):
    with _sock(fd) as s:
        return tuple(s.getpeername()[:2])


def read(fd, size):
    return os.read(fd, size)


def recv(fd, size, flags=0):
    with _sock(fd) as s:
        return s.recv(size, flags)


def recvfrom(fd, size, flags=0):
    with _sock(fd) as s:
        data, OUT.peer = s.recvfrom(size, flags)
    return data


def write(fd, data):
    return os.write(fd, data)


def send(fd, data, flags=0):
    with _sock(fd) as s:
        return s.send(data, flags)


def sendto(fd, data, address, flags=0):
    with _sock(fd) as s:
        return s.sendto(data, flags, address)


def writev(fd, *buffers):
    return os.writev(fd, buffers)


def shutdown(fd, how):
    with _sock(fd) as s:
        s.shutdown(how)
    return 0


def close(fd):
    os.close(fd)
    return 0


def dup(fd):
    return Fd(os.dup(fd))


def poll(fd, events, timeout_ms):
    watch = select.poll()
    watch.register(fd, events)
    ready = watch.poll(timeout_ms)
    OUT.revents = ready[0][1] if ready else 0
    return len(ready)


def signal(signum, disposition):
    signals.signal(signum, _noted if disposition == CATCH else disposition)
    return 0


def _noted(signum, frame):
    """A caught signal does nothing more: its number was written to the signal pipe when it arrived."""


def waitpid(pid, flags=0):
    got, status = os.waitpid(pid, flags)
    if got:
        OUT.child = status
    return got


def exit(status):  # noqa: A001  (C's exit)
    os._exit(status)


def fork(me, name):
    """fork(): the child becomes a process of its own that the conductor sends steps to, named `name`."""
    ours, theirs = (_high(s.detach()) for s in socketlib.socketpair(socketlib.AF_UNIX, socketlib.SOCK_SEQPACKET))
    pid = os.fork()
    if pid == 0:  # the child: drop the parent's machinery, serve on a channel of its own
        try:
            os.close(ours)
            for fd in (W.chan.detach(), W.wake_r, W.wake_w):
                os.close(fd)
            _serve(theirs, me)
        except BaseException:
            traceback.print_exc()
        os._exit(70)
    OUT.passed = (ours, theirs, name)  # sent to the conductor with the result, then closed here
    return pid


# ── A lab process ───────────────────────────────────────────────────────────


class W:
    """This process's machinery: its channel to the conductor and its signal pipe (high descriptors)."""

    floor = 1000
    chan = None
    wake_r = wake_w = -1
    busy = 0
    lock = threading.Lock()


def _high(fd):
    high = fcntllib.fcntl(fd, fcntllib.F_DUPFD_CLOEXEC, W.floor)
    os.close(fd)
    return high


def _start_worker(chan_fd, me):
    """In a process the conductor just forked: look like a fresh C program, then serve."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    W.floor = max(min(soft, 65536) - 32, 128)
    chan = _high(chan_fd)
    os.closerange(3, W.floor - 64)  # whatever the conductor had open: our sockets start at 3
    for sig in range(1, signals.NSIG):  # C's default dispositions (Python ignores SIGPIPE)
        if sig not in (signals.SIGKILL, signals.SIGSTOP, 32, 33):
            try:
                signals.signal(sig, SIG_DFL)
            except (OSError, ValueError):
                pass
    _serve(chan, me)


def _serve(chan_fd, me):
    W.lock = threading.Lock()  # (after a fork, another thread may have held the old one)
    W.chan = socketlib.socket(fileno=chan_fd)
    r, w = os.pipe()
    W.wake_r, W.wake_w = _high(r), _high(w)
    os.set_blocking(W.wake_w, False)
    os.set_blocking(W.wake_r, False)
    signals.set_wakeup_fd(W.wake_w, warn_on_full_buffer=False)
    W.busy = 0
    while True:
        watch = select.poll()
        watch.register(W.chan.fileno(), POLLIN)
        if not W.busy:
            watch.register(W.wake_r, POLLIN)
        ready = {fd for fd, _ in watch.poll(10 if W.busy else 1000)}  # (busy: look again soon, when idle)
        if W.wake_r in ready and not W.busy:
            caught = _drain_signals()
            if caught:
                _send({"note": f"caught {', '.join(caught)} between calls"})
        if W.chan.fileno() not in ready:
            continue
        raw = W.chan.recv(1 << 16)
        if not raw:
            os._exit(0)  # the conductor is gone: so are we
        order = json.loads(raw)
        entry = STEPS[order["line"]]
        with W.lock:
            W.busy += 1
        if entry.main_thread:  # signal() must run in a process's main thread in Python
            _run(entry, me, order)
        else:
            threading.Thread(target=_run, args=(entry, me, order), daemon=True).start()


def _drain_signals():
    caught = []
    try:
        while True:
            chunk = os.read(W.wake_r, 64)
            if not chunk:
                break
            caught += [signals.Signals(n).name for n in chunk if n in signals.valid_signals()]
    except BlockingIOError:
        pass
    return caught


def _run(entry, me, order):
    OUT.__dict__.clear()
    at = {key: tuple(value) for key, value in order["at"].items()}
    started = time.monotonic_ns()
    try:
        value = entry.fn(me, at) if entry.fn.__code__.co_argcount > 1 else entry.fn(me)
        result = _result(value)
    except socketlib.gaierror as exc:
        result = {"error": f"{exc.strerror}"}
    except OSError as exc:
        result = {"ret": -1, "errno": exc.errno} if exc.errno else {"error": str(exc)}
    except Exception as exc:  # noqa: BLE001  (a bad value: say so, and go on)
        result = {"error": f"{type(exc).__name__}: {exc}"}
    result["dur"] = time.monotonic_ns() - started
    result["signals"] = _drain_signals()
    result["names"] = _addresses(me)
    passed = OUT.__dict__.pop("passed", None)
    if passed:
        ours, theirs, name = passed
        result["child"] = {"name": name, "pid": result["ret"]}
        _send({"id": order["id"], "result": result}, [ours])
        os.close(ours)
        os.close(theirs)
    else:
        _send({"id": order["id"], "result": result})
    with W.lock:
        W.busy -= 1


def _result(value):
    out = {"ret": value}
    if isinstance(value, bytes):
        out = {"ret": len(value), "data": value[:4096].hex(), "length": len(value)}
    elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        out = {"ret": 0, "address": list(value)}
    elif isinstance(value, tuple):
        out = {"ret": 0, "pair": list(value)}
    for key in ("peer", "revents", "child"):
        if key in OUT.__dict__:
            out[key] = OUT.__dict__[key]
    return out


def _addresses(me):
    """The address each socket of this process is bound to (the last one known, once closed)."""
    known = me.__dict__.setdefault("_bound", {})
    for name, fd in list(me.__dict__.items()):
        if isinstance(fd, Fd):
            try:
                with _sock(fd) as s:
                    host, port = s.getsockname()[:2]
                if port:
                    known[name] = [host, port]
            except (OSError, ValueError):
                pass
    return known


def _send(message, fds=()):
    data = json.dumps(message).encode()
    with W.lock:
        if fds:
            socketlib.send_fds(W.chan, [data], list(fds))
        else:
            W.chan.send(data)


# ── The conductor ───────────────────────────────────────────────────────────

PLAN = []  # what the experiment does, in order
STEPS = {}  # line number -> step, for the processes
TIMEOUT = 10.0  # how long to wait for a call before saying it is still blocked


class Entry:
    def __init__(self, kind, line, **fields):
        self.kind, self.line = kind, line
        self.__dict__.update(fields)


class Proc:
    def __init__(self, name, pid, chan, ours, addresses=None):
        self.name, self.pid, self.chan, self.ours = name, pid, chan, ours
        self.addresses = dict(addresses or {})
        self.blocked = deque()  # ids of calls written `...` whose outcome no line has stated
        self.waiting = set()  # ids sent, no result yet
        self.ended = None


PROCS = {}
RESULTS = {}
NOTES = []
_ids = iter(range(1, 1 << 62))
_blocks = []


def step(line, actor, text, blocks=False, delay=None, refs=(), timing=None):
    """The function below is the call that `actor` makes at this line of the script."""

    def register(fn):
        entry = Entry(
            "step",
            line,
            actor=actor,
            text=text,
            fn=fn,
            blocks=blocks,
            delay=delay,
            refs=refs,
            timing=timing,
            main_thread=text.startswith("signal("),
        )
        STEPS[line] = entry
        (_blocks[-1] if _blocks else PLAN).append(entry)
        return fn

    return register


def _add(entry):
    (_blocks[-1] if _blocks else PLAN).append(entry)


def spawn(line, name):
    _add(Entry("spawn", line, name=name))


def outcome(line, actor, delay=None, timing=None):
    """`ACTOR: ... = OUTCOME`: the outcome of the actor's oldest blocked call, waiting for it if need be."""
    _add(Entry("outcome", line, actor=actor, delay=delay, timing=timing))


def state(line, name, expected):
    """`state PROC STATE`: the process's state, from /proc (running, stopped, zombie, exited)."""
    _add(Entry("state", line, name=name, expected=expected))


def kill(line, name, signum, ends_it):
    _add(Entry("kill", line, name=name, signum=signum, ends_it=ends_it))


def sleep(line, seconds):
    _add(Entry("sleep", line, seconds=seconds))


def pause(seconds):
    """A pause the recording kept before the next line (scaled by SPEED)."""
    _add(Entry("pause", 0, seconds=seconds))


class repeat:
    """`with repeat(N):` the steps inside run N times, in order."""

    def __init__(self, count):
        self.count = count

    def __enter__(self):
        _blocks.append([])

    def __exit__(self, *exc):
        _add(Entry("repeat", 0, count=self.count, entries=_blocks.pop()))


def _start_process(name):
    ours, theirs = socketlib.socketpair(socketlib.AF_UNIX, socketlib.SOCK_SEQPACKET)
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        try:
            _start_worker(theirs.detach(), Names())
        except BaseException:  # (it never returns; if it fails, this process must not go on as a conductor)
            traceback.print_exc()
        os._exit(70)
    theirs.close()
    PROCS[name] = Proc(name, pid, ours, True)
    return pid


def _pump(timeout):
    """Take in what the processes report for up to `timeout` seconds (or until something arrives)."""
    live = [p for p in PROCS.values() if p.ended is None]
    if not live:
        time.sleep(max(timeout, 0))
        return
    ready, _, _ = select.select([p.chan for p in live], [], [], max(timeout, 0))
    for proc in live:
        if proc.chan not in ready:
            continue
        data, fds, _, _ = socketlib.recv_fds(proc.chan, 1 << 20, 1)
        if not data:
            _ended(proc)
            continue
        message = json.loads(data)
        if "note" in message:
            NOTES.append(f"{proc.name} {message['note']}")
            continue
        result = message["result"]
        proc.addresses.update(result.get("names", {}))
        proc.waiting.discard(message["id"])
        if "child" in result and fds:
            child = result["child"]
            PROCS[child["name"]] = Proc(
                child["name"], child["pid"], socketlib.socket(fileno=fds[0]), False, proc.addresses
            )
        RESULTS[message["id"]] = result


def _ended(proc):
    proc.ended = _exit_status(proc)
    proc.chan.close()
    for call in proc.waiting:
        RESULTS[call] = {"death": proc.ended, "signals": []}
    proc.waiting.clear()
    NOTES.append(f"{proc.name} {proc.ended}")


def _exit_status(proc):
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        try:
            pid, status = os.waitpid(proc.pid, WNOHANG)
            if pid:
                return _status_text(status)
        except ChildProcessError:  # a forked child: its parent reaps it; read its status while it is a zombie
            try:
                with open(f"/proc/{proc.pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                return "ended"
            if fields[0] == "Z":
                return _status_text(int(fields[-1])) + " (a zombie until its parent reaps it)"
        time.sleep(0.002)
    return "ended"


def _status_text(status):
    if os.WIFSIGNALED(status):
        return f"killed {signals.Signals(os.WTERMSIG(status)).name}"
    if os.WIFSTOPPED(status):
        return f"stopped {signals.Signals(os.WSTOPSIG(status)).name}"
    return f"exited {os.WEXITSTATUS(status)}"


def _wait(call, seconds):
    deadline = time.monotonic() + seconds
    while call not in RESULTS:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        _pump(left)
    return RESULTS.pop(call)


def _idle(seconds):
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        _pump(left)


def _outcome_text(result):
    """A result in the script's own words: `= 3`, `= -1 EPIPE (errno 32, Broken pipe) ! SIGPIPE`."""
    if "error" in result:
        return None
    if "death" in result:
        text = f"= {result['death'].split(' (')[0]}"
    elif result.get("ret") == -1 and "errno" in result:
        number = result["errno"]
        text = f"= -1 {errno.errorcode.get(number, f'E{number}')} (errno {number}, {os.strerror(number)})"
    else:
        if "address" in result:
            parts = [_address_text(result["address"])]
        elif "pair" in result:
            parts = ["{{{}, {}}}".format(*result["pair"])]
        else:
            parts = [str(result["ret"])]
        if "data" in result and result["length"]:
            quoted = _quoted(bytes.fromhex(result["data"]), result["length"])
            if len(quoted) <= 512:
                parts.append(quoted)
        if "peer" in result:
            parts.append(f"from {_address_text(result['peer'])}")
        if "revents" in result:
            parts.append("|".join(n for n, bit in POLL_NAMES if result["revents"] & bit))
        if "child" in result and isinstance(result["child"], int):
            parts.append(_status_text(result["child"]))
        text = "= " + " ".join(p for p in parts if p)
    if result.get("signals"):
        text += " ! " + ", ".join(result["signals"])
    return text


POLL_NAMES = [
    ("POLLIN", POLLIN),
    ("POLLPRI", POLLPRI),
    ("POLLOUT", POLLOUT),
    ("POLLRDHUP", POLLRDHUP),
    ("POLLERR", POLLERR),
    ("POLLHUP", POLLHUP),
    ("POLLNVAL", POLLNVAL),
]


def _address_text(address):
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _quoted(data, length):
    if length > len(data):
        return ""
    if len(data) >= 8 and data == data[:1] * len(data):
        return f"{_quoted(data[:1], 1)} * {len(data)}"
    out = []
    for i, b in enumerate(data):
        if b == 0:  # "\0", unless an octal digit follows (then it would read as one escape)
            out.append("\\x00" if i + 1 < len(data) and 0x30 <= data[i + 1] <= 0x37 else "\\0")
        elif b in ESCAPES:
            out.append(ESCAPES[b])
        else:
            out.append(chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}")
    return '"' + "".join(out) + '"'


ESCAPES = {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x5C: "\\\\", 0x22: '\\"'}


def _claim(timing, result):
    """A timing claim, `after 30ms`, kept after the outcome; and, if the call broke it, why."""
    bound, ns, written = timing
    took = result.get("dur") or 0
    holds = took >= ns if bound == "after" else took <= ns
    NOTES.append(f"{bound} {written}: " + ("holds" if holds else f"does not hold, took {took / 1e6:.3f} ms"))
    return f" {bound} {written}"


def _process_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            letter = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "exited"
    return {"Z": "zombie", "X": "exited", "T": "stopped", "t": "stopped"}.get(letter, "running")


def _state(entry):
    proc = PROCS.get(entry.name)
    deadline = time.monotonic() + 1.0
    while True:  # (a state may take a moment to come: poll for it, bounded)
        seen = "exited" if proc is None else _process_state(proc.pid)
        if seen == entry.expected or time.monotonic() > deadline:
            break
        _pump(0.005)
    _say(f"state {entry.name} {seen}")


def _say(text, result=None, timing=None):
    if result is not None:
        shown = _outcome_text(result)
        if shown is not None and timing is not None and "death" not in result:
            shown += _claim(timing, result)
        duration = result.get("dur")
        comment = ""
        if duration and "death" not in result:
            comment = f"{duration / 1e6:.1f} ms" if duration >= 1_000_000 else f"{duration / 1e3:.0f} µs"
        if shown is None:
            text += "\n# ERROR: " + result["error"]
        else:
            text = f"{text} {shown}"
            if comment:
                text = f"{text:<44} # {comment}"
    print(text)
    for note in NOTES:
        print(f"# {note}")
    NOTES.clear()
    sys.stdout.flush()


def _delay_text(delay):
    return f"+{delay:g} " if delay and SPEED else ""


def _do(entry):
    if entry.kind == "repeat":
        for run in range(1, entry.count + 1):
            print(f"# repeat: run {run}")
            for inner in entry.entries:
                _do(inner)
        return
    if entry.kind == "pause":
        _idle(entry.seconds * SPEED)
    elif entry.kind == "spawn":
        pid = _start_process(entry.name)
        _say(f"spawn {entry.name:<38} # pid {pid}")
    elif entry.kind == "sleep":
        _idle(entry.seconds)
        _say(f"sleep {entry.seconds:g}")
    elif entry.kind == "kill":
        proc = PROCS[entry.name]
        os.kill(proc.pid, entry.signum)
        name = signals.Signals(entry.signum).name
        if entry.ends_it:
            deadline = time.monotonic() + 2.0
            while proc.ended is None and time.monotonic() < deadline:
                _pump(deadline - time.monotonic())
        else:
            _idle(0.01)  # (for the process to say it caught the signal)
        _say(f"kill {entry.name}" + ("" if name == "SIGTERM" else f" {name}"))
    elif entry.kind == "step":
        _step(entry)
    elif entry.kind == "outcome":
        _stated(entry)
    elif entry.kind == "state":
        _state(entry)


def _step(entry):
    proc = PROCS.get(entry.actor)
    head = f"{_delay_text(entry.delay)}{entry.actor}: {entry.text}"
    if proc is None or proc.ended is not None:
        _say(f"{head}\n# ERROR: {entry.actor} is {proc.ended if proc else 'not running'}: it makes no more calls")
        return
    _idle((entry.delay or 0) * SPEED)
    at = {}
    for ref in entry.refs:
        owner, _, var = ref.partition(".")
        address = PROCS[owner].addresses.get(var) if owner in PROCS else None
        if address is None:
            _say(f"{head}\n# ERROR: {ref} has no address yet: bind or connect it first")
            return
        at[ref] = address
    call = next(_ids)
    proc.waiting.add(call)
    try:
        proc.chan.send(json.dumps({"id": call, "line": entry.line, "at": at}).encode())
    except OSError:
        proc.waiting.discard(call)
        _idle(0.05)
        _say(f"{head}\n# ERROR: {entry.actor} cannot be reached: it has ended")
        return
    result = _wait(call, 0.05 if entry.blocks else TIMEOUT)
    if result is None:
        proc.blocked.append(call)
        _say(f"{head} ..." + ("" if entry.blocks else f"\n# still blocked after {TIMEOUT:g} s"))
    else:
        _say(head, result, entry.timing)
        if entry.blocks:
            NOTES.append("the recording had this call block; here it returned at once")


def _stated(entry):
    proc = PROCS.get(entry.actor)
    head = f"{_delay_text(entry.delay)}{entry.actor}: ..."
    if proc is None or not proc.blocked:
        _say(f"{head}\n# ERROR: {entry.actor} has no blocked call")
        return
    call = proc.blocked.popleft()
    _idle((entry.delay or 0) * SPEED)
    result = _wait(call, TIMEOUT)
    if result is None:
        _say(f"{head}\n# no outcome after {TIMEOUT:g} s: the call is still blocked")
    else:
        _say(head, result, entry.timing)


def main():
    try:  # orphans of our processes come back to us, so we can reap them all at the end
        import ctypes

        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass
    print("\n".join(f"# {line}" for line in HEADER))
    print(f"# run on kernel {os.uname().release}, pauses scaled by {SPEED:g}")
    print("sockplay 1")
    try:
        for entry in PLAN:
            _do(entry)
    finally:
        for proc in PROCS.values():
            if proc.ended is None:
                try:
                    os.kill(proc.pid, signals.SIGKILL)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            try:
                if os.waitpid(-1, WNOHANG) == (0, 0):
                    time.sleep(0.002)
            except ChildProcessError:
                break


HEADER = []

# ── The conductor ───────────────────────────────────────────────────────────

PLAN: list = []  # what the experiment does, in order
STEPS: dict = {}  # line number -> step, for the processes
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
        self.owner = None  # a thread actor: the process it belongs to (its channel, names and calls)


PROCS: dict = {}
RESULTS: dict = {}
NOTES: list = []
_ids = iter(range(1, 1 << 62))
_blocks: list = []


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


def thread(line, name, process):
    """`thread NAME in PROC`: a thread of that process, an actor of its own."""
    _add(Entry("thread", line, name=name, process=process))


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
    live = [p for p in PROCS.values() if p.ended is None and p.owner is None]  # (a thread uses its process's)
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
    for thread in PROCS.values():
        if thread.owner is proc:
            thread.ended = proc.ended
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
        if "rights" in result:
            parts.append("rights {" + ", ".join(str(fd) for fd in result["rights"]) + "}")
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
    if port == -1:  # an AF_UNIX path
        return '"' + host.replace("\\", "\\\\").replace('"', '\\"') + '"'
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
    elif entry.kind == "thread":
        _start_thread(entry)
    elif entry.kind == "kill":
        proc = PROCS[entry.name]
        if proc.owner is not None:  # to that thread alone, as pthread_kill: its process sends it
            proc.chan.send(json.dumps({"tkill": entry.name, "signum": entry.signum}).encode())
            proc = proc.owner
        else:
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


def _start_thread(entry):
    owner = PROCS.get(entry.process)
    head = f"thread {entry.name} in {entry.process}"
    if owner is None or owner.ended is not None:
        _say(f"{head}\n# ERROR: {entry.process} is {owner.ended if owner else 'not running'}: it cannot start a thread")
        return
    thread = Proc(entry.name, owner.pid, owner.chan, False)
    thread.addresses, thread.waiting, thread.owner = owner.addresses, owner.waiting, owner
    PROCS[entry.name] = thread
    owner.chan.send(json.dumps({"thread": entry.name}).encode())
    _say(head)


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
        proc.chan.send(json.dumps({"id": call, "line": entry.line, "at": at, "actor": entry.actor}).encode())
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
    here = os.getcwd()
    os.chdir(tempfile.mkdtemp(prefix="sockplay-export-"))  # AF_UNIX paths are names in a directory of our own
    try:
        for entry in PLAN:
            _do(entry)
    finally:
        shutil.rmtree(os.getcwd(), ignore_errors=True)
        os.chdir(here)
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


HEADER: list = []

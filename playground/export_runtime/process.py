# ── A lab process ───────────────────────────────────────────────────────────


class W:
    """This process's machinery: its channel to the conductor and its signal pipe (high descriptors)."""

    floor = 1000
    chan: "socketlib.socket"  # set by _serve, before any use
    wake_r = wake_w = -1
    busy = 0
    lock = threading.Lock()
    actors: dict = {}  # thread actors: name -> (their queue of steps, their thread's ident)


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
    W.actors = {}  # (a forked child has none: fork copies the calling thread only)
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
        if "thread" in order or "tkill" in order:
            _thread_order(order, me)
            continue
        entry = STEPS[order["line"]]
        with W.lock:
            W.busy += 1
        if entry.main_thread:  # signal() must run in a process's main thread in Python
            _run(entry, me, order)
        elif order.get("actor") in W.actors:  # a thread actor makes its calls in order, in its own thread
            W.actors[order["actor"]][0].put((entry, order))
        else:
            threading.Thread(target=_run, args=(entry, me, order), daemon=True).start()


def _thread_order(order, me):
    """Start a thread actor, or send a signal to one alone (pthread_kill)."""
    if "thread" in order:
        work, started = queue.SimpleQueue(), queue.SimpleQueue()
        threading.Thread(target=_actor, args=(work, started, me), daemon=True).start()
        W.actors[order["thread"]] = (work, started.get())
    elif order["tkill"] in W.actors:
        signals.pthread_kill(W.actors[order["tkill"]][1], order["signum"])


def _actor(work, started, me):
    started.put(threading.get_ident())
    while True:
        entry, order = work.get()
        _run(entry, me, order)
        if entry.text.startswith("pthread_exit("):
            return


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
    if "thread_exit" in OUT.__dict__:  # (pthread_exit never returns: the thread ended)
        return {"ret": 0, "death": f"exited {OUT.thread_exit}"}
    out = {"ret": value}
    if isinstance(value, bytes):
        out = {"ret": len(value), "data": value[:4096].hex(), "length": len(value)}
    elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        out = {"ret": 0, "address": list(value)}
    elif isinstance(value, tuple):
        out = {"ret": 0, "pair": list(value)}
    for key in ("peer", "revents", "child", "rights"):
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
                    end = _end(s.getsockname())
                if end and end[1]:
                    known[name] = list(end)
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

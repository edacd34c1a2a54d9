"""python -m playground.cli: the sockplay command."""

# First of all, before the rest of sockplay loads: a Ctrl-C from now on ends sockplay quietly,
# not with a traceback. `_signal` and `os` are in memory already (the interpreter loaded them);
# the `signal` module is not, and importing it (it builds enums) takes long enough to be interrupted.
import _signal  # type: ignore[import-not-found]  # the C module behind `signal` has no stub
import os

# A signal the shell ignored (`&` in a script ignores SIGINT, nohup SIGHUP) stays ignored, as in C.
try:
    for _signum in (_signal.SIGTERM, _signal.SIGHUP, _signal.SIGINT):
        if _signal.getsignal(_signum) != _signal.SIG_IGN:
            _signal.signal(_signum, lambda signum, _frame: os._exit(128 + signum))
except KeyboardInterrupt:  # a Ctrl-C that came while the interpreter started: signal() raises it here
    os._exit(128 + _signal.SIGINT)

from playground.cli.main import entry  # noqa: E402 - after the signals are handled

entry()

"""python -m playground.cli: the sockplay command."""

# First of all, before the rest of sockplay loads (both modules are loaded already, by the
# interpreter): a Ctrl-C from now on ends sockplay quietly, not with a traceback.
import os
import signal

for _signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
    signal.signal(_signum, lambda signum, _frame: os._exit(128 + signum))

from playground.cli.main import entry  # noqa: E402 - after the signals are handled

entry()

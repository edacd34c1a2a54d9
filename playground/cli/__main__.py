"""python -m playground.cli: the sockplay command."""

from playground.cli.main import entry

entry()

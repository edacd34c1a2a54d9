"""sockplay's engine: real processes, real sockets, the script language. No TUI here."""

__version__ = "0.1.0"

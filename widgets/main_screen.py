"""The main screen: the lab layout (LabScreen) with every action as a binding.

Each action writes a script line and runs it like a typed one, so it shows in the log. The
actions live with what they act on: socket_actions, process_actions, host_actions (the network
lab's hosts), wire (packets, ladder, pcap); this module holds the binding table, whose order
is the footer's and the help's.
"""

from __future__ import annotations

from widgets.host_actions import HostActions
from widgets.lab_screen import LabScreen, binding
from widgets.process_actions import PROCESS_ACTIONS, ProcessActions
from widgets.socket_actions import SOCKET_ACTIONS, SocketActions
from widgets.wire import WIRE_BINDINGS, WireActions

__all__ = ["MainScreen", "SOCKET_ACTIONS", "PROCESS_ACTIONS"]


class MainScreen(SocketActions, ProcessActions, HostActions, WireActions, LabScreen):
    """Everything at once: the lab, the selected thing, the log and the command line."""

    BINDINGS = [
        # A priority binding runs as the key arrives, so keys typed right after ':' land in the
        # command line; in a text field ':' is just typed (check_action says no there).
        binding(
            "colon", "command", "command", "type any script line (the selected process is the actor)", priority=True
        ),
        binding("question_mark,f1", "help", "help", "keys and script syntax"),
        binding("f2", "pair", "connect a pair", "server listens, client connects, server accepts"),
        binding("n", "socket", "socket", "new TCP socket in the selected process"),
        binding("u", "socket_udp", "udp socket", "new UDP socket in the selected process"),
        binding("b", "bind", "bind", "bind the selected socket to loopback, port chosen by the kernel"),
        binding("l", "listen", "listen", "listen on the selected socket"),
        binding("c", "connect", "connect", "connect the selected socket to a listening one"),
        binding("a", "accept", "accept", "accept a connection on the selected listening socket"),
        binding("r", "read", "read", "read up to the size field's bytes"),
        binding("w", "write", "write", "write the data field"),
        binding("v", "writev", "writev", "writev the data field, split at |"),
        binding("s", "send", "send", "send the data field with the ticked flags"),
        binding("e", "recv", "recv", "recv the size field's bytes with the ticked flags"),
        binding("R", "shut_rd", "shut RD", "shutdown(SHUT_RD)"),
        binding("W", "shut_wr", "shut WR", "shutdown(SHUT_WR): send FIN"),
        binding("X", "shut_rdwr", "shut RDWR", "shutdown(SHUT_RDWR)"),
        binding("x", "close", "close", "close the selected socket"),
        binding("p", "spawn", "spawn", "start a new process"),
        binding("k", "kill", "kill", "send a signal to the selected process"),
        binding("f", "fork", "fork", "fork the selected process"),
        binding("y", "waitpid", "waitpid", "reap an exited child: waitpid(-1, WNOHANG)"),
        binding("P", "sigpipe", "SIGPIPE", "cycle SIGPIPE: SIG_DFL → catch → SIG_IGN"),
        binding("C", "sigchld", "SIGCHLD", "cycle SIGCHLD: SIG_DFL → catch → SIG_IGN"),
        binding("T", "cut_mend", "cut/mend", "cut the selected host's cable, or mend it (the host of a process too)"),
        binding("O", "crash_boot", "crash/boot", "crash the selected host (power lost, nothing sent), or boot it"),
        binding("I", "cable", "cable…", "the selected host's cable: delay, jitter, loss, duplicate, reorder, rate"),
        binding("H", "add_host", "add host", "a new host of the network lab: name and address", show=False),
        binding("F", "filter", "filter log", "show only the selected process or socket in the log (again: all)"),
        binding("slash", "search", "search log", "find text in the log"),
        binding("h", "hex", "hex", "show data in hex too"),
        *WIRE_BINDINGS,
    ]

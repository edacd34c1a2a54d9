"""The flags that raise a lab's limits (--max-processes, --max-pending, --max-sleep)."""

from __future__ import annotations

import argparse
import math

from playground.lab_limits import Limits

_DEFAULTS = Limits()


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, not {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError("must be a number of seconds, 0 or more")
    return value


def add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    """A script is untrusted input: each lab caps what it may take, and these raise the caps."""
    parser.add_argument(
        "--max-processes",
        type=_positive_int,
        default=argparse.SUPPRESS,
        metavar="N",
        help=f"live lab processes allowed at once, forks included (default {_DEFAULTS.processes})",
    )
    parser.add_argument(
        "--max-pending",
        type=_positive_int,
        default=argparse.SUPPRESS,
        metavar="N",
        help=f"calls allowed in progress at once, blocked ones included (default {_DEFAULTS.pending})",
    )
    parser.add_argument(
        "--max-sleep",
        type=_seconds,
        default=argparse.SUPPRESS,
        metavar="SECONDS",
        help=f"longest single `sleep` or +DELAY, after --speed (default {_DEFAULTS.sleep:g})",
    )


def limits_from(args: argparse.Namespace) -> Limits:
    return Limits(
        processes=getattr(args, "max_processes", _DEFAULTS.processes),
        pending=getattr(args, "max_pending", _DEFAULTS.pending),
        sleep=getattr(args, "max_sleep", _DEFAULTS.sleep),
    )

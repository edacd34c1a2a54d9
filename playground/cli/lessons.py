"""`sockplay lessons` (list, or `--check` them all) and `sockplay lesson NAME` (read one)."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import unicodedata

from playground.exit_codes import EXIT_DIVERGED, EXIT_OK, EXIT_USAGE
from playground.lessons.catalog import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    LESSONS_DIR,
    Catalog,
    Lesson,
    PlannedLesson,
    load_catalog,
)
from playground.runner import DEFAULT_STEP_TIMEOUT, StepReport
from playground.script.model import Line, Repeat

TEXT_WIDTH = 78

_LABELS = {
    "en": {
        "lesson": "Lesson {number}",
        "ready": "{ready} of {total} lessons are ready",
        "hint": "read one with `sockplay lesson NUMBER`, run them all with `sockplay lessons --check`",
        "not_yet": "not yet: {needs}",
        "holds": "holds",
        "diverges": "DIVERGES",
        "failed": "FAILED",
        "steps": "steps",
        "summary": "{held} of {ran} lessons hold; {bad} diverged; {planned} not runnable yet",
        "planned": "This lesson cannot run yet: it {needs}.",
        "end": "End of lesson {number}.",
    },
    "zh": {
        "lesson": "第 {number} 课",
        "ready": "共 {total} 课，其中 {ready} 课已可运行",
        "hint": "用 `sockplay lesson 编号` 阅读一课，用 `sockplay lessons --check` 运行全部课程",
        "not_yet": "暂不可用：{needs}",
        "holds": "通过",
        "diverges": "不符",
        "failed": "失败",
        "steps": "步",
        "summary": "{ran} 课中 {held} 课通过，{bad} 课不符；{planned} 课暂不可运行",
        "planned": "这一课暂时还不能运行：它{needs}。",
        "end": "第 {number} 课完。",
    },
}


def register(subparsers: argparse._SubParsersAction) -> None:
    lessons = subparsers.add_parser(
        "lessons",
        help="list the lessons; --check runs every lesson against the live kernel",
        description="List the guided lessons, or run them all headless and check every outcome.",
    )
    lessons.add_argument("--lang", choices=LANGUAGES, help="language of titles and messages (default: from $LANG)")
    lessons.add_argument(
        "--check", action="store_true", help="run every lesson against the live kernel; exit 0 only if all hold"
    )
    lessons.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_STEP_TIMEOUT,
        metavar="SECONDS",
        help=f"how long a step may block before it counts as stuck (default {DEFAULT_STEP_TIMEOUT:g})",
    )
    lessons.add_argument(
        "--dir",
        default=str(LESSONS_DIR),
        metavar="DIRECTORY",
        help="read lessons from another directory (for lesson authors)",
    )
    lessons.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="with --check, print every lesson's steps as they run, and every repeated step's timing",
    )
    lessons.set_defaults(handler=lessons_command)

    lesson = subparsers.add_parser(
        "lesson",
        help="open one lesson in the TUI (--text: print its prose and steps)",
        description="Open a lesson in the TUI's lesson mode: its prose beside the lab, one key (F5) to run the "
        "next step. NAME is its number (1, 09) or its name (close-sends-fin). With --text, or when "
        "the output is not a terminal, print the lesson instead.",
    )
    lesson.add_argument("name", metavar="NAME")
    lesson.add_argument("--lang", choices=LANGUAGES, help="language of the prose (default: from $LANG)")
    lesson.add_argument("--text", action="store_true", help="print the lesson's prose and steps; open no TUI")
    lesson.add_argument("--dir", default=str(LESSONS_DIR), metavar="DIRECTORY", help=argparse.SUPPRESS)
    lesson.set_defaults(handler=lesson_command)


def choose_language(requested: str | None) -> str:
    """--lang if given, else SOCKPLAY_LANG, else Chinese when the locale is Chinese, else English."""
    if requested:
        return requested
    wanted = os.environ.get("SOCKPLAY_LANG", "")
    if wanted in LANGUAGES:
        return wanted
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name, "")
        if value:
            return "zh" if value.lower().startswith("zh") else DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


def _label(lang: str, key: str, **values: object) -> str:
    return _LABELS[lang][key].format(**values)


def _load(directory: str) -> Catalog | None:
    catalog = load_catalog(directory)
    for error in catalog.errors:
        print(f"sockplay: {error}", file=sys.stderr)
    if not catalog.lessons:
        print(f"sockplay: no lessons in {directory}", file=sys.stderr)
        return None
    return catalog


# sockplay lessons


def lessons_command(args: argparse.Namespace) -> int:
    lang = choose_language(args.lang)
    catalog = _load(args.dir)
    if catalog is None:
        return EXIT_USAGE
    if args.check:
        if not catalog.runnable():
            print(f"sockplay: no runnable lessons in {args.dir}", file=sys.stderr)
            return EXIT_USAGE
        return check_command(catalog, lang, args)
    ready = len(catalog.runnable())
    print(_label(lang, "ready", ready=ready, total=len(catalog)))
    for lesson in catalog:
        line = f"{lesson.number:>3}  {lesson.slug:<28} {lesson.title_in(lang)}"
        if isinstance(lesson, PlannedLesson):
            note = _label(lang, "not_yet", needs=lesson.needs_in(lang))
            line += f"  （{note}）" if lang == "zh" else f"  ({note})"
        print(line)
    print(_label(lang, "hint"))
    return EXIT_DIVERGED if catalog.errors else EXIT_OK


def check_command(catalog: Catalog, lang: str, args: argparse.Namespace) -> int:
    from playground.lessons.check import check_lesson  # starts labs: imported only when checking

    verbose = args.verbose
    host_network = bool(getattr(args, "host_network", False))
    held = bad = 0
    for lesson in catalog:
        head = f"{lesson.number:>3}  {lesson.slug:<28}"
        if isinstance(lesson, PlannedLesson):
            print(f"{head} -  {_label(lang, 'not_yet', needs=lesson.needs_in(lang))}", flush=True)
            continue
        on_step = None
        if verbose:
            print(f"{head} ...", flush=True)

            def on_step(report: StepReport, _indent: str = " " * 7) -> None:
                if not report.block_end and report.iteration in (None, 1):
                    print(f"{_indent}{report.text}", flush=True)

        check = asyncio.run(check_lesson(lesson, args.timeout, on_step, host_network=host_network))
        if check.holds:
            held += 1
            verdict = _label(lang, "holds")
        else:
            bad += 1
            verdict = _label(lang, "failed" if check.error else "diverges")
        print(f"{head} {verdict:<8} {check.steps_run:>4} {_label(lang, 'steps')}  {check.seconds:5.1f} s", flush=True)
        if verbose:
            for summary in check.summaries:
                print(f"       {summary}")
        else:
            for block in check.blocks():
                print(f"       {block.describe()}")
        for problem in check.problems():
            print(f"       {problem}")
    ran = held + bad
    print(_label(lang, "summary", held=held, ran=ran, bad=bad, planned=len(catalog.planned())))
    if catalog.errors:
        return EXIT_USAGE
    return EXIT_DIVERGED if bad else EXIT_OK


# sockplay lesson NAME


def lesson_command(args: argparse.Namespace) -> int:
    lang = choose_language(args.lang)
    catalog = _load(args.dir)
    if catalog is None:
        return EXIT_USAGE
    lesson = catalog.find(args.name)
    if lesson is None:
        print(f"sockplay: no lesson named {args.name!r} (`sockplay lessons` lists them)", file=sys.stderr)
        return EXIT_USAGE
    if isinstance(lesson, Lesson) and not getattr(args, "text", False) and sys.stdout.isatty():
        try:
            from widgets.lesson_mode import run_lesson  # the TUI loads only when asked for
        except ImportError as exc:
            print(f"sockplay: the TUI cannot start ({exc}); showing the text", file=sys.stderr)
        else:
            from playground.cli.signals import default_signals

            default_signals()  # the TUI reads Ctrl-C as a key; until now a signal exits quietly
            return run_lesson(
                lesson.name,
                lang,
                allow_network=bool(getattr(args, "allow_network", False)),
                host_network=bool(getattr(args, "host_network", False)),
                directory=args.dir,
            )
    print(render_lesson(lesson, lang), end="")
    return EXIT_OK


def render_lesson(lesson: Lesson | PlannedLesson, lang: str, width: int | None = None) -> str:
    """A lesson as text to read: title, introduction, then each step with the prose around it."""
    width = width or min(TEXT_WIDTH, shutil.get_terminal_size((TEXT_WIDTH + 2, 24)).columns - 2)
    heading = f"{_label(lang, 'lesson', number=lesson.number)} · {lesson.title_in(lang)}"
    chunks: list[tuple[str, list[str]]] = [("prose", [heading, "=" * min(width, display_width(heading))])]
    summary = lesson.summary_in(lang)
    if summary:
        chunks.append(("prose", wrap(summary, lang, width)))
    if isinstance(lesson, PlannedLesson):
        chunks.append(("prose", wrap(_label(lang, "planned", needs=lesson.needs_in(lang)), lang, width)))
        return _join_chunks(chunks)
    chunks += [("prose", wrap(p, lang, width)) for p in lesson.intro.get(lang, [])]
    for line in lesson.script.lines:
        chunks += _step_chunks(lesson, line, lang, width)
        if isinstance(line.node, Repeat):
            for inner in line.node.lines:
                chunks += _step_chunks(lesson, inner, lang, width, margin="    ")
            chunks.append(("code", ["    end"]))
            chunks += _prose(lesson, line, lang, width, "after", "  ")
    chunks += [("prose", wrap(p, lang, width)) for p in lesson.outro.get(lang, [])]
    chunks.append(("prose", [_label(lang, "end", number=lesson.number)]))
    return _join_chunks(chunks)


def _join_chunks(chunks: list[tuple[str, list[str]]]) -> str:
    """Consecutive lines of code stay together; prose is set off by blank lines."""
    out: list[str] = []
    previous = None
    for kind, lines in chunks:
        if previous is not None and not (kind == previous == "code"):
            out.append("")
        out += lines
        previous = kind
    return "\n".join(out) + "\n"


def _prose(lesson: Lesson, line: Line, lang: str, width: int, where: str, indent: str = "") -> list:
    return [("prose", wrap(p, lang, width, indent=indent)) for p in lesson.prose(line, lang, where)]


def _step_chunks(lesson: Lesson, line: Line, lang: str, width: int, margin: str = "") -> list:
    """The prose before a line, the line as code, and (unless it opens a block) the prose after it."""
    chunks = _prose(lesson, line, lang, width, "before", margin)
    chunks.append(("code", [margin + "    " + line.text.strip()]))
    if not isinstance(line.node, Repeat):
        chunks += _prose(lesson, line, lang, width, "after", margin + "  ")
    return chunks


# Wrapping that knows Chinese characters take two columns and may break anywhere.

_NO_LINE_START = set("，。、；：？！）》」』”’．,.;:?!)]…")
_NO_LINE_END = set("（《「『“‘([")


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _tokens(text: str) -> list[str]:
    """Words (with their trailing space) for Latin text; single characters for CJK."""
    tokens: list[str] = []
    word = ""
    for ch in text:
        wide = unicodedata.east_asian_width(ch) in ("W", "F")
        if wide:
            if word:
                tokens.append(word)
                word = ""
            tokens.append(ch)
        elif ch == " ":
            tokens.append(word + " ")
            word = ""
        else:
            word += ch
    if word:
        tokens.append(word)
    return tokens


def wrap(text: str, lang: str, width: int, indent: str = "") -> list[str]:
    """Break a paragraph into lines of at most `width` columns (a longer single word stays whole).

    Closing punctuation never starts a line: the character before it moves down with it.
    """
    lines: list[str] = []
    current: list[str] = []

    def used(tokens: list[str]) -> int:
        return display_width(indent + "".join(tokens).rstrip())

    for token in _tokens(text):
        if current and used([*current, token]) > width:
            carried: list[str] = []
            head = token
            # Move characters down until the new line starts with one that may start a line.
            while head[:1] in _NO_LINE_START and len(current) > 1 and not current[-1].endswith(" "):
                head = current.pop()
                carried.insert(0, head)
            # ... and the line does not end with an opening bracket or quote.
            while current and current[-1][-1:] in _NO_LINE_END and len(current) > 1:
                carried.insert(0, current.pop())
            lines.append((indent + "".join(current)).rstrip())
            current = carried
        current.append(token)
    if current:
        lines.append((indent + "".join(current)).rstrip())
    return lines

"""Lessons: `.sockplay` scripts with prose in comments, loaded into a catalog.

A lesson file is an ordinary script (it runs with `sockplay run`); its prose
and metadata live in comment lines, which the parser keeps (see README.md in
this directory for the format):

    #% number: 1                      metadata, before `sockplay 1`
    #% title: close() sends a FIN
    #% title.zh: close() 发送 FIN
    #en Introduction ...              the lesson's introduction (before `sockplay 1`)
    #zh 引言……
    sockplay 1
    #en Now the client closes.        prose introducing the step below it
    #zh 现在客户端关闭套接字。
    client: close(c) = 0
    #en^ close returned at once ...   prose explaining the step above it
    #zh^ close 立刻返回……
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from playground.constants import DEFAULT_LANGUAGE, LANGUAGES
from playground.script.errors import ScriptError
from playground.script.model import Line, Repeat, Script

LESSONS_DIR = Path(__file__).resolve().parent
SUFFIX = ".sockplay"

# `#en text`, `#zh text`, `#en^ text` (after the step above); a bare `#en` breaks a paragraph.
_PROSE = re.compile(r"#(?P<lang>[a-z]{2})(?P<after>\^)?(?:\s(?P<text>.*))?\Z")
# `#% key: value`, `#% key.zh: value`
_META = re.compile(r"#%\s*(?P<key>[a-z][a-z0-9_-]*)(?:\.(?P<lang>[a-z]{2}))?\s*:\s*(?P<value>.*)\Z")
_FILE_NAME = re.compile(r"(?P<number>\d+)-(?P<slug>[a-z0-9][a-z0-9-]*)\.sockplay\Z")
_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff]")
_CJK_PUNCTUATION = re.compile(r"[\u3000-\u303f\uff00-\uffef\u2018-\u201d\u2026]")

Paragraphs = dict[str, list[str]]  # language -> paragraphs


class LessonError(Exception):
    """A lesson file that cannot be loaded: bad script, or bad prose/metadata."""


@dataclass
class LessonStep:
    """One line of a lesson's script, with the prose before and after it."""

    line: Line
    before: Paragraphs = field(default_factory=dict)
    after: Paragraphs = field(default_factory=dict)
    in_block: bool = False  # one of a repeat block's lines

    def prose(self, lang: str, where: str = "before") -> list[str]:
        table = self.before if where == "before" else self.after
        return list(table.get(lang, ()))


@dataclass
class Lesson:
    """A runnable lesson: its metadata, its script and its prose per step and language."""

    number: int
    slug: str
    path: Path
    title: dict[str, str]
    summary: dict[str, str]
    script: Script
    intro: Paragraphs = field(default_factory=dict)
    outro: Paragraphs = field(default_factory=dict)
    steps: list[LessonStep] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)

    runnable = True

    @property
    def name(self) -> str:
        return f"{self.number:02d}-{self.slug}"

    @property
    def shipped(self) -> bool:
        """One of sockplay's own lessons (in LESSONS_DIR): an outside program it runs is sockplay's choice,
        not a downloaded script's, so it runs without --allow-exec."""
        return self.path.resolve().parent == LESSONS_DIR

    def title_in(self, lang: str) -> str:
        return self.title.get(lang) or self.title[DEFAULT_LANGUAGE]

    def summary_in(self, lang: str) -> str:
        return self.summary.get(lang) or self.summary[DEFAULT_LANGUAGE]

    def step_at(self, line_number: int) -> LessonStep | None:
        """The step written on that line of the file (a repeat block's opener or one of its lines)."""
        return next((s for s in self.steps if s.line.number == line_number), None)

    def prose(self, line: Line | int, lang: str, where: str = "before") -> list[str]:
        """The paragraphs shown before (or after) a line, in one language."""
        number = line if isinstance(line, int) else line.number
        step = self.step_at(number)
        return step.prose(lang, where) if step else []

    def languages(self) -> set[str]:
        """Every language any prose of the lesson is written in."""
        langs = set(self.title) | set(self.summary) | set(self.intro) | set(self.outro)
        for step in self.steps:
            langs |= set(step.before) | set(step.after)
        return langs

    def problems(self) -> list[str]:
        """What a lesson file lacks: a title, summary or introduction in a language, or prose in one only."""
        out = []
        for lang in LANGUAGES:
            for what, table in (("title", self.title), ("summary", self.summary), ("introduction", self.intro)):
                if not table.get(lang):
                    out.append(f"{self.path.name}: no {what} in {lang}")
        for step in self.steps:
            for where, table in (("before", step.before), ("after", step.after)):
                present = {lang for lang, paras in table.items() if paras}
                if present and present != set(LANGUAGES):
                    missing = ", ".join(sorted(set(LANGUAGES) - present))
                    out.append(f"{self.path.name}:{step.line.number}: prose {where} this line lacks {missing}")
        present = {lang for lang, paras in self.outro.items() if paras}
        if present and present != set(LANGUAGES):
            out.append(f"{self.path.name}: the closing prose lacks {', '.join(sorted(set(LANGUAGES) - present))}")
        return out


@dataclass(frozen=True)
class PlannedLesson:
    """A lesson the catalog knows of that cannot run yet (it needs what the engine lacks)."""

    number: int
    slug: str
    title: dict[str, str]
    summary: dict[str, str]
    needs: dict[str, str]  # what the engine lacks, per language: "needs the network lab ..."

    runnable = False

    def needs_in(self, lang: str) -> str:
        return self.needs.get(lang) or self.needs[DEFAULT_LANGUAGE]

    @property
    def name(self) -> str:
        return f"{self.number:02d}-{self.slug}"

    def title_in(self, lang: str) -> str:
        return self.title.get(lang) or self.title[DEFAULT_LANGUAGE]

    def summary_in(self, lang: str) -> str:
        return self.summary.get(lang) or self.summary[DEFAULT_LANGUAGE]


# Lessons the catalog lists before their file exists (shown as "not yet", with what the engine lacks).
PLANNED: tuple[PlannedLesson, ...] = ()


# Loading.


def _glued(left: str, right: str) -> bool:
    """Whether two CJK pieces join without a space (a space stays between Chinese and a Latin word)."""
    if _CJK_PUNCTUATION.match(left) or _CJK_PUNCTUATION.match(right):
        return True
    return bool(_CJK.match(left) and _CJK.match(right))


def _join(lang: str, lines: list[str]) -> str:
    """Join a paragraph's lines: with spaces, except between Chinese characters and punctuation."""
    text = ""
    for piece in lines:
        piece = piece.strip()
        if not piece:
            continue
        if text and not (lang == "zh" and _glued(text[-1], piece[0])):
            text += " "
        text += piece
    return text


class _Prose:
    """Collects prose lines into paragraphs per language and placement."""

    def __init__(self) -> None:
        self.before: dict[str, list[list[str]]] = {}
        self.after: dict[str, list[list[str]]] = {}

    def add(self, lang: str, after: bool, text: str | None) -> None:
        table = self.after if after else self.before
        paras = table.setdefault(lang, [[]])
        if text is None or not text.strip():
            if paras[-1]:
                paras.append([])
            return
        paras[-1].append(text)

    def paragraph_break(self) -> None:
        """A blank line or a plain comment ends the paragraph being written in every language."""
        for table in (self.before, self.after):
            for paras in table.values():
                if paras[-1]:
                    paras.append([])

    @staticmethod
    def _done(table: dict[str, list[list[str]]]) -> Paragraphs:
        out: Paragraphs = {}
        for lang, paras in table.items():
            texts = [_join(lang, p) for p in paras if p]
            if texts:
                out[lang] = texts
        return out

    def results(self) -> tuple[Paragraphs, Paragraphs]:
        return self._done(self.before), self._done(self.after)


def _read_comments(comments: Iterable[str], path: Path, where: str) -> _Prose:
    prose = _Prose()
    for raw in comments:
        text = raw.strip()
        if not text:
            prose.paragraph_break()
            continue
        if not text.startswith("#"):
            continue
        if text.startswith("#%"):
            raise LessonError(f"{path.name}: metadata ({text!r}) belongs before 'sockplay 1', not {where}")
        match = _PROSE.match(text)
        if match is None:
            prose.paragraph_break()  # an ordinary script comment
            continue
        if match["lang"] not in LANGUAGES:  # `#ok ...` and the like: an ordinary comment
            prose.paragraph_break()
            continue
        prose.add(match["lang"], bool(match["after"]), match["text"])
    return prose


def _merge(into: Paragraphs, more: Paragraphs) -> None:
    for lang, paras in more.items():
        into.setdefault(lang, []).extend(paras)


def load_lesson(path: Path | str) -> Lesson:
    """Parse one lesson file; raises LessonError (a bad script, or bad metadata or prose)."""
    path = Path(path)
    script = _read_script(path)
    meta, title, summary, header = _read_metadata(script, path)
    intro, intro_after = _read_comments(header, path, "in the header").results()
    if intro_after:
        raise LessonError(f"{path.name}: '#en^' prose in the header has no step above it")
    number, slug = _number_and_slug(meta, path)
    if DEFAULT_LANGUAGE not in title:
        raise LessonError(f"{path.name}: no '#% title: ...'")
    summary.setdefault(DEFAULT_LANGUAGE, "")
    lesson = Lesson(number, slug, path, title, summary, script, intro=intro, meta=meta)
    _attach_prose(lesson, script, path)
    return lesson


def _read_script(path: Path) -> Script:
    from playground.script.parser import parse_script  # not at import: the TUI names lessons before it loads one

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LessonError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return parse_script(raw, str(path))
    except ScriptError as exc:
        raise LessonError(str(exc)) from None


def _read_metadata(script: Script, path: Path) -> tuple[dict[str, str], dict[str, str], dict[str, str], list[str]]:
    """The header's `#% key: value` lines (meta, title and summary by language) and its other comments."""
    meta: dict[str, str] = {}
    title: dict[str, str] = {}
    summary: dict[str, str] = {}
    header: list[str] = []
    for comment in script.header_comments:  # the parser keeps these without their '#'
        text = "#" + comment
        match = _META.match(text)
        if not match:
            header.append(text if comment else "")
            continue
        key, lang, value = match["key"], match["lang"] or DEFAULT_LANGUAGE, match["value"].strip()
        if lang not in LANGUAGES:
            raise LessonError(f"{path.name}: unknown language {lang!r} in '#% {key}.{lang}'")
        if key == "title":
            title[lang] = value
        elif key == "summary":
            summary[lang] = value
        elif match["lang"] is None:
            meta[key] = value
    return meta, title, summary, header


def _number_and_slug(meta: dict[str, str], path: Path) -> tuple[int, str]:
    file_match = _FILE_NAME.match(path.name)
    number_text = meta.get("number") or (file_match["number"] if file_match else None)
    if number_text is None or not number_text.isdigit():
        raise LessonError(f"{path.name}: no lesson number ('#% number: N' or a file name like 01-name.sockplay)")
    slug = meta.get("slug") or (file_match["slug"] if file_match else path.stem)
    return int(number_text), slug


def _attach_prose(lesson: Lesson, script: Script, path: Path) -> None:
    """One LessonStep per line, with the prose before it and the `^` prose after it."""
    previous: LessonStep | None = None

    def attach(line: Line, in_block: bool) -> LessonStep:
        nonlocal previous
        prose = _read_comments(line.leading, path, f"before line {line.number}")
        before, after = prose.results()
        if after:
            if previous is None:
                raise LessonError(f"{path.name}:{line.number}: '^' prose has no step above it")
            _merge(previous.after, after)
        step = LessonStep(line, before, {}, in_block)
        lesson.steps.append(step)
        previous = step
        return step

    for line in script.lines:
        opener = attach(line, False)
        if isinstance(line.node, Repeat):
            for inner in line.node.lines:
                attach(inner, True)
            # Prose just before `end` explains the block's last line.
            before, after = _read_comments(line.node.trailing, path, f"before line {line.node.end_number}").results()
            assert previous is not None
            _merge(previous.after, before)
            _merge(previous.after, after)
            previous = opener  # prose after `end` with '^' explains the whole block
    before, after = _read_comments(script.trailing, path, "at the end").results()
    if after:
        if previous is None:
            raise LessonError(f"{path.name}: '^' prose at the end has no step above it")
        _merge(previous.after, after)
    lesson.outro = before


# The catalog.


@dataclass
class Catalog:
    """Every lesson, runnable or planned, in order of number."""

    lessons: list[Lesson | PlannedLesson]
    errors: list[str] = field(default_factory=list)  # files that failed to load

    def runnable(self) -> list[Lesson]:
        return [lesson for lesson in self.lessons if isinstance(lesson, Lesson)]

    def planned(self) -> list[PlannedLesson]:
        return [lesson for lesson in self.lessons if isinstance(lesson, PlannedLesson)]

    def find(self, name: str | int) -> Lesson | PlannedLesson | None:
        """By number (`1`, `01`), slug (`close-sends-fin`), full name (`01-close-sends-fin`) or file name."""
        key = str(name).strip().lower().removesuffix(SUFFIX)
        if key.isdigit():
            return next((lesson for lesson in self.lessons if lesson.number == int(key)), None)
        for lesson in self.lessons:
            if key in (lesson.slug, lesson.name):
                return lesson
        return None

    def __iter__(self):
        return iter(self.lessons)

    def __len__(self) -> int:
        return len(self.lessons)


def lesson_files(directory: Path | str = LESSONS_DIR) -> list[Path]:
    return sorted(Path(directory).glob(f"*{SUFFIX}"))


def load_catalog(directory: Path | str = LESSONS_DIR, planned: bool = True) -> Catalog:
    """Load every lesson file in the directory (and, by default, the planned lessons)."""
    found: dict[int, Lesson | PlannedLesson] = {}
    errors: list[str] = []
    for path in lesson_files(directory):
        try:
            lesson = load_lesson(path)
        except LessonError as exc:
            errors.append(str(exc))
            continue
        if lesson.number in found:
            errors.append(f"{path.name}: lesson number {lesson.number} is taken by {found[lesson.number].name}")
            continue
        found[lesson.number] = lesson
    if planned:
        for plan in PLANNED:
            found.setdefault(plan.number, plan)
    return Catalog([found[n] for n in sorted(found)], errors)

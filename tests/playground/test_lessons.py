"""The lessons: each one holds on the live kernel, a wrong expectation is caught, the prose is complete."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from playground.cli.lessons import choose_language, display_width, render_lesson, wrap
from playground.cli.main import main as cli_main
from playground.lab import Lab
from playground.lessons import LANGUAGES, LESSONS_DIR, Lesson, LessonError, PlannedLesson, load_catalog, load_lesson
from playground.lessons import catalog as catalog_module
from playground.lessons.check import check_lesson
from playground.script.model import Completion, Repeat, Step
from tests.helpers import REPO

CATALOG = load_catalog()
RUNNABLE = CATALOG.runnable()
EXPECTED_RUNNABLE = list(range(1, 26))
EXPECTED_PLANNED: list[int] = []


FUTURE = PlannedLesson(
    99,
    "future-lesson",
    {"en": "A lesson still to come", "zh": "一课尚未写成"},
    {"en": "What it will show.", "zh": "它将展示的内容。"},
    {"en": "needs what the engine lacks", "zh": "需要引擎尚缺的功能"},
)


@pytest.fixture
def placeholder(monkeypatch: pytest.MonkeyPatch) -> PlannedLesson:
    """A made-up placeholder in the catalog (every real one has been written), for the tests of placeholders."""
    monkeypatch.setattr(catalog_module, "PLANNED", (*catalog_module.PLANNED, FUTURE))
    return FUTURE


def sockplay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "playground.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=90,
    )


# The catalog.


def test_the_catalog_loads_every_lesson_file_without_errors() -> None:
    assert CATALOG.errors == []
    assert [lesson.number for lesson in RUNNABLE] == EXPECTED_RUNNABLE
    assert [lesson.number for lesson in CATALOG.planned()] == EXPECTED_PLANNED
    assert [lesson.number for lesson in CATALOG] == sorted(EXPECTED_RUNNABLE + EXPECTED_PLANNED)
    assert len({lesson.slug for lesson in CATALOG}) == len(CATALOG)


@pytest.mark.parametrize("lesson", RUNNABLE, ids=[lesson.name for lesson in RUNNABLE])
def test_every_lesson_has_its_title_summary_and_prose_in_both_languages(lesson: Lesson) -> None:
    assert lesson.problems() == []
    for lang in LANGUAGES:
        assert lesson.title_in(lang) == lesson.title[lang] and lesson.title[lang].strip()
        assert lesson.summary[lang].strip()
        assert lesson.intro[lang] and all(p.strip() for p in lesson.intro[lang])
        assert lesson.outro[lang], f"{lesson.name} has no closing prose in {lang}"
        explained = [s for s in lesson.steps if s.prose(lang, "before") or s.prose(lang, "after")]
        assert len(explained) >= 4, f"{lesson.name} explains only {len(explained)} steps in {lang}"
    # The Chinese is Chinese and the English is not.
    assert any("\u4e00" <= ch <= "\u9fff" for ch in "".join(lesson.intro["zh"]))
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in "".join(lesson.intro["en"]))


@pytest.mark.parametrize("lesson", RUNNABLE, ids=[lesson.name for lesson in RUNNABLE])
def test_every_step_states_its_outcome_or_the_prose_says_why_not(lesson: Lesson) -> None:
    for step in lesson.steps:
        node = step.line.node
        # A repeat run's new name (`s[i] = socket(tcp)`) gets a new descriptor each run: no one outcome to state.
        per_run = step.in_block and node.var is not None and "[" in node.var if isinstance(node, Step) else False
        if isinstance(node, Step) and not node.blocks and node.expect is None and not per_run:
            for lang in LANGUAGES:
                assert step.prose(lang, "after"), (
                    f"{lesson.path.name}:{step.line.number} states no outcome and does not explain why in {lang}"
                )
        if isinstance(node, Completion):
            assert node.expect is not None, f"{lesson.path.name}:{step.line.number} leaves a blocked call unstated"


def test_the_catalog_finds_lessons_by_number_slug_and_name() -> None:
    first = CATALOG.find(1)
    assert isinstance(first, Lesson) and first.slug == "close-sends-fin"
    assert CATALOG.find("01") is first
    assert CATALOG.find("close-sends-fin") is first
    assert CATALOG.find("01-close-sends-fin.sockplay") is first
    assert CATALOG.find("no-such-lesson") is None


def test_the_catalog_lists_a_placeholder_by_its_number_and_name(placeholder: PlannedLesson) -> None:
    planned = load_catalog().find(placeholder.slug)
    assert planned == placeholder and load_catalog().find(99) == placeholder and not planned.runnable
    for lang in LANGUAGES:
        assert planned.needs_in(lang) and planned.title_in(lang) and planned.summary_in(lang)


def test_a_lesson_file_replaces_the_placeholder_with_its_number(tmp_path: Path, placeholder: PlannedLesson) -> None:
    planned = placeholder
    assert load_catalog(tmp_path).planned() == [planned]
    (tmp_path / f"{planned.number:02d}-{planned.slug}.sockplay").write_text(
        "#% title: Soon\n#% title.zh: 快了\n#% summary: s\n#% summary.zh: 概要\nsockplay 1\nspawn a\n"
    )
    catalog = load_catalog(tmp_path)
    assert isinstance(catalog.find(planned.number), Lesson)
    assert [lesson.number for lesson in catalog.planned()] == [n for n in EXPECTED_PLANNED if n != planned.number]


# The prose format.

SAMPLE = """\
#% number: 42
#% title: A sample
#% title.zh: 样例
#% summary: What it shows.
#% summary.zh: 展示什么。
#% topic: 7
#
#en The introduction, written
#en on two lines.
#en
#en A second paragraph.
#zh 引言分成
#zh 两行来写，中间提到 FIN
#zh 报文。
sockplay 1

spawn a
# an ordinary comment, not prose
#en Before the socket call.
#zh 调用 socket 之前。
a: s = socket(udp)                = 3
#en^ After the socket call.
#zh^ socket 调用之后。

#en Before the block.
#zh 循环之前。
repeat 2
#en Before the first repeated line.
#zh 第一行之前。
a: getsockopt(s, SO_RCVBUF)
a: getsockopt(s, SO_SNDBUF)
#en Before end: about the block's last line.
#zh 在 end 之前：说的是最后一行。
end
#en^ About the whole block.
#zh^ 关于整个循环。
a: close(s)                       = 0
#en^ After the close.
#zh^ 关闭之后。

#en The conclusion.
#zh 结语。
"""


def sample(tmp_path: Path, text: str = SAMPLE, name: str = "42-sample.sockplay") -> Lesson:
    path = tmp_path / name
    path.write_text(text)
    return load_lesson(path)


def test_metadata_and_introduction_come_from_the_header(tmp_path: Path) -> None:
    lesson = sample(tmp_path)
    assert (lesson.number, lesson.slug) == (42, "sample")
    assert lesson.title == {"en": "A sample", "zh": "样例"}
    assert lesson.summary == {"en": "What it shows.", "zh": "展示什么。"}
    assert lesson.meta == {"number": "42", "topic": "7"}
    assert lesson.intro["en"] == ["The introduction, written on two lines.", "A second paragraph."]
    # Chinese lines join without a space, except beside a Latin word.
    assert lesson.intro["zh"] == ["引言分成两行来写，中间提到 FIN 报文。"]
    assert lesson.outro == {"en": ["The conclusion."], "zh": ["结语。"]}
    assert lesson.problems() == []


def test_prose_attaches_before_and_after_the_right_steps(tmp_path: Path) -> None:
    lesson = sample(tmp_path)
    lines = {step.line.text.split("=")[0].strip(): step for step in lesson.steps}
    socket_step = lines["a: s"]
    assert socket_step.prose("en") == ["Before the socket call."]
    assert socket_step.prose("zh", "after") == ["socket 调用之后。"]
    block = next(step for step in lesson.steps if isinstance(step.line.node, Repeat))
    assert block.prose("en") == ["Before the block."]
    assert block.prose("en", "after") == ["About the whole block."]
    first, last = (step for step in lesson.steps if step.in_block)
    assert first.prose("en") == ["Before the first repeated line."]
    assert last.prose("zh", "after") == ["在 end 之前：说的是最后一行。"]
    assert lesson.prose(lesson.steps[-1].line, "en", "after") == ["After the close."]
    assert lesson.prose(lesson.steps[0].line.number, "en") == []  # `spawn a`: an ordinary comment is not prose


def test_prose_in_one_language_only_is_reported(tmp_path: Path) -> None:
    text = SAMPLE.replace("#zh^ socket 调用之后。\n", "")
    lesson = sample(tmp_path, text)
    problems = lesson.problems()
    assert len(problems) == 1 and "prose after this line lacks zh" in problems[0]


def test_a_bad_lesson_file_is_refused_with_its_position(tmp_path: Path) -> None:
    number = SAMPLE.splitlines().index("a: s = socket(udp)                = 3") + 1
    with pytest.raises(LessonError, match=rf"42-sample.sockplay:{number}:8: unknown call 'sockit'"):
        sample(tmp_path, SAMPLE.replace("a: s = socket(udp)", "a: s = sockit(udp)"))
    with pytest.raises(LessonError, match="no '#% title"):
        sample(tmp_path, SAMPLE.replace("#% title: A sample\n", ""))
    with pytest.raises(LessonError, match="metadata"):
        sample(tmp_path, SAMPLE.replace("spawn a\n", "spawn a\n#% title: late\n"))


def test_a_lesson_file_runs_as_an_ordinary_script(tmp_path: Path) -> None:
    path = tmp_path / "42-sample.sockplay"
    path.write_text(SAMPLE)
    result = sockplay("run", str(path))
    assert result.returncode == 0, result.stderr
    # The prose is printed where it stands.
    assert "#en Before the socket call.\n#zh 调用 socket 之前。\na: s = socket(udp) = 3" in result.stdout
    assert "#en^ About the whole block." in result.stdout


# Every lesson holds on the live kernel.


@pytest.mark.parametrize("lesson", RUNNABLE, ids=[lesson.name for lesson in RUNNABLE])
async def test_lesson_holds_on_the_live_kernel(lesson: Lesson) -> None:
    check = await check_lesson(lesson, step_timeout=10.0)
    assert check.problems() == []
    assert check.holds
    stated = [s for s in check.report.steps if isinstance(s.line.node, (Step, Completion)) and s.result is not None]
    assert stated, "the lesson made no calls"


async def test_the_nagle_lesson_shows_the_delayed_ack_and_its_fixes() -> None:
    lesson = CATALOG.find("nagle-and-delayed-ack")
    assert isinstance(lesson, Lesson)
    check = await check_lesson(lesson)
    assert check.holds, check.problems()
    nagle, nodelay, writev, cork = (block.runs_ms for block in check.blocks())
    median = lambda runs: sorted(runs)[len(runs) // 2]  # noqa: E731
    # The stall is the delayed-ACK timer (tens of ms); every fix is far below it. Shape, not exact figures.
    assert median(nagle) > 10 * max(median(nodelay), median(writev), median(cork))
    assert median(nagle) > 5.0
    assert len(check.summaries) == 5 + 5 + 4 + 7  # one summary line per repeated step


# A wrong expectation is a divergence, never a silent pass.

WRONG = (
    "server: read(a, 100)                     = 0",
    "server: read(a, 100)                     = -1 ECONNRESET",
)  # what the notes claim


def wrong_lesson(tmp_path: Path) -> Path:
    original = LESSONS_DIR / "02-write-after-peer-closed.sockplay"
    text = original.read_text()
    assert text.count(WRONG[0]) == 2  # the read after the RST, and the one after it
    path = tmp_path / original.name
    path.write_text(text.replace(*WRONG, 1))
    return path


async def test_a_lesson_with_a_wrong_expected_outcome_diverges(tmp_path: Path) -> None:
    path = wrong_lesson(tmp_path)
    lesson = load_lesson(path)
    number = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if text == WRONG[1])
    check = await check_lesson(lesson)
    assert not check.holds
    assert check.problems() == [f"{path.name}:{number}: expected = -1 ECONNRESET, got = 0 (errno differs)"]


WRONG_FLAG = ("~ server.a > client.c RST", "~ server.a > client.c FIN")  # what a close without unread data would send


async def test_a_lesson_stating_the_wrong_flag_on_the_wire_diverges(tmp_path: Path) -> None:
    lab = await Lab.start()
    try:
        if lab.capture is None:
            pytest.skip(f"no packet capture here: {lab.capture_reason}")
    finally:
        await lab.shutdown()
    original = LESSONS_DIR / "05-close-with-unread-data.sockplay"
    text = original.read_text()
    assert text.count(WRONG_FLAG[0] + "\n") == 1
    path = tmp_path / original.name
    path.write_text(text.replace(WRONG_FLAG[0] + "\n", WRONG_FLAG[1] + "\n"))
    number = next(i for i, line in enumerate(path.read_text().splitlines(), 1) if line == WRONG_FLAG[1])
    check = await check_lesson(load_lesson(path))
    assert not check.holds
    # Only that line diverges, and it names what the kernel did send: the RST.
    problems = check.problems()
    assert len(problems) == 1, problems
    assert problems[0].startswith(
        f"{path.name}:{number}: expected server.a > client.c FIN, saw server.a > client.c RST"
    ), problems


def test_lessons_check_exits_1_and_names_the_line_when_a_lesson_diverges(tmp_path: Path) -> None:
    wrong_lesson(tmp_path)
    result = sockplay("lessons", "--check", "--dir", str(tmp_path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "DIVERGES" in result.stdout
    assert "expected = -1 ECONNRESET, got = 0" in result.stdout
    assert "0 of 1 lessons hold; 1 diverged" in result.stdout


def test_lessons_check_exits_0_when_every_lesson_holds(tmp_path: Path) -> None:
    for name in ("01-close-sends-fin.sockplay", "13-not-always-reliable.sockplay"):
        (tmp_path / name).write_bytes((LESSONS_DIR / name).read_bytes())
    result = sockplay("lessons", "--check", "--dir", str(tmp_path), "--lang", "zh")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(re.findall(r"^ +\d+  \S+ +通过 ", result.stdout, flags=re.M)) == 2


# The commands.


def test_lessons_lists_every_lesson_on_one_line_each() -> None:
    result = sockplay("lessons", "--lang", "en")
    assert result.returncode == 0, result.stderr
    rows = [row for row in result.stdout.splitlines() if re.match(r" *\d+  \S", row)]
    assert [int(row[:3]) for row in rows] == sorted(EXPECTED_RUNNABLE + EXPECTED_PLANNED)
    assert "close-sends-fin" in rows[0] and "close() sends a FIN" in rows[0]
    zh = sockplay("lessons", "--lang", "zh")
    assert "close() 发送 FIN" in zh.stdout


def test_lessons_lists_a_placeholder_as_not_yet_and_lesson_says_it_cannot_run(
    placeholder: PlannedLesson, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["lessons", "--lang", "en"]) == 0
    row = next(row for row in capsys.readouterr().out.splitlines() if re.match(r" *99  ", row))
    assert "future-lesson" in row and "not yet: needs what the engine lacks" in row
    assert cli_main(["lessons", "--lang", "zh"]) == 0
    assert "暂不可用" in capsys.readouterr().out
    assert cli_main(["lesson", "99", "--lang", "en"]) == 0
    assert "cannot run yet" in capsys.readouterr().out


def test_lesson_prints_prose_and_steps_in_the_chosen_language() -> None:
    en = sockplay("lesson", "1", "--lang", "en")
    assert en.returncode == 0, en.stderr
    assert en.stdout.startswith("Lesson 1 · close() sends a FIN\n")
    assert "    client: close(c)                         = 0" in en.stdout
    assert "read returns 0" in en.stdout
    zh = sockplay("lesson", "close-sends-fin", "--lang", "zh")
    assert zh.stdout.startswith("第 1 课 · close() 发送 FIN\n")
    assert "文件结束" in zh.stdout
    assert sockplay("lesson", "99").returncode == 2


@pytest.mark.parametrize("lang", LANGUAGES)
def test_rendered_lessons_fit_the_width(lang: str) -> None:
    for lesson in RUNNABLE:
        for row in render_lesson(lesson, lang, width=70).splitlines():
            if not row.startswith("    "):  # code keeps its own lines
                assert display_width(row) <= 70, (lesson.name, row)


def test_chinese_wrapping_keeps_punctuation_off_the_start_of_a_line() -> None:
    text = "这是一个很长的句子，" * 12
    rows = wrap(text, "zh", 21)
    assert all(display_width(row) <= 21 for row in rows)
    assert not any(row.startswith("，") for row in rows)
    assert "".join(rows) == text
    # A run of closing punctuation moves down together with the word before it.
    rows = wrap("或者使用了 MSG_NOSIGNAL）。如果", "zh", 24)
    assert rows == ["或者使用了", "MSG_NOSIGNAL）。如果"]


def test_the_language_follows_the_option_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SOCKPLAY_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    assert choose_language(None) == "en"
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert choose_language(None) == "zh"
    assert choose_language("en") == "en"
    monkeypatch.setenv("SOCKPLAY_LANG", "en")
    assert choose_language(None) == "en"


async def test_a_lesson_from_elsewhere_runs_no_outside_program_unless_allowed(tmp_path: Path) -> None:
    original = LESSONS_DIR / "25-watch-a-client.sockplay"
    (tmp_path / original.name).write_bytes(original.read_bytes())
    copy = load_lesson(tmp_path / original.name)
    assert load_lesson(original).shipped and not copy.shipped
    check = await check_lesson(copy, step_timeout=1.0)  # (its accept then waits for no client)
    assert not check.holds
    assert any("--allow-exec" in problem for problem in check.problems()), check.problems()

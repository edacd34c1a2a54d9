"""Guided experiments: `.sockplay` scripts with prose in English and Chinese (see README.md here)."""

from playground.lessons.catalog import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    LESSONS_DIR,
    PLANNED,
    Catalog,
    Lesson,
    LessonError,
    LessonStep,
    PlannedLesson,
    load_catalog,
    load_lesson,
)

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "LESSONS_DIR",
    "PLANNED",
    "Catalog",
    "Lesson",
    "LessonError",
    "LessonStep",
    "PlannedLesson",
    "load_catalog",
    "load_lesson",
]

"""The documentation a user of the repository reads: the contract, the README, the links.

* ``docs/spec.md`` is the contract (SPEC) cxpulse implements, kept identical to the
  shared copy next to the repository (``../shared/SPEC.md``) where that exists.
* No text file says "session N" or "issue N": history lives in git, the files state rules.
* The README's first screen names the two commands, and it stays short.
* ``docs/configuration.md`` names every environment variable the settings loader reads.
* Every relative link of the READMEs and of ``docs/`` leads to a file that exists, and
  every repository path they quote (``streams/engine.py``, ``tests/x.py::test_y``)
  names a file, and a test, that exist.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED_SPEC = ROOT.parent / "shared" / "SPEC.md"
#: directories that are not the repository's text: git, the venv, caches and build output
SKIP_DIRS = frozenset(
    {".git", ".venv", ".venvs", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache",
     ".hypothesis", "build", "dist", "cxpulse-data"}
)  # fmt: skip
HISTORY = re.compile(r"session [0-9]|issue [0-9]", re.IGNORECASE)
#: ``[text](target)`` and ``![alt](target)``, and reference definitions ``[label]: target``
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
#: files the documented commands write, not part of the repository
OUTPUTS = frozenset(
    {"benchmarks/results.json", "benchmarks/results-peers.json", "benchmarks/results-scale.json"}
)
#: a quoted repository path, ``folder/…/file.ext``, optionally ``::function``
QUOTED_PATH = re.compile(
    r"(?<![\w./-])((?:schemas|streams|agents|tests|benchmarks|deploy|docs)/[\w./-]*\w\.\w+)"
    r"(?:::(\w+))?"
)


def repository_text_files() -> Iterator[Path]:
    """Every file under the repository root that decodes as UTF-8 text."""
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        for name in files:
            path = Path(folder) / name
            data = path.read_bytes()
            if b"\0" in data:
                continue
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                continue
            yield path


def markdown_files() -> list[Path]:
    return [
        ROOT / "README.md",
        ROOT / "deploy" / "README.md",
        *sorted((ROOT / "docs").glob("*.md")),
    ]


def relative_links(text: str) -> list[str]:
    """Link targets outside code blocks and spans that name a file of the repository."""
    prose = CODE_SPAN.sub("", FENCE.sub("", text))
    targets = INLINE_LINK.findall(prose) + REFERENCE_LINK.findall(prose)
    return [
        t
        for t in targets
        if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.IGNORECASE) and not t.startswith("#")
    ]


def test_the_contract_in_docs_is_the_shared_spec() -> None:
    if not SHARED_SPEC.is_file():
        pytest.skip(f"no shared contract at {SHARED_SPEC} to compare docs/spec.md with")
    assert (ROOT / "docs" / "spec.md").read_bytes() == SHARED_SPEC.read_bytes(), (
        "docs/spec.md differs from ../shared/SPEC.md: copy it (cp ../shared/SPEC.md docs/spec.md)"
    )


def test_no_file_tells_history() -> None:
    found = []
    for path in repository_text_files():
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if HISTORY.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not found, "state the rule, not when it was learned:\n" + "\n".join(found)


def test_the_configuration_reference_names_every_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from cxpulse.streams import settings

    read: set[str] = set()

    class Recording(settings._Source):
        """The loader's view of the environment, keeping the names it asked for."""

        def check_all_used(self) -> None:
            read.update(self.known)
            super().check_all_used()

    monkeypatch.setattr(settings, "_Source", Recording)
    # a schedule, so that the business-hours keys are read too
    schedule = {"mon": "09:00-17:00"}
    settings.load_settings(
        env={
            "CXPULSE_TICKETS_BUSINESS_HOURS_TIMEZONE": "UTC",
            "CXPULSE_TICKETS_BUSINESS_HOURS_HOURS": json.dumps(schedule),
        }
    )
    assert "CXPULSE_TIME_ALLOWED_LATENESS" in read and len(read) > 30
    reference = (ROOT / "docs" / "configuration.md").read_text("utf-8")
    day = re.compile(r"_(MON|TUE|WED|THU|FRI|SAT|SUN)$")
    missing = sorted(
        {day.sub("_<DAY>", v) for v in read} - set(re.findall(r"CXPULSE_[A-Z_<>]+", reference))
    )
    assert not missing, f"add to docs/configuration.md: {missing}"


def test_the_readme_is_short_and_its_first_screen_names_the_two_commands() -> None:
    lines = (ROOT / "README.md").read_text("utf-8").splitlines()
    assert len(lines) <= 160, f"README.md has {len(lines)} lines; the details go in docs/"
    first_screen = "\n".join(lines[:25])
    assert "make demo" in first_screen
    assert "make test" in first_screen


def test_relative_links_lead_to_files_that_exist() -> None:
    broken = []
    for doc in markdown_files():
        for target in relative_links(doc.read_text("utf-8")):
            path = unquote(target.split("#", 1)[0])
            if not (doc.parent / path).exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target}")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_quoted_paths_and_tests_exist() -> None:
    missing = []
    for doc in markdown_files():
        for span in CODE_SPAN.findall(doc.read_text("utf-8")):
            for path, function in QUOTED_PATH.findall(span):
                file = ROOT / path
                if path in OUTPUTS:
                    continue
                if not file.is_file():
                    missing.append(f"{doc.relative_to(ROOT)}: {path}")
                elif function and not re.search(
                    rf"^(?:async )?def {function}\(", file.read_text("utf-8"), re.MULTILINE
                ):
                    missing.append(f"{doc.relative_to(ROOT)}: {path}::{function}")
    assert not missing, "quoted paths that do not exist:\n" + "\n".join(missing)


def test_quoted_paths_are_found() -> None:
    spans = "`streams/engine.py` `tests/unit/test_a.py::test_b` `.venv/bin/cxpulse` `cx.kpi`"
    found = [m for span in CODE_SPAN.findall(spans) for m in QUOTED_PATH.findall(span)]
    assert found == [("streams/engine.py", ""), ("tests/unit/test_a.py", "test_b")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[spec](spec.md) and [ops](docs/x.md#run)", ["spec.md", "docs/x.md#run"]),
        ('![wall](img/wall.png "the wall")', ["img/wall.png"]),
        ("[site](https://example.com) [top](#top) <http://a.b>", []),
        ("`[not](a.md)` and\n```\n[nor](b.md)\n```\n", []),
        ("[label]: ../c.md\n", ["../c.md"]),
    ],
)
def test_relative_links_are_found_in_prose_only(text: str, expected: list[str]) -> None:
    assert relative_links(text) == expected


def test_history_pattern_matches_what_it_must() -> None:
    # built from parts, so that this file does not match itself
    assert HISTORY.search("found in Session " + "8")
    assert HISTORY.search("(issue " + "7 item 2)")
    assert not HISTORY.search("cart sessions, issues and tickets")
    assert not HISTORY.search("sessions " + "3 and issues " + "4")

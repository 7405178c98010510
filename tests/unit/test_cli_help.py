"""What ``cxpulse --help`` tells a new user: plain text, every command."""

from __future__ import annotations

import re

import pytest

from cxpulse.agents.cli import build_parser


def test_help_is_plain_text_and_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert not re.search(r"``|:mod:|:class:|:func:", out), out
    for command in ("worker", "broker", "replay", "generate", "kpis", "demo", "bench"):
        assert command in out
    assert "CXPULSE_<SECTION>_<KEY>" in out

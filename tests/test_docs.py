"""The README's command reference is the real --help output.

Regenerate it with:  .venv/bin/python -m tests.test_docs
"""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from iqeval.cli import cli

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"<!-- help: (?P<cmd>[a-z]+) -->\n```\n(?P<body>.*?)```\n", re.S)


def help_text(command: str) -> str:
    result = CliRunner().invoke(cli, [command, "--help"], prog_name="iqeval", terminal_width=100)
    assert result.exit_code == 0
    return result.output


def test_readme_help_is_current():
    text = README.read_text()
    blocks = list(BLOCK.finditer(text))
    assert {m["cmd"] for m in blocks} == {"compare", "diff"}
    for m in blocks:
        assert m["body"] == help_text(m["cmd"]), f"README help for {m['cmd']} is stale: python -m tests.test_docs"


def test_readme_quick_start_is_two_commands():
    text = README.read_text()
    quick = text.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = re.findall(r"^make (\w+)", quick, re.M)
    assert commands == ["demo", "test"]


def update() -> None:
    text = README.read_text()
    README.write_text(BLOCK.sub(lambda m: f"<!-- help: {m['cmd']} -->\n```\n{help_text(m['cmd'])}```\n", text))


if __name__ == "__main__":
    update()

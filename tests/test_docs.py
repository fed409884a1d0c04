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


def _table(heading: str) -> list[list[str]]:
    text = README.read_text()
    section = text.split(heading, 1)[1]
    rows = []
    for line in section.splitlines()[1:]:
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip("|").split("|")])
        elif rows:
            break
    return rows[2:]  # without the header and the rule


def test_readme_exit_codes_are_the_code():
    from iqeval import cli as cli_module

    documented = {int(row[0]) for row in _table("## Exit codes")}
    constants = {v for k, v in vars(cli_module).items() if k.startswith("EXIT_")}
    assert documented == constants


def test_readme_formats_are_the_code():
    from iqeval.io import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

    section = README.read_text().split("## Input formats", 1)[1]
    images = re.search(r"Still images: (.*?)\.\n", section, re.S)
    videos = re.search(r"Videos and animations: (.*?)\.\s", section, re.S)
    assert images and videos
    assert set(re.findall(r"`([^`]+)`", images[1])[0].split()) == IMAGE_EXTENSIONS
    assert set(re.findall(r"`([^`]+)`", videos[1])[0].split()) == VIDEO_EXTENSIONS

"""README's two commands are the ones the project really runs."""

import re

from hub_ext.paths import REPO_ROOT


def readme_commands() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text()
    return re.findall(r"```sh\n(.+?)\n```", text)


def test_ci_runs_readme_test_command():
    commands = readme_commands()
    assert len(commands) >= 2, "README must show the start command and the test command first"
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci.splitlines()


def test_first_command_starts_the_platform():
    assert readme_commands()[0] == "bash .ci/setup && .venv/bin/goldenhub up"

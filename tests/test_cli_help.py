"""`--help` on every command, found by walking the parser (a new command is covered too)."""

import argparse
from collections.abc import Iterator

import pytest

from api import cli


def _commands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, str]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            summaries = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield (*prefix, name), sub, summaries.get(name, "")
                yield from _commands(sub, (*prefix, name))


COMMANDS = list(_commands(cli.parser()))


def test_the_commands_the_readme_lists_exist() -> None:
    names = {" ".join(path) for path, _, _ in COMMANDS}
    expected = {"serve", "migrate", "create-user", "set-password", "users", "users list"}
    assert expected | {"users disable", "export", "import"} <= names


@pytest.mark.parametrize(
    ("path", "parser", "summary"), COMMANDS, ids=[" ".join(c[0]) for c in COMMANDS]
)
def test_every_command_explains_itself(
    path: tuple[str, ...],
    parser: argparse.ArgumentParser,
    summary: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert len(summary) > 10, f"{path}: no summary in the command list"
    assert parser.description
    assert len(parser.description) > 10
    for action in parser._actions:
        if action.option_strings != ["-h", "--help"] and not isinstance(
            action, argparse._SubParsersAction
        ):
            assert action.help, f"{path}: {action.dest} has no help"
    with pytest.raises(SystemExit) as exit_:
        cli.main([*path, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: inventory {' '.join(path)}")
    assert parser.description.splitlines()[0] in out

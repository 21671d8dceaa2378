"""The README's curl walk-through runs top to bottom as written, against a real server.

Each command's output is compared with the `# → …` line(s) under it, where `…` stands for
anything; a command with no such line must print nothing.
"""

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.server import running_server

README = Path(__file__).resolve().parent.parent / "README.md"
# Characters a form field must have encoded: the walk-through sends it with --data-urlencode.
PASSWORD = "a pass&word=+with %symbols"
MARK = "@@step {}@@"


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)


def walkthrough() -> str:
    text = README.read_text()
    section = text[text.index("## Walk-through with curl") :]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match, "the curl walk-through has no ```sh block"
    return match.group(1)


def steps(block: str) -> list[Step]:
    found: list[Step] = []
    continued = False
    for line in block.splitlines():
        if continued:
            found[-1].command += "\n" + line
        elif line.startswith("# → "):
            found[-1].expected.append(line.removeprefix("# → "))
        elif line.strip() and not line.startswith("#"):
            found.append(Step(line))
        continued = line.endswith("\\")
    return found


def matches(expected: str, actual: str) -> bool:
    """`expected` with `…` for anything; whitespace at either end of a part is loose."""
    parts = [re.escape(part.strip()) for part in expected.split("…")]
    return re.fullmatch(r"\s*" + ".*?".join(parts) + r"\s*", actual, re.DOTALL) is not None


def test_steps_are_parsed() -> None:
    parsed = steps('A=1\n# note\ncurl -s x \\\n  -d y\n# → {"a":…}\n')
    assert parsed == [Step("A=1"), Step("curl -s x \\\n  -d y", ['{"a":…}'])]
    assert matches('{"a":…,"b":2}', '{"a":1,"c":3,"b":2}')
    assert not matches('{"a":…,"b":2}', '{"a":1,"b":3}')


@pytest.mark.skipif(not shutil.which("curl"), reason="curl is not installed")
def test_the_curl_walkthrough_runs_as_written(tmp_path: Path) -> None:
    parsed = steps(walkthrough())
    assert any(s.expected for s in parsed)
    script = "\n".join(
        f"printf '\\n{MARK.format(i)}\\n'\n{s.command}" for i, s in enumerate(parsed)
    )
    with running_server(tmp_path / "data", PASSWORD) as base:
        done = subprocess.run(  # noqa: S603
            ["bash", "-euo", "pipefail", "-c", script],  # noqa: S607
            env={**os.environ, "BASE": base, "PASSWORD": PASSWORD},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    outputs = re.split(r"\n" + MARK.format(r"\d+") + r"\n", done.stdout.replace("\r\n", "\n"))[1:]
    assert len(outputs) == len(parsed), done.stdout
    for step, output in zip(parsed, outputs, strict=True):
        expected = "\n".join(step.expected)
        if expected:
            assert matches(expected, output), f"{step.command}\nexpected {expected}\ngot {output}"
        else:
            assert output.strip() == "", f"{step.command}\nprinted {output}"

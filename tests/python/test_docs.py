"""Every ```python block of docs/presets.md and docs/python.md runs (each in a fresh namespace, in a
temporary working folder), and so does every `./build/mla` command of their ```sh blocks, so
the documented usage cannot drift from the module."""
import os
import re
import shlex
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = ("docs/presets.md", "docs/python.md")


def blocks(language):
    out = []
    for doc in DOCS:
        with open(os.path.join(ROOT, doc)) as f:
            text = f.read()
        for i, code in enumerate(re.findall(r"```" + language + r"\n(.*?)```", text, re.S)):
            out.append(pytest.param(code, id=f"{os.path.basename(doc)}-{i}"))
    return out


@pytest.mark.parametrize("code", blocks("python"))
def test_python_example_runs(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "<doc>", "exec"), {"__name__": "__doc_example__"})


def cli_commands():
    out = []
    for param in blocks("sh"):
        for command in param.values[0].replace("\\\n", " ").splitlines():
            if command.startswith("./build/mla "):
                out.append(pytest.param(command, id=param.id))
    return out


@pytest.mark.parametrize("command", cli_commands())
def test_cli_example_runs(command, tmp_path):
    cli = os.path.abspath(os.environ.get("MLA_CLI", os.path.join(ROOT, "build", "mla")))
    args = [cli] + shlex.split(command)[1:]
    run = subprocess.run(args, cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr


def test_every_doc_has_examples():
    assert {p.id.split("-")[0] for p in blocks("python")} == {"presets.md", "python.md"}
    assert cli_commands()

"""mla.__version__ is the library's MLA_VERSION (from the extension), the same as `mla --version`
and project(VERSION) in CMakeLists.txt."""
import os
import re
import subprocess

import pytest

import mla

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_version_matches_the_project_and_the_cli():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        project = re.search(r"project\(mla_cpp VERSION (\d+\.\d+\.\d+)", f.read()).group(1)
    assert mla.__version__ == project
    assert mla._mla.__version__ == project
    cli = os.environ.get("MLA_CLI")
    if not cli:
        pytest.fail("MLA_CLI is not set: run through ctest, or export MLA_CLI=build/mla")
    out = subprocess.run([cli, "--version"], capture_output=True, text=True, timeout=60)
    assert out.stdout == "mla " + mla.__version__ + "\n"

"""`mla --version` prints "mla <version>" with the version of project(VERSION) in CMakeLists.txt
(the one mla/version.h carries), on stdout, exit code 0."""
import os
import re
import subprocess

from test_bench import cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def project_version():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        return re.search(r"project\(mla_cpp VERSION (\d+\.\d+\.\d+)", f.read()).group(1)


def test_version_flag():
    r = subprocess.run([cli(), "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "mla " + project_version() + "\n"
    assert r.stderr == ""

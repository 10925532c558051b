"""`pip install` of the built package works offline (no build isolation, no dependencies
fetched), and the installed copy imports and runs outside the build tree."""
import os
import subprocess
import sys

import pytest

import mla

PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(mla.__file__)))  # build/python


def test_pip_install_offline(tmp_path):
    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode:
        pytest.skip("pip is not installed")
    target = tmp_path / "site"
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    run = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation",
                          "--no-deps", "--target", str(target), PKG_DIR],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    check = ("import numpy as np, mla; assert mla.__file__.startswith(%r); "
             "print(mla.RopelessMLA(64, 4, 16)(np.ones((1, 3, 64), np.float32))[0].shape)"
             % str(target))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=env,
                         cwd=str(tmp_path), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(1, 3, 64)"

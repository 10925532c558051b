"""`pip install` works offline (no build isolation, no dependencies fetched): of the package CMake
built (build/python), and of the source checkout (`pip install .`, setup.py building with CMake,
here reusing this build folder) into a fresh `python3 -m venv --system-site-packages`; the
installed copy imports without PYTHONPATH, outside the tree, and trains with mla.torch."""
import os
import subprocess
import sys

import pytest

import mla

PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(mla.__file__)))  # build/python
BUILD_DIR = os.path.dirname(PKG_DIR)                                       # build
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OFFLINE = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")


def no_pythonpath():
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def need_pip():
    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode:
        pytest.skip("pip is not installed")


def test_pip_install_offline(tmp_path):
    need_pip()
    target = tmp_path / "site"
    run = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation",
                          "--no-deps", "--target", str(target), PKG_DIR],
                         capture_output=True, text=True, env=OFFLINE, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    check = ("import numpy as np, mla; assert mla.__file__.startswith(%r); "
             "print(mla.RopelessMLA(64, 4, 16)(np.ones((1, 3, 64), np.float32))[0].shape)"
             % str(target))
    env = dict(no_pythonpath(), PYTHONPATH=str(target))
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=env,
                         cwd=str(tmp_path), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(1, 3, 64)"


def test_pip_install_checkout_into_a_fresh_venv(tmp_path):
    need_pip()
    if not os.path.isfile(os.path.join(BUILD_DIR, "CMakeCache.txt")):
        pytest.skip("mla was not imported from a CMake build folder")
    venv = tmp_path / "venv"
    # --without-pip: ensurepip would take most of the test's time; this pip installs into the
    # venv's interpreter (--python), which is the one the build is for.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    env = dict(OFFLINE, MLA_BUILD_DIR=BUILD_DIR)
    env.pop("PYTHONPATH", None)
    run = subprocess.run([sys.executable, "-m", "pip", "--python", python, "install",
                          "--no-build-isolation", "--no-deps", ROOT],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    check = """
import torch, mla
from mla.torch import MLA, MLAConfig
assert mla.__file__.startswith(%r), mla.__file__
attn = MLA(MLAConfig(d_model=32, num_heads=4, kv_compressed_dim=8, q_compressed_dim=16,
                     rope_dim=4, seq_len=16))
x = torch.randn(2, 8, 32, requires_grad=True)
attn(x).square().mean().backward()
print(mla.__version__, tuple(x.grad.shape))
""" % str(venv)
    out = subprocess.run([python, "-c", check], capture_output=True, text=True,
                         env=no_pythonpath(), cwd=str(tmp_path), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [mla.__version__, "(2,", "8,", "32)"]

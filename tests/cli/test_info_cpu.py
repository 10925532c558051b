"""`mla info --cpu` (the CPU, its ISA flags and each kernel family's measured candidates and
choice), MLA_SIMD's hold on the choices, and `--threads` on the commands that compute."""
import os
import subprocess

import pytest


from mla_cli import cli  # noqa: E402


def run(*args, env=None):
    return subprocess.run([cli(), *args], capture_output=True, text=True, timeout=120, env=env)


FAMILIES = ["latent-attention-f32-cache", "latent-attention-bf16-cache",
            "latent-attention-fp8-cache", "latent-attention-int8-cache", "skinny-f32-weights",
            "skinny-bf16-weights", "gemm-bf16-weights"]


def test_info_cpu_lists_every_family_and_its_choice():
    env = {k: v for k, v in os.environ.items() if k != "MLA_SIMD"}
    r = run("info", "--cpu", env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("cpu: ") and lines[1].startswith("isa: ")
    # AMX: usable only when CPUID reports it and the OS grants the tiles (with the reason if not).
    amx = lines[2]
    assert amx in ("amx: not present", "amx: present, permitted") or \
        amx.startswith("amx: present, refused by the OS ("), amx
    assert ("amx_bf16" in lines[1]) == (amx != "amx: not present")
    assert lines[3].startswith("onednn isa: ") and len(lines[3]) > len("onednn isa: ")
    for family in FAMILIES:
        block = r.stdout.split(family, 1)[1].split("chosen: ", 1)
        assert len(block) == 2, family
        chosen = block[1].split()[0]
        assert chosen in block[0], (family, chosen)  # the choice is one of the listed candidates
        assert "(measured)" in block[1].splitlines()[0]


def test_mla_simd_amx_is_clamped_where_tiles_are_not_usable():
    r = run("info", "--cpu", env=dict(os.environ, MLA_SIMD="amx"))
    assert r.returncode == 0, r.stderr
    assert "ignoring MLA_SIMD" not in r.stderr  # a known level name
    usable = "amx: present, permitted" in r.stdout
    assert ("amx-bf16" in r.stdout) == usable
    level = r.stdout.split("simd level: ", 1)[1].split()[0]
    assert (level == "amx") == usable


def test_mla_simd_holds_the_choice():
    env = dict(os.environ, MLA_SIMD="avx2")
    r = run("info", "--cpu", env=env)
    assert r.returncode == 0, r.stderr
    if "avx2" not in r.stdout.split("isa: ", 1)[1].splitlines()[0]:
        pytest.skip("this CPU lacks AVX2")
    chosen = [line.split()[1] for line in r.stdout.splitlines() if line.strip().startswith("chosen:")]
    assert chosen[:6] == ["avx2-fma", "avx2-widen", "avx2-widen", "avx2-widen", "avx2-fma",
                          "avx2-widen"], chosen


@pytest.mark.parametrize("command", ["demo", "attention", "generate"])
def test_threads_must_be_positive(command):
    r = run(command, "--threads", "0")
    assert r.returncode == 2
    assert len(r.stderr.splitlines()) == 1 and "--threads" in r.stderr


def test_demo_with_threads():
    r = run("demo", "--preset", "tiny", "--prompt", "4", "--decode", "2", "--threads", "2")
    assert r.returncode == 0, r.stderr

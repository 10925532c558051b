"""No data lost when `mla train` is killed in the middle of a save: the previous checkpoint
stays intact and loadable, an existing output file keeps its old contents, and --resume after
the kill ends with the same bytes as a run that was never interrupted.

MLA_TEST_SLOW_SAVE=<ms> (cli/test_hooks.h, through mla::set_before_rename_hook) makes an atomic write announce itself on stderr
once its temporary file is complete and then wait before the rename: the test SIGKILLs the
process inside that window, the worst moment for a save."""
import os
import signal
import subprocess

import pytest

ENV = dict(os.environ, OMP_WAIT_POLICY="passive")
TINY = ["--d-model", 64, "--layers", 2, "--heads", 4, "--seq", 32, "--batch", 8, "--dropout", 0.1,
        "--eval-every", 10]


from mla_cli import cli  # noqa: E402


def run(*args):
    r = subprocess.run([cli(), *map(str, args)], capture_output=True, text=True, timeout=300, env=ENV)
    assert r.returncode == 0, r.stderr
    return r


def kill_during_save(args, target):
    """Runs `mla` with slow saves and SIGKILLs it while it is saving `target` (after the
    temporary file is written, before the rename). Returns the temporary file's path."""
    env = dict(ENV, MLA_TEST_SLOW_SAVE="60000", MLA_TEST_SLOW_SAVE_PATH=str(target))
    p = subprocess.Popen([cli(), *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, env=env)
    try:
        for line in p.stderr:
            if line.startswith("test hook: ") and f"{target} written to " in line:
                p.send_signal(signal.SIGKILL)
                p.wait(timeout=60)
                return line.split(" written to ")[1].split(", renaming")[0]
        pytest.fail(f"the process ended (code {p.wait()}) without saving {target}")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_killed_checkpoint_save_keeps_the_previous_one_and_resume_is_exact(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    common = ["train", *TINY, "--steps", 30, "--checkpoint-every", 10]
    run(*common, "--checkpoint-dir", a)

    tmp = kill_during_save([*common, "--checkpoint-dir", b], b / "step_00000020.safetensors")
    # The kill landed mid-save: the new checkpoint exists only as its temporary file.
    assert os.path.exists(tmp)
    assert not (b / "step_00000020.safetensors").exists()
    # The previous checkpoint is intact (the same bytes as the uninterrupted run's) and loads.
    assert (b / "step_00000010.safetensors").read_bytes() == (a / "step_00000010.safetensors").read_bytes()
    out = run("generate", "--checkpoint", b, "--prompt", "abc|", "--max-tokens", 4, "--temperature", 0)
    assert out.stdout.startswith("abc|")

    # Resuming from the folder skips the temporary file and takes step 10.
    r = run("train", "--resume", b, "--checkpoint-dir", b, "--checkpoint-every", 10)
    assert "resuming at step 10" in r.stdout
    for step in (20, 30):
        name = f"step_{step:08d}.safetensors"
        assert (b / name).read_bytes() == (a / name).read_bytes(), name


def test_killed_overwrite_keeps_the_old_file(tmp_path):
    # --plot is written once, at the end, over whatever file is there.
    plot = tmp_path / "loss.png"
    plot.write_bytes(b"the previous plot")
    tmp = kill_during_save(["train", *TINY, "--steps", 3, "--plot", plot], plot)
    assert os.path.exists(tmp) and os.path.getsize(tmp) > 0
    assert plot.read_bytes() == b"the previous plot"

"""Ctrl-C and SIGTERM end a training run within seconds, whatever it is doing: last.ckpt saved (in training and
validation), exit 130 (SIGINT) or 143 (SIGTERM), no traceback, no DataLoader worker left behind.

Each signal is sent as it arrives in real use: Ctrl-C to the foreground process group, SIGTERM to the group (a
cluster's preemption, ``kill -- -<pgid>``), and SIGTERM through ``timeout``, which relays it to its group a second
time. The fast run covers every signal in every stage, and every worker count, in nine cases, and the device data
path (data.on_device=true, no workers) in each stage; ``-m slow`` all the other cases."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import SMALL_CNN, TRAIN_COMMAND

SIGNALS = ("ctrl-c", "sigterm", "timeout")
STAGES = ("train", "validate", "test")
WORKERS = (0, 1, 2)
# A Latin square: each signal meets each stage once and each worker count once.
FAST_CASES = [(s, stage, WORKERS[(i + j) % 3]) for i, s in enumerate(SIGNALS) for j, stage in enumerate(STAGES)]
FAST_CASES += [(SIGNALS[j], stage, "device") for j, stage in enumerate(STAGES)]  # the device path: no workers
SLOW_CASES = [case for case in itertools.product(SIGNALS, STAGES, (*WORKERS, "device")) if case not in FAST_CASES]


def start(tmp_path: Path, how: str, stage: str, workers: int | str) -> subprocess.Popen:
    marker = tmp_path / "marker"
    command = [
        *TRAIN_COMMAND,
        "data=synthetic",
        "data.synthetic.train=8",
        "data.synthetic.val=4",
        "data.synthetic.test=4",
        "data.batch_size=8",
        "data.augment=true",
        f"data.num_workers={0 if workers == 'device' else workers}",
        f"data.on_device={workers == 'device'}",
        *SMALL_CNN,
        "trainer.max_epochs=3",
        "trainer.enable_progress_bar=false",
        "+callbacks.wait_for_signal._target_=tests.training.interrupt_points.WaitForSignal",
        f"+callbacks.wait_for_signal.stage={stage}",
        f"+callbacks.wait_for_signal.marker={marker}",
    ]
    if how == "timeout":
        command = [shutil.which("timeout"), "600", *command]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}  # tests.training importable
    return subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # A terminal's foreground job: Ctrl-C reaches it even where these tests run in a background job (`make test &`),
        # whose shell set SIGINT to ignored, a setting every child would inherit.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def interrupt(process: subprocess.Popen, how: str) -> None:
    if how == "ctrl-c":  # the terminal sends SIGINT to the foreground process group
        os.killpg(process.pid, signal.SIGINT)
    elif how == "sigterm":
        os.killpg(process.pid, signal.SIGTERM)
    else:  # `timeout` is the group leader: it relays the signal to the command, then to the whole group again
        os.killpg(process.pid, signal.SIGTERM)


def check(tmp_path: Path, how: str, stage: str, workers: int | str) -> None:
    process = start(tmp_path, how, stage, workers)
    deadline = time.monotonic() + 240
    while not (tmp_path / "marker").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the run never reached {stage}: " + process.communicate()[0].decode()[-3000:])
        time.sleep(0.1)
    signalled = time.monotonic()
    interrupt(process, how)
    try:
        output = process.communicate(timeout=60)[0].decode()
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail(f"{how} in {stage} with {workers} workers: still running 60 s later (a hang)")
    seconds = time.monotonic() - signalled
    expected = 128 + (signal.SIGINT if how == "ctrl-c" else signal.SIGTERM)
    assert process.returncode == expected, output[-3000:]
    assert "Traceback" not in output and "killed by signal" not in output, output[-3000:]
    assert seconds < 20, f"{seconds:.1f} s from the signal to the exit"
    [last] = tmp_path.glob("outputs/train/runs/*/checkpoints/last.ckpt")
    state = torch.load(last, weights_only=True)
    if stage != "test":  # test starts after fit, whose last.ckpt is the finished run's
        assert "Interrupted at epoch" in output, output[-3000:]
        assert state["loops"]["fit_loop"]["epoch_progress"]["current"]["completed"] < 3
    with pytest.raises(ProcessLookupError):  # no worker outlives the run (they share its process group)
        os.killpg(process.pid, 0)


@pytest.mark.parametrize(("how", "stage", "workers"), FAST_CASES)
def test_an_interrupt_saves_and_ends_the_run(tmp_path: Path, how: str, stage: str, workers: int | str) -> None:
    check(tmp_path, how, stage, workers)


@pytest.mark.slow
@pytest.mark.parametrize(("how", "stage", "workers"), SLOW_CASES)
def test_an_interrupt_saves_and_ends_the_run_in_every_case(
    tmp_path: Path, how: str, stage: str, workers: int | str
) -> None:
    check(tmp_path, how, stage, workers)

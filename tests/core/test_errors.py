"""One error style for bad input (core/errors.py): one line naming the thing, exit status 2, no traceback unless
HYDRA_FULL_ERROR=1; a sweep job's error is raised for the sweep to record."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.errors import InstantiationException

from fer_lightning.core import errors
from fer_lightning.core.errors import EXIT_BAD_INPUT, user_error, user_errors


def run_command(module: str, *overrides: str, cwd: Path, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", module, *overrides],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def error_lines(out: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (out.stdout + out.stderr).splitlines() if "[ERROR]" in line or "Error" in line]


def test_a_bad_config_value_is_one_line_naming_the_key_and_exit_status_2(tmp_path: Path) -> None:
    out = run_command(
        "fer_lightning.train", "data=synthetic", "data.batch_size=0", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path
    )
    text = out.stdout + out.stderr
    assert out.returncode == EXIT_BAD_INPUT, text
    assert "Traceback" not in text and "Error in call to target" not in text and "HYDRA_FULL_ERROR" not in text
    lines = error_lines(out)
    assert len(lines) == 1 and "data.batch_size=0" in lines[0] and "expected" in lines[0], text


def test_a_missing_checkpoint_is_one_line_and_exit_status_2_in_eval(tmp_path: Path) -> None:
    out = run_command("fer_lightning.eval", f"ckpt_path={tmp_path / 'none.ckpt'}", cwd=tmp_path)
    text = out.stdout + out.stderr
    assert out.returncode == EXIT_BAD_INPUT and "Traceback" not in text, text
    lines = error_lines(out)
    assert len(lines) == 1 and "none.ckpt" in lines[0], text


def raises(error: BaseException):
    @user_errors
    def main() -> None:
        raise error

    return main


def test_the_error_behind_hydras_instantiate_is_the_one_shown(caplog: pytest.LogCaptureFixture) -> None:
    try:
        try:
            raise ValueError("model.lr=-1: expected a value in (0, inf)")
        except ValueError as cause:
            raise InstantiationException("Error in call to target 'x':\nValueError(...)") from cause
    except InstantiationException as wrapped:
        assert str(user_error(wrapped)).startswith("model.lr=-1")
        with pytest.raises(SystemExit) as exit_info:
            raises(wrapped)()
    assert exit_info.value.code == EXIT_BAD_INPUT
    assert [r.getMessage() for r in caplog.records] == ["model.lr=-1: expected a value in (0, inf)"]


def test_other_errors_a_sweep_job_and_hydra_full_error_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RuntimeError):
        raises(RuntimeError("a bug"))()
    monkeypatch.setattr(errors, "in_multirun", lambda: True)
    with pytest.raises(ValueError):  # the sweep records the failed job and goes on
        raises(ValueError("data.batch_size=0: expected a value in [1, inf)"))()
    monkeypatch.setattr(errors, "in_multirun", lambda: False)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(FileNotFoundError):
        raises(FileNotFoundError("ckpt_path=x does not exist"))()

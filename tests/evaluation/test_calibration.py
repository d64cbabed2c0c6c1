"""Expected calibration error as torchmetrics defines it, and a temperature fit that recovers a known one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassCalibrationError

from fer_lightning.evaluation.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    reliability_bins,
)


def overconfident(n: int, temperature: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities softmax(z) of labels drawn from softmax(z / temperature): a net ``temperature`` times too sharp."""
    rng = np.random.default_rng(seed)
    logits = torch.from_numpy(rng.normal(size=(n, 7)) * 3)
    true = torch.multinomial((logits / temperature).softmax(-1), 1, generator=torch.Generator().manual_seed(seed))[:, 0]
    return logits.softmax(-1).numpy().astype(np.float32), true.numpy()


def test_ece_equals_torchmetrics_and_the_bins_add_up() -> None:
    probabilities, true = overconfident(3000, 2.0)
    for bins in (15, 10):
        theirs = MulticlassCalibrationError(num_classes=7, n_bins=bins, norm="l1")(
            torch.from_numpy(probabilities), torch.from_numpy(true)
        )
        assert expected_calibration_error(probabilities, true, bins) == pytest.approx(float(theirs), abs=1e-5)
    table = reliability_bins(probabilities, true, 15)
    assert (
        len(table) == 15
        and table["faces"].sum() == 3000
        and table["lower"].iloc[0] == 0
        and table["upper"].iloc[-1] == 1
    )
    perfect = np.eye(7, dtype=np.float32)[true]
    assert expected_calibration_error(perfect, true, 15) == 0


def test_temperature_fitted_on_one_set_recovers_the_true_one_and_lowers_ece_on_another() -> None:
    val, val_true = overconfident(4000, 2.0, seed=1)
    test, test_true = overconfident(4000, 2.0, seed=2)
    temperature = fit_temperature(val, val_true, max_iter=100)
    assert temperature == pytest.approx(2.0, rel=0.1)
    scaled = apply_temperature(test, temperature)
    assert (scaled.argmax(1) == test.argmax(1)).all()  # accuracy unchanged
    np.testing.assert_allclose(scaled.sum(1), 1, atol=1e-5)
    assert expected_calibration_error(scaled, test_true, 15) < expected_calibration_error(test, test_true, 15) / 3
    assert negative_log_likelihood(scaled, test_true) < negative_log_likelihood(test, test_true)
    # The NLL minimum: a nudge either way is no better.
    for other in (temperature * 0.95, temperature * 1.05):
        assert negative_log_likelihood(apply_temperature(val, other), val_true) > negative_log_likelihood(
            apply_temperature(val, temperature), val_true
        )


def test_zero_probabilities_do_not_break_the_fit() -> None:
    probabilities = np.array([[1, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0], [0.5, 0.5, 0, 0, 0, 0, 0]] * 20, np.float32)
    true = np.array([0, 0, 1] * 20)
    temperature = fit_temperature(probabilities, true, max_iter=50)
    assert np.isfinite(temperature) and temperature > 0

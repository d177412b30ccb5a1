"""The GRU part on its own: numerical trouble is a warning, not a crash."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mlflow_pairs.model import SequencePart, TrainingConfig, TrainingDivergenceWarning


def _windows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    windows = rng.normal(size=(n, 5, 3)).astype("float32")
    return windows, (windows[:, -1, 0] > 0).astype("float32")


def test_a_nan_validation_loss_in_the_first_epoch_warns_and_stops() -> None:
    train = _windows(64, 1)
    bad_windows, labels = _windows(16, 2)
    bad_windows[0, 0, 0] = np.nan  # one unknown value poisons the validation loss
    part = SequencePart(TrainingConfig(epochs=3, torch_threads=1))
    with pytest.warns(TrainingDivergenceWarning, match="validation loss is nan at epoch 0"):
        part.fit(train, (bad_windows, labels))
    assert part.history_ == []
    assert part.best_epoch_ == -1
    # The (untrained) network still answers, so the caller can report and go on.
    assert part.predict_proba(train[0][:4]).shape == (4,)


def test_a_finite_run_does_not_warn() -> None:
    part = SequencePart(TrainingConfig(epochs=2, torch_threads=1))
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingDivergenceWarning)
        part.fit(_windows(64, 1), _windows(16, 2))
    assert part.best_epoch_ in (0, 1)

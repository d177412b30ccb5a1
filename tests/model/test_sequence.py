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
    part = SequencePart(TrainingConfig(epochs=2, learning_rate=1e-2, torch_threads=1))
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingDivergenceWarning)
        part.fit(_windows(64, 1), _windows(16, 2))
    assert part.best_epoch_ in (0, 1)


def _prior_logit(windows: np.ndarray) -> np.ndarray:
    return 3.0 * windows[:, -1, 0]


def test_the_prior_is_kept_when_no_epoch_beats_it_on_validation() -> None:
    """The GRU must earn its place: trained on labels that are noise, every epoch loses to
    the untrained network (the prior) on validation, and the prior is what it keeps."""
    windows, _ = _windows(256, 1)
    noise = np.random.default_rng(3).integers(0, 2, 256).astype("float32")
    validation = _windows(128, 2)  # labels the prior already ranks perfectly
    part = SequencePart(
        TrainingConfig(epochs=4, learning_rate=1e-2, hidden_size=8, correction_penalty=0.0)
    )
    part.fit((windows, noise), validation, prior=(0.0, 3.0, 0))
    assert part.best_epoch_ == -1
    assert len(part.history_) == 4
    expected = 1 / (1 + np.exp(-_prior_logit(validation[0])))
    np.testing.assert_allclose(part.predict_proba(validation[0]), expected, rtol=1e-6)


def test_the_penalty_shrinks_the_correction_toward_the_prior() -> None:
    """Labels that follow a second input: without a penalty the GRU's correction learns it;
    a large penalty keeps the output close to the prior."""
    train, valid = _windows(512, 1), _windows(128, 2)
    relabel = [
        (w, (w[:, -1, 0] + 2 * w[:, -1, 1] > 0).astype("float32")) for w, _ in (train, valid)
    ]

    def correction(penalty: float) -> float:
        part = SequencePart(
            TrainingConfig(epochs=5, learning_rate=1e-2, hidden_size=8, correction_penalty=penalty)
        )
        part.fit(relabel[0], relabel[1], prior=(0.0, 3.0, 0))
        p = np.clip(part.predict_proba(valid[0]), 1e-6, 1 - 1e-6)
        return float(np.mean(np.abs(np.log(p / (1 - p)) - _prior_logit(valid[0]))))

    free, shrunk = correction(0.0), correction(100.0)
    assert free > 1.0
    assert shrunk < 0.2 * free

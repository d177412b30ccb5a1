"""Signal rules by hand."""

from __future__ import annotations

import numpy as np
import pytest

from mlflow_pairs.signals import SignalRule, leg_weights, positions, threshold_scale


def test_entry_exit_and_stop_by_hand() -> None:
    z = np.array([0.0, 2.5, 1.0, 0.3, -2.2, -5.0, -1.0, -2.1, np.nan, -0.2])
    rule = SignalRule(entry_z=2.0, exit_z=0.5, stop_z=4.0, min_probability=0.0, vol_scaling=False)
    # t1 short the spread; t3 exits inside 0.5; t4 long; t5 stopped out beyond -4 (and
    # no re-entry beyond the stop); t7 long again; NaN holds; t9 exits.
    assert positions(z, rule=rule).tolist() == [0, -1, -1, 0, 1, 0, 0, 1, 1, 0]


def test_probability_filter_and_holding_limit() -> None:
    z = np.array([2.5, 2.5, 2.5, 2.5, 2.5])
    probability = np.array([0.2, np.nan, 0.9, 0.9, 0.9])
    rule = SignalRule(min_probability=0.5, max_holding=2, vol_scaling=False)
    assert positions(z, probability=probability, rule=rule).tolist() == [0, 0, -1, -1, -1]
    # Held 2 days at t4, closed, and re-entered the same day since the signal still holds.


def test_volatility_scales_the_bands() -> None:
    z = np.array([2.5, 2.5])
    vol = np.array([1.5, 1.0])  # bands 3.0 then 2.0
    rule = SignalRule(min_probability=0.0)
    assert positions(z, vol_ratio=vol, rule=rule).tolist() == [0, -1]
    assert threshold_scale(np.array([0.1, 5.0]), rule, 2).tolist() == [0.5, 2.0]


def test_leg_weights() -> None:
    wy, wx = leg_weights(np.array([1.0, -1.0, 0.0]), 0.5)
    assert wy.tolist() == pytest.approx([2 / 3, -2 / 3, 0.0])
    assert wx.tolist() == pytest.approx([-1 / 3, 1 / 3, 0.0])


def test_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="exit_z < entry_z < stop_z"):
        SignalRule(entry_z=1.0, exit_z=2.0)

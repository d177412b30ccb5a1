"""Signal rules by hand."""

from __future__ import annotations

import numpy as np
import pytest

from mlflow_pairs.model.signals import SignalRule, leg_weights, positions, threshold_scale


def test_entry_exit_and_stop_by_hand() -> None:
    z = np.array([0.0, 2.5, 1.0, 0.3, -2.2, -5.0, -1.0, -2.1, np.nan, -0.2])
    rule = SignalRule(entry_z=2.0, exit_z=0.5, stop_z=4.0, min_probability=0.0, vol_scaling=False)
    # t1 short the spread; t3 exits inside 0.5; t4 long; t5 stopped out beyond -4; t7
    # would enter but the stop blocks re-entry until |z| is inside 0.5 (t9).
    assert positions(z, rule=rule).tolist() == [0, -1, -1, 0, 1, 0, 0, 0, 0, 0]


def test_probability_filter_blocks_entry() -> None:
    z = np.array([2.5, 2.5, 2.5, 0.2, 2.5])
    probability = np.array([0.2, np.nan, 0.9, 0.9, 0.4])
    rule = SignalRule(min_probability=0.5, max_holding=100, vol_scaling=False)
    # Blocked below 0.5 and on NaN; entered at t2, exited at t3; blocked again at t4.
    assert positions(z, probability=probability, rule=rule).tolist() == [0, 0, -1, 0, 0]


@pytest.mark.parametrize("limit", [1, 2, 3, 20, 100])
def test_holding_limit_closes_once_and_waits_for_the_exit_band(limit: int) -> None:
    # |z| sits in the entry band for 40 days, comes back inside the exit band on day 40,
    # and is back in the entry band on day 41.
    z = np.r_[np.full(40, 2.5), 0.3, 2.5]
    rule = SignalRule(min_probability=0.0, max_holding=limit, vol_scaling=False)
    held = positions(z, rule=rule)
    expected = np.zeros(len(z), dtype=int)
    expected[: min(limit, 40)] = -1  # one trade of `limit` days (the entry day counts 0)
    expected[41:] = -1  # re-entered only after the exit band was touched
    if limit < 40:
        expected[limit] = 0
    np.testing.assert_array_equal(held, expected)


def test_stop_waits_for_the_exit_band() -> None:
    z = np.array([2.5, 4.5, 3.0, 2.5, 0.4, 2.5])
    rule = SignalRule(min_probability=0.0, vol_scaling=False)
    # Stopped at t1; 3.0 and 2.5 are in the entry band but the stop blocks re-entry
    # until t4 (inside 0.5); t5 enters again.
    assert positions(z, rule=rule).tolist() == [-1, 0, 0, 0, 0, -1]


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

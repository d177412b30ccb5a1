"""Trading signals from z-scores, GARCH volatility and reversion probabilities (pure).

A pair's position is +1 (long the spread: long y, short x), -1 (short the spread) or 0.
Entry and exit thresholds are in standard deviations of the spread, scaled by the GARCH
volatility forecast relative to its long-run level, so that the bands widen when the
spread is turbulent and narrow when it is calm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

from mlflow_pairs.config import BacktestSettings

#: The one definition of the defaults: the ``backtest`` section of the configuration.
_DEFAULTS = BacktestSettings()

__all__ = ["SignalRule", "leg_weights", "positions", "threshold_scale"]


@dataclass(frozen=True)
class SignalRule:
    """Entry, exit and risk rules.

    Attributes
    ----------
    entry_z, exit_z, stop_z : float
        Enter beyond ``entry_z``, exit inside ``exit_z``, stop out beyond ``stop_z``
        (all times the volatility scale).
    min_probability : float
        Enter only when the reversion probability is at least this (the GRU filter);
        0 disables the filter.
    max_holding : int
        Close a position held this many days. After such a time exit, or a stop, no new
        position opens until ``|z|`` has come back inside the exit band: the signal that
        failed is not traded again at once.
    vol_scaling : bool
        Scale thresholds by ``clip(vol_ratio, *vol_clip)``.
    """

    entry_z: float = _DEFAULTS.entry_z
    exit_z: float = _DEFAULTS.exit_z
    stop_z: float = _DEFAULTS.stop_z
    min_probability: float = _DEFAULTS.min_probability
    max_holding: int = _DEFAULTS.max_holding
    vol_scaling: bool = True
    vol_clip: tuple[float, float] = (0.5, 2.0)

    def __post_init__(self) -> None:
        if not 0 <= self.exit_z < self.entry_z < self.stop_z:
            raise ValueError("thresholds must satisfy 0 <= exit_z < entry_z < stop_z")
        if not 0 <= self.min_probability <= 1:
            raise ValueError("min_probability must be in [0, 1]")
        if isinstance(self.max_holding, bool) or not self.max_holding >= 1:
            raise ValueError(
                f"max_holding must be a whole number of days >= 1, got {self.max_holding}"
            )
        values = (self.entry_z, self.exit_z, self.stop_z, self.min_probability)
        if any(np.isnan(v) for v in values) or not np.isfinite(self.entry_z):
            raise ValueError(f"thresholds must be numbers (stop_z may be inf), got {values}")


def threshold_scale(vol_ratio: np.ndarray | None, rule: SignalRule, n: int) -> np.ndarray:
    """The factor k applied to the thresholds: ``clip(vol_ratio, *vol_clip)``, or 1."""
    if vol_ratio is None:
        return np.ones(n)
    if not rule.vol_scaling:
        return np.ones(np.shape(vol_ratio))
    return cast(np.ndarray, np.clip(np.nan_to_num(vol_ratio, nan=1.0), *rule.vol_clip))


def positions(
    zscore: np.ndarray,
    vol_ratio: np.ndarray | None = None,
    probability: np.ndarray | None = None,
    rule: SignalRule | None = None,
) -> np.ndarray:
    """The position held at the close of each day, from that day's information.

    Parameters
    ----------
    zscore : ndarray of shape (n,)
        The spread's z-score; NaN days hold no new position.
    vol_ratio : ndarray of shape (n,), optional
        GARCH one-day-ahead volatility over its long-run level.
    probability : ndarray of shape (n,), optional
        Reversion probability; NaN blocks entry.

    Returns
    -------
    ndarray of int8, shape (n,)
        -1, 0 or 1. A backtest applies day t's position from day t+1 on.
    """
    rule = rule or SignalRule()
    n = len(zscore)
    scale = threshold_scale(vol_ratio, rule, n)
    prob = np.ones(n) if probability is None else np.asarray(probability, dtype=float)
    # Plain Python floats: this loop is the serving hot path, and NumPy scalars are slow.
    allowed = (np.nan_to_num(prob, nan=-1.0) >= rule.min_probability).tolist()
    out = [0] * n
    position, held = 0, 0
    blocked = False  # after a stop or time exit: wait for |z| inside the exit band
    entry, exit_, stop, limit = rule.entry_z, rule.exit_z, rule.stop_z, rule.max_holding
    for t, (z, k) in enumerate(
        zip(np.asarray(zscore, dtype=float).tolist(), scale.tolist(), strict=True)
    ):
        if z != z:  # NaN
            out[t] = position
            continue
        if blocked and -exit_ * k <= z <= exit_ * k:
            blocked = False
        if position != 0:
            held += 1
            reverted = position * z >= -exit_ * k  # long: z rose back above -exit
            stopped = position * z <= -stop * k
            if reverted:
                position, held = 0, 0
            elif stopped or held >= limit:
                position, held = 0, 0
                blocked = not -exit_ * k <= z <= exit_ * k
        if position == 0 and allowed[t] and not blocked:
            if entry * k <= z < stop * k:
                position, held = -1, 0
            elif -stop * k < z <= -entry * k:
                position, held = 1, 0
        out[t] = position
    return np.array(out, dtype=np.int8)


def leg_weights(
    position: np.ndarray, hedge_ratio: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Dollar weights of the y and x legs: long the spread is +1 unit of y against
    ``hedge_ratio`` units of x, scaled to a gross exposure of 1."""
    gross = 1.0 + np.abs(hedge_ratio)
    return position / gross, -position * hedge_ratio / gross

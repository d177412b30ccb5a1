"""The pair backtest: positions act on the next bar, legs weighted by the hedge ratio,
costs on every unit of turnover (re-hedges included), borrow on the short leg."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd

from mlflow_pairs.config import BacktestSettings
from mlflow_pairs.model.signals import leg_weights

#: The one definition of the defaults: the ``backtest`` section of the configuration.
_DEFAULTS = BacktestSettings()

__all__ = ["CostModel", "PairBacktest", "backtest_pair", "portfolio_returns"]

TRADING_DAYS = 252


@dataclass(frozen=True)
class CostModel:
    """Transaction and financing costs.

    Attributes
    ----------
    cost_bps : float
        Basis points of each unit of turnover on each leg (a full round trip of a pair
        with gross exposure 1 costs ``2 * cost_bps``): commissions and fees.
    borrow_bps : float
        Annual basis points on the short leg's notional, charged per trading day (50: a
        general-collateral fee for liquid large caps; hard-to-borrow names cost far more).
    half_spread_bps : float
        Half the quoted bid-ask spread, paid on every unit of turnover (0: off).
    impact_coefficient, participation : float
        Square-root market impact ``impact_coefficient * sigma * sqrt(participation)`` per
        unit of turnover, with ``sigma`` the leg's daily volatility over the previous
        ``impact_window`` days and ``participation`` the trade's share of the day's volume
        (0: off; about 1 for the coefficient in the empirical literature).
    """

    cost_bps: float = _DEFAULTS.cost_bps
    borrow_bps: float = _DEFAULTS.borrow_bps
    half_spread_bps: float = _DEFAULTS.half_spread_bps
    impact_coefficient: float = _DEFAULTS.impact_coefficient
    participation: float = _DEFAULTS.participation
    impact_window: int = 20

    def __post_init__(self) -> None:
        for name in ("cost_bps", "borrow_bps", "half_spread_bps", "impact_coefficient"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if not 0 <= self.participation <= 1:
            raise ValueError(f"participation must be in [0, 1], got {self.participation}")

    def unit_cost(self, returns: np.ndarray) -> np.ndarray:
        """Cost of one unit of turnover on each day, from a leg's daily ``returns``
        (fees and half-spread, plus impact from the volatility known the day before)."""
        flat = (self.cost_bps + self.half_spread_bps) / 1e4
        if self.impact_coefficient == 0:
            return np.full(len(returns), flat)
        sigma = (
            pd.Series(returns).rolling(self.impact_window, min_periods=2).std().shift(1)
        ).to_numpy()
        sigma = np.nan_to_num(sigma, nan=float(np.nanstd(returns[:2])) if len(returns) else 0.0)
        return cast(
            np.ndarray, flat + self.impact_coefficient * sigma * np.sqrt(self.participation)
        )


@dataclass(frozen=True)
class PairBacktest:
    """One pair's daily weights and returns.

    ``frame`` has one row per date: ``weight_y``, ``weight_x`` (the weights held that
    day), ``gross``, ``cost``, ``borrow`` and ``net`` returns, and ``position`` (-1, 0, 1).
    """

    pair: str
    frame: pd.DataFrame


def backtest_pair(
    pair: str,
    y: pd.Series,
    x: pd.Series,
    signal: pd.Series,
    hedge_ratio: pd.Series | float,
    costs: CostModel | None = None,
    *,
    liquidate: bool = False,
) -> PairBacktest:
    """Daily returns of trading ``signal`` on the pair (y, x).

    Parameters
    ----------
    y, x : Series of shape (n,)
        Prices of the legs on consecutive trading dates.
    signal : Series of shape (n,)
        The position decided at each day's close (-1, 0, 1), from that day's data only.
        It is held from the *next* day on: the day that produced a signal never earns it.
    hedge_ratio : Series of shape (n,) or float
        The hedge ratio in force when each day's signal was decided (changes when the
        model is refitted, and then re-hedging costs like any other trade).
    costs : CostModel
        Costs in basis points.
    liquidate : bool
        Also execute the trade decided at the last day's close and charge its cost on that
        day (a window that ends closes its positions and pays for it).

    Returns
    -------
    PairBacktest
        ``gross_t = w_y,t * r_y,t + w_x,t * r_x,t`` with simple returns ``r`` and weights
        ``w_t`` from the signal and hedge ratio of day t-1; ``cost_t`` is the unit cost
        (:meth:`CostModel.unit_cost`, ``cost_bps`` when only fees are on) times each leg's
        turnover ``|w_t - w_t-1|``; ``borrow_t`` is ``borrow_bps / 252`` times the short
        weights; ``net = gross - cost - borrow``.
    """
    costs = costs or CostModel()
    index = y.index
    beta = (
        hedge_ratio.reindex(index).to_numpy(dtype=float)
        if isinstance(hedge_ratio, pd.Series)
        else np.full(len(index), float(hedge_ratio))
    )
    decided = signal.reindex(index).fillna(0).to_numpy(dtype=float)
    target_y, target_x = leg_weights(decided, beta)
    # Weights held on day t are the targets decided at the close of day t-1.
    held_y = np.r_[0.0, target_y[:-1]]
    held_x = np.r_[0.0, target_x[:-1]]
    returns_y = y.pct_change().fillna(0.0).to_numpy()
    returns_x = x.pct_change().fillna(0.0).to_numpy()
    gross = held_y * returns_y + held_x * returns_x
    turn_y = np.abs(np.diff(np.r_[0.0, held_y]))
    turn_x = np.abs(np.diff(np.r_[0.0, held_x]))
    if liquidate and len(index):
        turn_y[-1] += abs(target_y[-1] - held_y[-1])
        turn_x[-1] += abs(target_x[-1] - held_x[-1])
    turnover = turn_y + turn_x
    cost = costs.unit_cost(returns_y) * turn_y + costs.unit_cost(returns_x) * turn_x
    short = np.minimum(held_y, 0.0) + np.minimum(held_x, 0.0)
    borrow = costs.borrow_bps / 1e4 / TRADING_DAYS * np.abs(short)
    frame = pd.DataFrame(
        {
            "position": np.r_[0, decided[:-1]].astype(np.int64),
            "weight_y": held_y,
            "weight_x": held_x,
            "gross": gross,
            "cost": cost,
            "borrow": borrow,
            "net": gross - cost - borrow,
            "turnover": turnover,
        },
        index=index,
    )
    return PairBacktest(pair, frame)


def portfolio_returns(results: Mapping[str, PairBacktest], column: str = "net") -> pd.Series:
    """Equal capital per pair: the portfolio's daily return is the pairs' average."""
    frame = pd.DataFrame({name: r.frame[column] for name, r in results.items()})
    return frame.fillna(0.0).mean(axis=1)

"""The pair backtest: positions act on the next bar, legs weighted by the hedge ratio,
costs on every unit of turnover (re-hedges included), borrow on the short leg."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlflow_pairs.signals import leg_weights

__all__ = ["CostModel", "PairBacktest", "backtest_pair", "portfolio_returns"]

TRADING_DAYS = 252


@dataclass(frozen=True)
class CostModel:
    """Transaction and financing costs.

    Attributes
    ----------
    cost_bps : float
        Basis points of each unit of turnover on each leg (a full round trip of a pair
        with gross exposure 1 costs ``2 * cost_bps``).
    borrow_bps : float
        Annual basis points on the short leg's notional, charged per trading day.
    """

    cost_bps: float = 5.0
    borrow_bps: float = 0.0


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

    Returns
    -------
    PairBacktest
        ``gross_t = w_y,t * r_y,t + w_x,t * r_x,t`` with simple returns ``r`` and weights
        ``w_t`` from the signal and hedge ratio of day t-1; ``cost_t`` is
        ``cost_bps * (|w_y,t - w_y,t-1| + |w_x,t - w_x,t-1|)``; ``borrow_t`` is
        ``borrow_bps / 252`` times the short weights; ``net = gross - cost - borrow``.
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
    turnover = np.abs(np.diff(np.r_[0.0, held_y])) + np.abs(np.diff(np.r_[0.0, held_x]))
    cost = costs.cost_bps / 1e4 * turnover
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

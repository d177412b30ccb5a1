"""Performance metrics of daily strategy returns (pure NumPy/pandas)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["performance", "trades"]

TRADING_DAYS = 252


def trades(position: pd.Series, net: pd.Series) -> pd.DataFrame:
    """One row per trade: start, end, days held, direction and cumulative net return.

    A trade starts when the held position becomes non-zero (or flips sign) and ends
    when it returns to zero or flips."""
    pos = position.to_numpy()
    ret = net.to_numpy()
    rows = []
    start = None
    for t in range(len(pos)):
        if start is not None and pos[t] != pos[start]:
            rows.append((start, t - 1))
            start = None
        if start is None and pos[t] != 0:
            start = t
    if start is not None:
        rows.append((start, len(pos) - 1))
    index = position.index
    return pd.DataFrame(
        {
            "start": [index[a] for a, _ in rows],
            "end": [index[b] for _, b in rows],
            "days": [b - a + 1 for a, b in rows],
            "direction": [int(pos[a]) for a, _ in rows],
            "return": [float(np.prod(1 + ret[a : b + 1]) - 1) for a, b in rows],
        }
    )


def performance(
    returns: pd.Series, position: pd.Series | None = None, turnover: pd.Series | None = None
) -> dict[str, float]:
    """Return, risk and trading statistics of daily ``returns``.

    Sharpe and Sortino are annualised with 252 days and a zero risk-free rate; the
    maximum drawdown is positive (0.1 means a 10% fall from a peak) and its duration is
    the longest stretch of days below a previous peak.
    """
    r = returns.fillna(0.0).to_numpy(dtype=float)
    n = len(r)
    equity = np.cumprod(1 + r)
    total = float(equity[-1] - 1) if n else 0.0
    years = n / TRADING_DAYS
    annual = float((1 + total) ** (1 / years) - 1) if n and total > -1 else float("nan")
    std = float(r.std(ddof=1)) if n > 1 else float("nan")
    downside = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2))) if n else float("nan")
    peak = np.maximum.accumulate(np.r_[1.0, equity])[1:]
    drawdown = equity / peak - 1
    max_drawdown = float(-drawdown.min()) + 0.0 if n else 0.0  # + 0.0: no "-0.00%"
    under = drawdown < 0
    longest, current = 0, 0
    for flag in under:
        current = current + 1 if flag else 0
        longest = max(longest, current)
    gains, losses = r[r > 0].sum(), -r[r < 0].sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        stats = {
            "total_return": total,
            "annual_return": annual,
            "volatility": std * np.sqrt(TRADING_DAYS),
            "sharpe": float(r.mean() / std * np.sqrt(TRADING_DAYS)) if std > 0 else 0.0,
            "sortino": float(r.mean() / downside * np.sqrt(TRADING_DAYS)) if downside > 0 else 0.0,
            "max_drawdown": max_drawdown,
            "max_drawdown_days": float(longest),
            "calmar": float(annual / max_drawdown) if max_drawdown > 0 else 0.0,
            "profit_factor": float(gains / losses)
            if losses > 0
            else float("inf")
            if gains
            else 0.0,
        }
    if position is not None:
        book = trades(position, returns)
        stats["trades"] = float(len(book))
        stats["win_rate"] = float((book["return"] > 0).mean()) if len(book) else 0.0
        stats["avg_holding_days"] = float(book["days"].mean()) if len(book) else 0.0
        stats["exposure"] = float((position.to_numpy() != 0).mean()) if n else 0.0
    if turnover is not None:
        stats["turnover"] = float(turnover.sum() / years) if years else 0.0
    return stats

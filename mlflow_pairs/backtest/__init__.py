"""Backtesting pair signals: next-bar execution, costs, and performance metrics (pure)."""

from mlflow_pairs.backtest.engine import CostModel, PairBacktest, backtest_pair, portfolio_returns
from mlflow_pairs.backtest.metrics import performance, trades

__all__ = [
    "CostModel",
    "PairBacktest",
    "backtest_pair",
    "performance",
    "portfolio_returns",
    "trades",
]

"""The data error: which rule was broken, for which symbols and dates."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from mlflow_pairs.errors import MlflowPairsError

__all__ = ["DataError", "format_dates"]


class DataError(MlflowPairsError):
    """Prices that break a validation rule.

    The message names the rule, the symbol(s) and the date(s); the same facts are kept as
    attributes for programs. The command line prints the message and exits with status 2.
    """

    exit_code = 2

    def __init__(
        self,
        rule: str,
        message: str,
        *,
        symbols: Sequence[str] = (),
        dates: Sequence[pd.Timestamp] = (),
    ) -> None:
        super().__init__(f"{message} [rule: {rule}]")
        self.rule = rule
        self.symbols = tuple(symbols)
        self.dates = tuple(dates)


def format_dates(dates: Sequence[pd.Timestamp] | pd.Index, limit: int = 3) -> str:
    """``2020-01-02, 2020-01-03 and 5 more``."""
    shown = [pd.Timestamp(d).strftime("%Y-%m-%d") for d in list(dates)[:limit]]
    more = len(dates) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")

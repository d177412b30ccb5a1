"""Synthetic universes with planted truth, and a plain textbook pairs rule as an oracle.

Nothing here imports ``mlflow_pairs``: the truth and the oracle must not share code with
what they check.

A planted pair (``P{i}Y``, ``P{i}X``) has ``x`` a log random walk and
``log y = intercept + hedge_ratio * log x + s`` with ``s`` a zero-mean AR(1) of known
half-life. Random symbols (``R00``, ``R01``, ...) are independent log random walks, so
every pair other than a planted one is not cointegrated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "PlantedPair",
    "SyntheticUniverse",
    "planted_universe",
    "random_walks",
    "textbook_rule_returns",
]


@dataclass(frozen=True)
class PlantedPair:
    """The truth of one planted pair.

    Attributes
    ----------
    y, x : str
        Dependent and independent leg: ``log y = intercept + hedge_ratio * log x + s``.
    hedge_ratio, intercept : float
        The cointegrating vector in log prices.
    half_life : float
        Half-life of the spread ``s`` in trading days (of the calm regime for a
        regime-dependent pair).
    regime_dependent : bool
        Whether the spread reverts only in calm regimes (see :func:`planted_universe`).
    """

    y: str
    x: str
    hedge_ratio: float
    intercept: float
    half_life: float
    regime_dependent: bool

    @property
    def name(self) -> str:
        """``"y/x"``, as the product names pairs."""
        return f"{self.y}/{self.x}"


@dataclass(frozen=True)
class SyntheticUniverse:
    """Prices with planted pairs.

    Attributes
    ----------
    prices : DataFrame of shape (n_days, 2 * n_planted + n_random)
        Positive prices on business days: ``P0Y, P0X, P1Y, ...`` then ``R00, R01, ...``.
    planted : tuple of PlantedPair
    regimes : DataFrame of shape (n_days, n_planted) of bool, or None
        One column per planted pair (named ``pair.name``): True on turbulent ("storm")
        days; always False for pairs that are not regime-dependent. None when no pair is.
    """

    prices: pd.DataFrame
    planted: tuple[PlantedPair, ...]
    regimes: pd.DataFrame | None


def planted_universe(
    seed: int,
    *,
    n_days: int = 1500,
    n_planted: int = 3,
    n_random: int = 12,
    regime_dependent: int = 0,
    start: str = "2010-01-04",
    daily_vol: float = 0.015,
    spread_std: float = 0.02,
    half_life: tuple[float, float] = (3.0, 10.0),
    hedge_ratio: tuple[float, float] = (0.6, 1.6),
    price_range: tuple[float, float] = (20.0, 200.0),
    storm_share: float = 0.1,
    storm_length: float = 15.0,
    storm_vol: float = 3.0,
    storm_half_life: float = 120.0,
    calm_jumps: float = 0.0,
    jump_size: float = 6.0,
) -> SyntheticUniverse:
    """A universe of ``n_planted`` cointegrated pairs and ``n_random`` unrelated symbols.

    Parameters
    ----------
    seed : int
        Everything is deterministic per seed; the planted pairs do not depend on
        ``n_random`` (separate random streams).
    n_days : int
        Business days from ``start``.
    n_planted, n_random : int
        Planted pairs (two symbols each) and independent random-walk symbols.
    regime_dependent : int
        How many of the planted pairs (the first ones) switch regimes: a Markov chain
        alternates calm spells, where the spread is an AR(1) with the pair's half-life
        and the shocks of an ordinary pair, and storms (``storm_share`` of the days on
        average, ``storm_length`` days long on average), where it nearly wanders
        (half-life ``storm_half_life``) with ``storm_vol`` times larger shocks. A wide
        spread in a storm does not come back soon, one in calm does, and only the
        spread's volatility tells the two apart.
    calm_jumps, jump_size : float
        For the regime-dependent pairs: the daily probability, on calm days, of a jump of
        ``jump_size * spread_std`` (either sign, even odds) added to the spread's shock. A
        jump reverts at the calm half-life like any shock, so a wide spread has two
        causes, a jump that comes back within days or a storm that does not, and what
        tells them apart is the path: one large move then calm, or lasting turbulence.
        0 (the default) draws nothing, so the other paths stay as they were.
    daily_vol : float
        Daily log-return volatility of every random walk (the ``x`` legs and ``R..``).
    spread_std : float
        Stationary standard deviation of an ordinary planted spread (log units); its
        daily shocks are ``spread_std * sqrt(1 - phi**2)``.
    half_life, hedge_ratio : (low, high)
        Uniform ranges the pairs' half-lives (days) and hedge ratios are drawn from.
    price_range : (low, high)
        Starting prices are log-uniform in this range, for ``y`` legs too (the intercept
        is set so).

    Returns
    -------
    SyntheticUniverse
    """
    if not 0 <= regime_dependent <= n_planted:
        raise ValueError("regime_dependent must be between 0 and n_planted")
    planted_rng, random_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2)
    )
    index = pd.bdate_range(start, periods=n_days)
    columns: dict[str, np.ndarray] = {}
    planted = []
    storms: dict[str, np.ndarray] = {}
    for i in range(n_planted):
        beta = float(planted_rng.uniform(*hedge_ratio))
        life = float(planted_rng.uniform(*half_life))
        log_x = _log_random_walks(planted_rng, 1, n_days, daily_vol, price_range)[:, 0]
        log_y0 = planted_rng.uniform(np.log(price_range[0]), np.log(price_range[1]))
        alpha = float(log_y0 - beta * log_x[0])
        pair = PlantedPair(f"P{i}Y", f"P{i}X", beta, alpha, life, i < regime_dependent)
        if pair.regime_dependent:
            storm = _markov_storms(planted_rng, n_days, storm_share, storm_length)
            calm_phi, storm_phi = _ar_coefficient(life), _ar_coefficient(storm_half_life)
            calm_scale = spread_std * np.sqrt(1 - calm_phi**2)
            phi = np.where(storm, storm_phi, calm_phi)
            scale = np.where(storm, storm_vol * calm_scale, calm_scale)
            jumps = np.where(storm, 0.0, calm_jumps)
            spread = _ar1(planted_rng, phi, scale, jumps, jump_size * spread_std)
        else:
            storm = np.zeros(n_days, dtype=bool)
            phi = np.full(n_days, _ar_coefficient(life))
            spread = _ar1(planted_rng, phi, spread_std * np.sqrt(1 - phi**2))
        columns[pair.y] = np.exp(alpha + beta * log_x + spread)
        columns[pair.x] = np.exp(log_x)
        planted.append(pair)
        storms[pair.name] = storm
    randoms = _log_random_walks(random_rng, n_random, n_days, daily_vol, price_range)
    for name, path in zip(_random_names(n_random), randoms.T, strict=True):
        columns[name] = np.exp(path)
    regimes = pd.DataFrame(storms, index=index) if regime_dependent else None
    return SyntheticUniverse(pd.DataFrame(columns, index=index), tuple(planted), regimes)


def random_walks(
    seed: int,
    n_symbols: int,
    n_days: int,
    *,
    start: str = "2010-01-04",
    daily_vol: float = 0.015,
    price_range: tuple[float, float] = (20.0, 200.0),
) -> pd.DataFrame:
    """Independent log random walks ``R00, R01, ...``: no pair is cointegrated.

    Returns
    -------
    DataFrame of shape (n_days, n_symbols)
        Positive prices on business days from ``start``, starting log-uniform in
        ``price_range``, with daily log-return volatility ``daily_vol``.
    """
    rng = np.random.default_rng(seed)
    paths = _log_random_walks(rng, n_symbols, n_days, daily_vol, price_range)
    index = pd.bdate_range(start, periods=n_days)
    return pd.DataFrame(np.exp(paths), index=index, columns=_random_names(n_symbols))


def textbook_rule_returns(
    prices: pd.DataFrame,
    pairs: Sequence[tuple[str, str]],
    hedge_ratios: Sequence[float],
    intercepts: Sequence[float],
    formation: slice,
    trading: slice,
    entry: float = 2.0,
    exit: float = 0.5,
    cost_bps: float = 5.0,
) -> pd.Series:
    """Daily net returns of the textbook Engle–Granger pairs rule over ``trading``.

    Written as a plain loop on purpose, to be an oracle for the product's ``static_z``
    variant. For each pair ``(y, x)`` the spread is
    ``log y - intercept - hedge_ratio * log x``; its z-score uses the mean and sample
    standard deviation (ddof 1) of the spread over the ``formation`` rows.

    Rules, decided at each close from that day's z-score, from the last formation day to
    the day before the last trading day: flat, enter short the spread when
    ``z >= entry`` and long when ``z <= -entry``; a long exits once ``z >= -exit``, a
    short once ``z <= exit`` (the spread is back inside the exit band, or beyond it), and
    may re-enter the other way on the same day. No stop-loss, no holding limit. The
    position decided on the last trading day is flat (closed at the window's end).

    A position decided on day t is held on day t + 1 with dollar weights
    ``position / (1 + |b|)`` on y and ``-position * b / (1 + |b|)`` on x; the day's gross
    return is the weights times the legs' simple returns. Each day's cost is
    ``cost_bps / 1e4`` times the change of weights on both legs against the day before,
    counting from flat at the start; the final close is charged on the last trading day.
    Pairs get equal capital: the result is the mean of the pairs' net returns.

    Parameters
    ----------
    prices : DataFrame of shape (n_observations, n_symbols)
    pairs : sequence of (y, x)
    hedge_ratios, intercepts : sequences of float, one per pair
    formation, trading : slice
        Row ranges of ``prices``; ``trading`` starts right after ``formation``.

    Returns
    -------
    Series of shape (n_trading_days,)
        Indexed by the trading dates; all zero when there are no pairs.
    """
    form_rows = range(*formation.indices(len(prices)))
    trade_rows = list(range(*trading.indices(len(prices))))
    if not trade_rows or trade_rows[0] != form_rows.stop:
        raise ValueError("trading must start on the row after the formation window")
    dates = prices.index[trade_rows]
    total = [0.0] * len(trade_rows)
    if not pairs:
        return pd.Series(total, index=dates, name="textbook")
    for (y, x), b, a in zip(pairs, hedge_ratios, intercepts, strict=True):
        py = prices[y].to_numpy(dtype=float)
        px = prices[x].to_numpy(dtype=float)
        spread = [np.log(py[t]) - a - b * np.log(px[t]) for t in range(len(prices))]
        sample = [spread[t] for t in form_rows]
        mean = sum(sample) / len(sample)
        std = (sum((v - mean) ** 2 for v in sample) / (len(sample) - 1)) ** 0.5
        position = 0
        decided = form_rows[-1]
        previous_wy = previous_wx = 0.0
        for k, t in enumerate(trade_rows):
            # The position held today was decided at yesterday's close.
            z = (spread[decided] - mean) / std
            if (position == 1 and z >= -exit) or (position == -1 and z <= exit):
                position = 0
            if position == 0:
                if z >= entry:
                    position = -1
                elif z <= -entry:
                    position = 1
            wy = position / (1 + abs(b))
            wx = -position * b / (1 + abs(b))
            gross = wy * (py[t] / py[t - 1] - 1) + wx * (px[t] / px[t - 1] - 1)
            turnover = abs(wy - previous_wy) + abs(wx - previous_wx)
            if k == len(trade_rows) - 1:  # closed at the last close
                turnover += abs(wy) + abs(wx)
            total[k] += (gross - cost_bps / 1e4 * turnover) / len(pairs)
            previous_wy, previous_wx = wy, wx
            decided = t
    return pd.Series(total, index=dates, name="textbook")


def _ar_coefficient(half_life: float) -> float:
    return float(0.5 ** (1.0 / half_life))


def _ar1(
    rng: np.random.Generator,
    phi: np.ndarray,
    scale: np.ndarray,
    jumps: np.ndarray | None = None,
    jump: float = 0.0,
) -> np.ndarray:
    """``s_t = phi_t s_{t-1} + scale_t e_t + J_t``, started from the stationary law of day
    0: ``J_t`` is ``+-jump`` with probability ``jumps[t]`` (no draw at all when no day can
    jump, so that the stream of the other paths does not move)."""
    shocks = rng.standard_normal(len(phi)) * scale
    if jumps is not None and np.any(jumps > 0):
        hit = rng.random(len(phi)) < jumps
        sign = np.where(rng.random(len(phi)) < 0.5, -1.0, 1.0)
        shocks = shocks + hit * sign * jump
    s = np.empty(len(phi))
    s[0] = shocks[0] / np.sqrt(1 - phi[0] ** 2)
    for t in range(1, len(phi)):
        s[t] = phi[t] * s[t - 1] + shocks[t]
    return s


def _markov_storms(
    rng: np.random.Generator, n_days: int, share: float, length: float
) -> np.ndarray:
    """A two-state Markov chain, True in storms: mean spell ``length``, long-run ``share``."""
    leave_storm = 1.0 / length
    enter_storm = leave_storm * share / (1 - share)
    u = rng.random(n_days)
    storm = np.empty(n_days, dtype=bool)
    storm[0] = u[0] < share
    for t in range(1, n_days):
        storm[t] = u[t] >= leave_storm if storm[t - 1] else u[t] < enter_storm
    return storm


def _log_random_walks(
    rng: np.random.Generator,
    n_symbols: int,
    n_days: int,
    daily_vol: float,
    price_range: tuple[float, float],
) -> np.ndarray:
    low, high = np.log(price_range[0]), np.log(price_range[1])
    start = rng.uniform(low, high, size=n_symbols)
    steps = rng.normal(0.0, daily_vol, size=(n_days, n_symbols))
    steps[0] = 0.0
    paths: np.ndarray = start + np.cumsum(steps, axis=0)
    return paths


def _random_names(n: int) -> list[str]:
    width = max(2, len(str(n - 1)))
    return [f"R{i:0{width}d}" for i in range(n)]

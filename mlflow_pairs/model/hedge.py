"""The hedge parts: the hedge ratio and intercept of a pair's spread on each date.

The spread of a pair is ``log y_t - hedge_ratio_t * log x_t - intercept_t``.
:class:`StaticHedge` keeps the screening regression's numbers for ever;
:class:`KalmanHedge` lets them follow a random walk and tracks them with a Kalman
filter. Both take a :class:`HedgeSpec` and implement
:class:`~mlflow_pairs.model.parts.HedgePart`.

Like :class:`~mlflow_pairs.model.volatility.GarchPart`, the Kalman hedge is fitted once
(its prior and noise variances are fixed from the formation window) and then only
filters: the filtered state of every date it has seen is stored, and a request continues
from the stored state of the last date before it, so that it reproduces the full-history
path exactly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from mlflow_pairs.config import HedgeSettings

#: The one definition of the defaults: the ``hedge`` section of the configuration.
_DEFAULTS = HedgeSettings()

__all__ = ["HedgeSpec", "KalmanHedge", "KalmanState", "StaticHedge"]


@dataclass(frozen=True)
class HedgeSpec:
    """Which hedge part a pair uses, and the Kalman hedge's noise variances.

    Attributes
    ----------
    part : str
        Registry name of the hedge part (``"static"``, ``"kalman"`` or a plugin's).
    kalman_delta : float
        State noise in Chan's convention: the hedge ratio and the intercept each move by
        a random-walk step of variance ``delta / (1 - delta)`` a day, independently.
        Must lie in (0, 1).
    kalman_obs_var : float or None
        Variance of the observation error (squared log-price units). ``None``: the
        residual variance of the screening regression over the fitting window.
    """

    part: str = _DEFAULTS.part
    kalman_delta: float = _DEFAULTS.kalman_delta
    kalman_obs_var: float | None = _DEFAULTS.kalman_obs_var

    def __post_init__(self) -> None:
        if not 0 < self.kalman_delta < 1:
            raise ValueError(f"kalman_delta must lie in (0, 1), got {self.kalman_delta}")
        if self.kalman_obs_var is not None and not self.kalman_obs_var > 0:
            raise ValueError(f"kalman_obs_var must be positive, got {self.kalman_obs_var}")


def _as_inputs(
    dates: np.ndarray, log_y: np.ndarray, log_x: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated ``datetime64[ns]`` dates and float log prices, each of shape (n,)."""
    dates = np.asarray(dates, dtype="datetime64[ns]")
    log_y = np.asarray(log_y, dtype=float)
    log_x = np.asarray(log_x, dtype=float)
    if dates.ndim != 1 or len(dates) == 0:
        raise ValueError("dates must be a non-empty 1-d array")
    for name, values in (("log_y", log_y), ("log_x", log_x)):
        if values.shape != dates.shape:
            raise ValueError(
                f"{name} must have the shape of dates {dates.shape}, got {values.shape}"
            )
    if len(dates) > 1 and not np.all(dates[1:] > dates[:-1]):
        raise ValueError("dates must be strictly increasing")
    return dates, log_y, log_x


def _date_strings(dates: np.ndarray) -> list[str]:
    # "auto" writes midnight as a plain ISO date and keeps any finer time exactly.
    return [str(d) for d in np.datetime_as_string(dates, unit="auto")]


class StaticHedge:
    """The screening regression's hedge ratio and intercept on every date.

    Parameters
    ----------
    spec : HedgeSpec, optional
        Stored only; the static hedge has no settings of its own.
    """

    name: ClassVar[str] = "static"

    def __init__(self, spec: HedgeSpec | None = None) -> None:
        self.spec = spec or HedgeSpec(part=self.name)

    def fit(
        self,
        dates: np.ndarray,
        log_y: np.ndarray,
        log_x: np.ndarray,
        *,
        hedge_ratio: float,
        intercept: float,
    ) -> StaticHedge:
        """Store ``hedge_ratio`` and ``intercept`` as given (nothing is re-estimated).

        Parameters
        ----------
        dates : ndarray of shape (n,), datetime64
            The fitting window's dates (checked, otherwise unused).
        log_y, log_x : ndarray of shape (n,)
            Natural logs of the dependent and the independent leg's prices (unused).
        hedge_ratio, intercept : float
            The screening regression's slope and constant of log y on log x.
        """
        _as_inputs(dates, log_y, log_x)
        self.hedge_ratio_ = float(hedge_ratio)
        self.intercept_ = float(intercept)
        return self

    def filter(
        self, dates: np.ndarray, log_y: np.ndarray, log_x: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The hedge ratio and intercept in force on each date.

        Returns
        -------
        hedge_ratio, intercept : ndarray of shape (n,)
            The fitted constants, repeated.
        """
        dates, _, _ = _as_inputs(dates, log_y, log_x)
        n = len(dates)
        return np.full(n, self.hedge_ratio_), np.full(n, self.intercept_)

    def extend_state(self, dates: np.ndarray, log_y: np.ndarray, log_x: np.ndarray) -> None:
        """Nothing to carry: the static hedge has no state (kept for a uniform interface)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "part": self.name,
            "spec": asdict(self.spec),
            "hedge_ratio": self.hedge_ratio_,
            "intercept": self.intercept_,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StaticHedge:
        part = cls(HedgeSpec(**data["spec"]))
        part.hedge_ratio_ = float(data["hedge_ratio"])
        part.intercept_ = float(data["intercept"])
        return part


@dataclass(frozen=True)
class KalmanState:
    """Filtered states of the dates the Kalman hedge has seen.

    Attributes
    ----------
    dates : ndarray of shape (n,), datetime64[ns]
    mean : ndarray of shape (n, 2)
        ``s_{t|t}`` = (hedge_ratio, intercept) given the data up to and including t.
    covariance : ndarray of shape (n, 2, 2)
        ``P_{t|t}``, its covariance (symmetric by construction).
    """

    dates: np.ndarray
    mean: np.ndarray
    covariance: np.ndarray


def _kalman_path(
    log_y: np.ndarray,
    log_x: np.ndarray,
    mean: np.ndarray,
    covariance: np.ndarray,
    state_var: float,
    obs_var: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the filter from the prediction ``(mean, covariance)`` for the first date.

    Returns
    -------
    predicted : ndarray of shape (n, 2)
        ``s_{t|t-1}``, the state known before date t.
    filtered : ndarray of shape (n, 2)
        ``s_{t|t}``.
    filtered_covariance : ndarray of shape (n, 2, 2)
        ``P_{t|t}``.

    A date whose log prices are not both finite is skipped (prediction only), as in
    statsmodels' treatment of missing observations.
    """
    n = len(log_y)
    predicted = np.empty((n, 2))
    filtered = np.empty((n, 2))
    filtered_cov = np.empty((n, 2, 2))
    b, c = float(mean[0]), float(mean[1])
    # The 2x2 covariance as its three distinct entries keeps it exactly symmetric.
    p00, p01, p11 = float(covariance[0, 0]), float(covariance[0, 1]), float(covariance[1, 1])
    for t, (y, x) in enumerate(zip(log_y.tolist(), log_x.tolist(), strict=True)):
        predicted[t] = b, c
        if math.isfinite(y) and math.isfinite(x):
            # Observation y = b x + c + e with design z = (x, 1): gain k / f, f = z P z' + R.
            k0, k1 = p00 * x + p01, p01 * x + p11
            f = k0 * x + k1 + obs_var
            v = y - (b * x + c)
            b, c = b + k0 / f * v, c + k1 / f * v
            p00, p01, p11 = p00 - k0 * k0 / f, p01 - k0 * k1 / f, p11 - k1 * k1 / f
        filtered[t] = b, c
        filtered_cov[t] = (p00, p01), (p01, p11)
        # Random-walk transition: the mean stays, the covariance grows by Q.
        p00, p11 = p00 + state_var, p11 + state_var
    return predicted, filtered, filtered_cov


class KalmanHedge:
    """Hedge ratio and intercept as a random walk, tracked by a Kalman filter.

    State ``s_t = (hedge_ratio_t, intercept_t)``, ``s_t = s_{t-1} + w_t`` with
    ``Var(w) = Q = delta / (1 - delta) * I``; observation
    ``log y_t = hedge_ratio_t * log x_t + intercept_t + e_t`` with ``Var(e) = R``.

    Prior: the prediction for the first fitted date is the screening regression's
    ``(hedge_ratio, intercept)`` with covariance ``R (X'X)^{-1}``, the OLS covariance of
    those coefficients over the fitting window (``X`` has rows ``(log x_t, 1)``). It is
    the statsmodels ``initialize_known(a0, P0)`` convention: ``a0 = s_{0|-1}``.

    Parameters
    ----------
    spec : HedgeSpec, optional
        ``kalman_delta`` and ``kalman_obs_var`` are used.

    Attributes
    ----------
    hedge_ratio_, intercept_ : float
        The screening regression's coefficients passed to :meth:`fit`.
    obs_var_ : float
        ``R``, squared log-price units.
    initial_mean_ : ndarray of shape (2,)
    initial_covariance_ : ndarray of shape (2, 2)
        The prior for the first fitted date.
    state_ : KalmanState
        Filtered states of the fitted dates and of those added by :meth:`extend_state`.
    """

    name: ClassVar[str] = "kalman"

    def __init__(self, spec: HedgeSpec | None = None) -> None:
        self.spec = spec or HedgeSpec(part=self.name)

    @property
    def state_var(self) -> float:
        """Daily random-walk variance of each state component, ``delta / (1 - delta)``."""
        return self.spec.kalman_delta / (1 - self.spec.kalman_delta)

    # -- fitting ------------------------------------------------------------------------

    def fit(
        self,
        dates: np.ndarray,
        log_y: np.ndarray,
        log_x: np.ndarray,
        *,
        hedge_ratio: float,
        intercept: float,
    ) -> KalmanHedge:
        """Fix the prior and ``R`` from the fitting window and filter over it.

        Parameters
        ----------
        dates : ndarray of shape (n,), datetime64
            The fitting window's trading dates, strictly increasing.
        log_y, log_x : ndarray of shape (n,)
            Natural logs of the dependent and the independent leg's prices.
        hedge_ratio, intercept : float
            The screening regression's slope and constant of log y on log x: the prior
            mean, and (when ``kalman_obs_var`` is None) the residuals that give ``R``.
        """
        dates, log_y, log_x = _as_inputs(dates, log_y, log_x)
        seen = np.isfinite(log_y) & np.isfinite(log_x)
        if seen.sum() < 3:
            raise ValueError(f"the Kalman hedge needs at least 3 finite prices, got {seen.sum()}")
        y, x = log_y[seen], log_x[seen]
        if self.spec.kalman_obs_var is None:
            resid = y - hedge_ratio * x - intercept
            obs_var = float(resid @ resid / (len(resid) - 2))
            if not obs_var > 0:
                raise ValueError("the screening regression fits exactly: set kalman_obs_var")
        else:
            obs_var = float(self.spec.kalman_obs_var)
        design = np.column_stack([x, np.ones_like(x)])
        gram = design.T @ design
        if np.linalg.cond(gram) > 1e14:
            raise ValueError("log_x is constant over the fitting window")
        covariance = obs_var * np.linalg.inv(gram)
        self.hedge_ratio_ = float(hedge_ratio)
        self.intercept_ = float(intercept)
        self.obs_var_ = obs_var
        self.initial_mean_ = np.array([self.hedge_ratio_, self.intercept_])
        self.initial_covariance_ = 0.5 * (covariance + covariance.T)
        _, filtered, filtered_cov = _kalman_path(
            log_y, log_x, self.initial_mean_, self.initial_covariance_, self.state_var, obs_var
        )
        self.state_ = KalmanState(dates, filtered, filtered_cov)
        return self

    # -- filtering ----------------------------------------------------------------------

    def _start(self, first_date: np.datetime64) -> tuple[np.ndarray, np.ndarray]:
        """The prediction for ``first_date``: from the last stored date before it."""
        state = self.state_
        anchor = int(np.searchsorted(state.dates, first_date, side="left")) - 1
        if anchor < 0:
            return self.initial_mean_, self.initial_covariance_
        return state.mean[anchor], state.covariance[anchor] + self.state_var * np.eye(2)

    def filter(
        self, dates: np.ndarray, log_y: np.ndarray, log_x: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The one-step-ahead hedge ratio and intercept for each date.

        Parameters
        ----------
        dates : ndarray of shape (n,), datetime64
            Consecutive trading dates, strictly increasing.
        log_y, log_x : ndarray of shape (n,)
            Natural logs of the legs' prices; a date with a missing price is not used
            for the update.

        Returns
        -------
        hedge_ratio, intercept : ndarray of shape (n,)
            ``s_{t|t-1}``: known from the data before date t only, which is what the
            spread on date t uses.

        The filter starts from the stored filtered state of the last stored date before
        ``dates[0]``: exact (the full-history path) when ``dates[0]`` is a stored date or
        the trading day right after the last one. After a gap it starts from the last
        stored state as if no day had been missed (approximate; the gap's extra
        random-walk variance is not added). A request starting on or before the first
        fitted date starts from the prior, exact on that date.
        """
        dates, log_y, log_x = _as_inputs(dates, log_y, log_x)
        mean, covariance = self._start(dates[0])
        predicted, _, _ = _kalman_path(
            log_y, log_x, mean, covariance, self.state_var, self.obs_var_
        )
        return predicted[:, 0].copy(), predicted[:, 1].copy()

    def extend_state(self, dates: np.ndarray, log_y: np.ndarray, log_x: np.ndarray) -> None:
        """Append the filtered states of the dates after the last stored date.

        Those dates are taken to follow the last stored date directly (the model passes
        its validation and test dates, which do); nothing is refitted. Dates up to the
        last stored one are ignored.
        """
        dates, log_y, log_x = _as_inputs(dates, log_y, log_x)
        state = self.state_
        later = dates > state.dates[-1]
        if not later.any():
            return
        mean, covariance = self._start(dates[later][0])
        _, filtered, filtered_cov = _kalman_path(
            log_y[later], log_x[later], mean, covariance, self.state_var, self.obs_var_
        )
        self.state_ = KalmanState(
            np.concatenate([state.dates, dates[later]]),
            np.concatenate([state.mean, filtered]),
            np.concatenate([state.covariance, filtered_cov]),
        )

    # -- persistence --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        cov = self.state_.covariance
        return {
            "part": self.name,
            "spec": asdict(self.spec),
            "hedge_ratio": self.hedge_ratio_,
            "intercept": self.intercept_,
            "obs_var": self.obs_var_,
            "initial_mean": self.initial_mean_.tolist(),
            "initial_covariance": self.initial_covariance_.tolist(),
            "state": {
                "dates": _date_strings(self.state_.dates),
                "mean": self.state_.mean.tolist(),
                # The distinct entries (P00, P01, P11) of each symmetric covariance.
                "covariance": np.column_stack([cov[:, 0, 0], cov[:, 0, 1], cov[:, 1, 1]]).tolist(),
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KalmanHedge:
        part = cls(HedgeSpec(**data["spec"]))
        part.hedge_ratio_ = float(data["hedge_ratio"])
        part.intercept_ = float(data["intercept"])
        part.obs_var_ = float(data["obs_var"])
        part.initial_mean_ = np.array(data["initial_mean"], dtype=float)
        part.initial_covariance_ = np.array(data["initial_covariance"], dtype=float)
        state = data["state"]
        entries = np.array(state["covariance"], dtype=float).reshape(-1, 3)
        covariance = np.empty((len(entries), 2, 2))
        covariance[:, 0, 0], covariance[:, 1, 1] = entries[:, 0], entries[:, 2]
        covariance[:, 0, 1] = covariance[:, 1, 0] = entries[:, 1]
        part.state_ = KalmanState(
            np.array(state["dates"], dtype="datetime64[ns]"),
            np.array(state["mean"], dtype=float).reshape(-1, 2),
            covariance,
        )
        return part

"""The EGARCH volatility part: ``arch``'s EGARCH(p, o, q), fitted once, then only filtered.

The same contract as :class:`~mlflow_pairs.model.volatility.GarchPart` (whose storage,
state extension and persistence it reuses): inference applies the fitted parameters with
``arch``'s EGARCH recursion, carried on from the stored state of the fitted days, so the
conditional volatility equals ``arch``'s filter over the full history.

``arch``'s recursion (``arch.univariate.recursions.egarch_recursion``) is

.. math::

    \\ln\\sigma^2_t = \\omega + \\sum_{i=1}^{p} \\alpha_i (|z_{t-i}| - \\sqrt{2/\\pi})
        + \\sum_{k=1}^{o} \\gamma_k z_{t-k} + \\sum_{j=1}^{q} \\beta_j \\ln\\sigma^2_{t-j},
    \\qquad z_t = e_t / \\sigma_t,

with the normal distribution's :math:`E|z| = \\sqrt{2/\\pi}` whatever the error
distribution (``t`` included), and :math:`\\ln\\sigma^2_t` capped at ``log(max double) -
0.1``. ``arch``'s loose data-dependent variance bounds (a million times above or below an
EWMA of the squared residuals), which only ever bind in degenerate fits, are not applied.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal, cast

import numpy as np
import pandas as pd

from mlflow_pairs.model.volatility import GarchPart, GarchSpec

__all__ = ["EgarchPart"]

#: E|z| for a standard normal z, the constant in ``arch``'s EGARCH recursion.
_ABS_NORMAL_MEAN = math.sqrt(2 / math.pi)
#: ``arch``'s cap on ln sigma^2 (keeps exp finite).
_LN_VARIANCE_MAX = math.log(np.finfo(np.double).max) - 0.1


class EgarchPart(GarchPart):
    """EGARCH(p, o, q) on scaled daily spread changes.

    ``fit`` estimates the parameters with ``arch_model(..., vol="EGARCH")``; ``filter``
    applies them to returns without refitting. ``spec.p`` is the order of the magnitude
    terms ``|z| - sqrt(2/pi)``, ``spec.o`` of the sign terms ``z``, ``spec.q`` of the
    lagged ``ln sigma^2``.

    Parameters
    ----------
    spec : GarchSpec, optional
        Orders, error distribution (``"normal"`` or ``"t"``) and mean (``"constant"`` or
        ``"zero"``). ``p`` or ``o`` must be positive.
    max_iterations : int, optional
        The optimiser's iteration limit (``arch``'s default when None).

    Attributes
    ----------
    scale_ : float
        Power of ten the changes are multiplied by before fitting (scaled units).
    params_ : dict of str to float
        ``arch``'s parameter names (``mu``, ``omega``, ``alpha[i]``, ``gamma[k]``,
        ``beta[j]``, ``nu``) and values.
    state_ : GarchState
        Conditional variances and residuals (scaled units) of the fitted days and of
        those added by :meth:`extend_state`.
    """

    name: ClassVar[str] = "egarch"

    def __init__(self, spec: GarchSpec | None = None, max_iterations: int | None = None) -> None:
        super().__init__(spec or GarchSpec(part=self.name), max_iterations)

    _arch_vol: ClassVar[Literal["GARCH", "EGARCH"]] = "EGARCH"

    def fit(self, returns: pd.Series, name: str = "") -> EgarchPart:
        """Estimate on ``returns`` (the training window's daily spread changes) with
        ``arch_model(..., vol="EGARCH")``; see :meth:`GarchPart.fit`."""
        if self.spec.p == 0 and self.spec.o == 0:
            raise ValueError("spec: EGARCH needs p > 0 or o > 0")
        super().fit(returns, name)
        return self

    # -- parameters ---------------------------------------------------------------------

    @property
    def persistence(self) -> float:
        """Persistence of ``ln sigma^2``: the sum of the betas."""
        return float(self._coefficients()[3].sum())

    @property
    def long_run_variance(self) -> float:
        """``exp(omega / (1 - sum(beta)))`` (scaled units).

        The exponential of the unconditional mean of ``ln sigma^2`` (the news terms have
        mean zero): the typical, median-like level of the variance, below its mean
        ``E[sigma^2]`` by Jensen's inequality, so that ``sqrt(variance / long_run)`` is
        centred on 1 in logs. When the betas sum to 1 or more, the geometric mean of the
        stored variances instead.
        """
        omega = self._coefficients()[0]
        if self.persistence < 1:
            return math.exp(omega / (1 - self.persistence))
        return float(np.exp(np.mean(np.log(self.state_.variance))))

    # -- filtering ----------------------------------------------------------------------

    def _filter_from(
        self, anchor: int, changes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """EGARCH's recursion (a plain loop: it is not linear in the variance) from the
        stored state of index ``anchor``; see :meth:`GarchPart.filter_values` for the
        anchors. A request starting within the first ``max(p, o, q)`` fitted days pads the
        missing history with the first day's variance and no news, which is approximate
        for orders above one (``arch`` starts from its backcast)."""
        state = self.state_
        omega, alpha, gamma, beta = self._coefficients()
        lags = max(len(alpha), len(gamma), len(beta), 1)
        values = np.asarray(changes, dtype=float) * self.scale_ - self.mu
        if anchor >= 0:
            lo = max(0, anchor - lags + 1)
            var_hist = state.variance[lo : anchor + 1]
            res_hist = state.resid[lo : anchor + 1]
        else:
            var_hist, res_hist = np.array([self.long_run_variance]), np.array([0.0])
        std_hist = res_hist / np.sqrt(var_hist)
        pad = lags - len(var_hist)
        # Histories of ln sigma^2, z and |z| - E|z|, oldest first; missing days carry no
        # news, as in arch's start of the recursion.
        ln_variance = [math.log(var_hist[0])] * pad + np.log(var_hist).tolist()
        std_resid = [0.0] * pad + std_hist.tolist()
        size = [0.0] * pad + (np.abs(std_hist) - _ABS_NORMAL_MEAN).tolist()
        n = len(values)
        new_values = values.tolist()
        forecast = np.empty(n)
        alphas, gammas, betas = alpha.tolist(), gamma.tolist(), beta.tolist()
        for t in range(n):
            # Summed in arch's order (omega, alphas, gammas, betas) for equal rounding.
            ln_next = omega
            for i, a in enumerate(alphas, start=1):
                ln_next += a * size[-i]
            for k, g in enumerate(gammas, start=1):
                ln_next += g * std_resid[-k]
            for j, b in enumerate(betas, start=1):
                ln_next += b * ln_variance[-j]
            ln_next = min(ln_next, _LN_VARIANCE_MAX)
            next_variance = math.exp(ln_next)
            forecast[t] = next_variance
            if t + 1 < n:
                z = new_values[t + 1] / math.sqrt(next_variance)
                ln_variance.append(ln_next)
                std_resid.append(z)
                size.append(abs(z) - _ABS_NORMAL_MEAN)
        variance = np.empty(n)
        variance[0], variance[1:] = var_hist[-1], forecast[:-1]
        resid = np.empty(n)
        resid[0], resid[1:] = res_hist[-1], values[1:]
        return variance, resid, forecast

    # -- persistence --------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EgarchPart:
        return cast("EgarchPart", super().from_dict(data))

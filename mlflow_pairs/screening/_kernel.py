"""The screening kernel: every statistic of the pairs between two blocks of symbols.

The symbols are split into blocks. For a block pair (I, J) the kernel takes a few
matrix products of the two blocks' series (the cross-products of the Engle–Granger
regressors, and of the lagged differences the Hurst exponent needs), and per-symbol
sums; every pair's regression, hedge ratio and diagnostic is a quadratic form in the
hedge ratio over those numbers. Only the mean crossings need each spread's own path,
and those are counted a few spreads at a time. Memory is bounded by the block size
(the products are (block size × regressors)²), not by the number of symbols.

The code is written once for NumPy and PyTorch arrays (``be.xp``, see
:mod:`._backend`), so the GPU computes exactly what the CPU does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlflow_pairs.screening._backend import Backend
from mlflow_pairs.screening._mackinnon import _LARGE_P, _SMALL_P, _TAU_MAX, _TAU_MIN, _TAU_STAR
from mlflow_pairs.screening.diagnostics import half_life_from_sums, hurst_from_log_std

__all__ = [
    "COLLINEAR_R2",
    "REASONS",
    "TIE_TOLERANCE",
    "BlockProducts",
    "KernelSettings",
    "SymbolBlock",
    "adf_statistics",
    "block_products",
    "engle_granger_tests",
    "pair_statistics",
    "symbol_block",
]

# statsmodels' coint treats R^2 >= 1 - 100 sqrt(eps) as perfectly collinear.
COLLINEAR_R2 = 1 - 100 * math.sqrt(float(np.finfo(float).eps))

#: Relative difference under which the two directions' p-values are a tie.
TIE_TOLERANCE = 1e-9

#: ``reason`` codes of the kernel's output, as the table writes them.
REASONS = ("", "legs are (almost) perfectly collinear", "constant price series")


@dataclass(frozen=True)
class KernelSettings:
    """What the kernel computes: the ADF lags, the lag choice, the hedge estimator and
    the Hurst exponent's lags."""

    max_lag: int
    autolag: str | None
    hedge: str
    hurst_lags: tuple[int, ...]

    @property
    def n_features(self) -> int:
        """Regressors per symbol: level, ``max_lag`` lagged differences, difference."""
        return self.max_lag + 2


@dataclass(frozen=True)
class SymbolBlock:
    """Per-symbol series and sums of one block of ``n`` symbols over ``T`` days.

    ``z`` are the centred log prices; ``Δz_t = z_{t+1} - z_t``. Sums run over
    ``t = 0 .. T-2`` unless said otherwise.
    """

    n_obs: int
    rows: Any  # (n, T): each symbol's path, contiguous, for the crossings
    means: Any  # (n,) mean log price
    constant: Any  # (n,) bool
    features: Any  # (T-1-L, F*n) feature-major: [level, Δz lags 1..L, Δz] rows t=L..T-2
    self_features: Any  # (n, F, F) each symbol's own regressor cross-products
    z: Any  # (T, n)
    zz: Any  # (n,) sum of z^2 over all T days
    ll: Any  # (n,) sum of z_t^2
    ld: Any  # (n,) sum of z_t Δz_t
    sum_level: Any  # (n,) sum of z_t
    sum_change: Any  # (n,) sum of Δz_t
    change_mean: Any  # (n,) mean daily return
    rr: Any  # (n,) sum of squared demeaned returns
    head: Any  # (L+1, n) z_0 .. z_L
    head_change: Any  # (L, n) Δz_0 .. Δz_{L-1}
    hurst_sq: Any  # (n_lags, n) sum of (z_{t+tau} - z_t)^2
    hurst_mean: Any  # (n_lags, n) mean of (z_{t+tau} - z_t)


def symbol_block(
    be: Backend, log_prices: np.ndarray, means: np.ndarray, s: KernelSettings
) -> SymbolBlock:
    """Prepare a block from its log prices (T, n) and their means over the window.

    The means come from the caller so that every block, on every machine, centres a
    symbol's path to the same bits.
    """
    z = log_prices - means
    z_dev = be.asarray(z)
    n_obs, n = z.shape
    lags = s.max_lag
    change = z_dev[1:] - z_dev[:-1]
    n_rows = n_obs - 1 - lags
    blocks = [z_dev[lags : lags + n_rows]]
    blocks += [change[lags - j : lags - j + n_rows] for j in range(1, lags + 1)]
    blocks.append(change[lags : lags + n_rows])
    features = be.concat(blocks, axis=1)
    n_f = s.n_features
    self_features = be.full((n, n_f, n_f), 0.0)
    for f in range(n_f):
        for g in range(f, n_f):
            self_features[:, f, g] = self_features[:, g, f] = (blocks[f] * blocks[g]).sum(0)
    level = z_dev[:-1]
    change_mean = change.mean(0)
    demeaned = change - change_mean
    hurst_sq, hurst_mean = [], []
    for tau in s.hurst_lags:
        d = z_dev[tau:] - z_dev[:-tau]
        hurst_sq.append((d * d).sum(0))
        hurst_mean.append(d.mean(0))
    constant = np.ptp(log_prices, axis=0) == 0
    return SymbolBlock(
        n_obs=n_obs,
        rows=be.asarray(np.ascontiguousarray(z.T)),
        means=be.asarray(means),
        constant=be.asarray(constant) > 0,
        features=features,
        self_features=self_features,
        z=z_dev,
        zz=(z_dev * z_dev).sum(0),
        ll=(level * level).sum(0),
        ld=(level * change).sum(0),
        sum_level=level.sum(0),
        sum_change=change.sum(0),
        change_mean=change_mean,
        rr=(demeaned * demeaned).sum(0),
        head=z_dev[: lags + 1],
        head_change=change[:lags],
        hurst_sq=be.xp.stack(hurst_sq, 0) if hurst_sq else be.full((0, n), 0.0),
        hurst_mean=be.xp.stack(hurst_mean, 0) if hurst_mean else be.full((0, n), 0.0),
    )


@dataclass(frozen=True)
class BlockProducts:
    """Cross-products between the symbols of blocks I and J."""

    features: Any  # (F*nI, F*nJ)
    hurst: tuple[Any, ...]  # per Hurst lag, (nI, nJ)
    rows: Any  # (nI [+ nJ], T) both blocks' paths (one block when I is J)


def block_products(
    be: Backend, first: SymbolBlock, second: SymbolBlock, s: KernelSettings, diagonal: bool
) -> BlockProducts:
    """The matrix products of a block pair (symmetric, half the work, when ``diagonal``)."""
    features = be.cross(first.features) if diagonal else be.cross(first.features, second.features)
    hurst = []
    for tau in s.hurst_lags:
        d_first = first.z[tau:] - first.z[:-tau]
        if diagonal:
            hurst.append(be.cross(d_first))
        else:
            hurst.append(be.cross(d_first, second.z[tau:] - second.z[:-tau]))
    rows = first.rows if diagonal else be.concat([first.rows, second.rows], axis=0)
    return BlockProducts(features, tuple(hurst), rows)


def engle_granger_tests(
    be: Backend,
    first: SymbolBlock,
    second: SymbolBlock,
    products: BlockProducts,
    u: Any,
    v: Any,
    s: KernelSettings,
    both: bool = True,
) -> dict[str, Any]:
    """Engle–Granger tests of ``first[u]`` on ``second[v]`` (keys ``*_uv``) and, with
    ``both``, of ``second[v]`` on ``first[u]`` (``*_vu``), as backend arrays, with the
    pieces the diagnostics reuse."""
    xp = be.xp
    n_f, lags, n_obs = s.n_features, s.max_lag, first.n_obs
    n_first, n_second = first.rows.shape[0], second.rows.shape[0]
    f_idx = be.index(np.arange(n_f))
    rows_u = f_idx[None, :, None] * n_first + u[:, None, None]
    cols_v = f_idx[None, None, :] * n_second + v[:, None, None]
    cross = _entries(products.features, rows_u, cols_v)  # (P, F, F): u's regressors by v's
    self_u, self_v = first.self_features[u], second.self_features[v]
    head_u, head_v = first.head[:, u], second.head[:, v]
    # The products cover t = L .. T-2; the first L days (and the last, for the levels
    # over the whole window) are added per pair.
    early = (head_u[:lags] * head_v[:lags]).sum(0)

    # Full-sample cross-products of the centred log prices: hedge ratios and R^2.
    g_uv = cross[:, 0, 0] + early + first.z[n_obs - 1, u] * second.z[n_obs - 1, v]
    g_uu, g_vv = first.zz[u], second.zz[v]
    beta_uv, beta_vu = _hedge(xp, g_uu, g_vv, g_uv, s.hedge)
    constant = first.constant[u] | second.constant[v]
    r2 = g_uv * g_uv / (g_vv * g_uu)
    reason = xp.where(constant, 2, xp.where(r2 >= COLLINEAR_R2, 1, 0))
    valid = reason == 0

    n_rows = n_obs - 1 - lags
    out = {
        "cross": cross,
        "early": early,
        "head_u": head_u,
        "head_v": head_v,
        "constant": constant,
        "reason": reason,
        "beta_uv": beta_uv,
        "beta_vu": beta_vu,
    }
    out["stat_uv"], out["lag_uv"], out["nobs_uv"] = adf_statistics(
        be, self_u, self_v, cross, xp.where(valid, beta_uv, 0.0), valid, head_u, head_v, s, n_rows
    )
    out["p_uv"] = _pvalue(be, out["stat_uv"])
    if both:
        out["stat_vu"], out["lag_vu"], out["nobs_vu"] = adf_statistics(
            be,
            self_v,
            self_u,
            xp.swapaxes(cross, 1, 2),
            xp.where(valid, beta_vu, 0.0),
            valid,
            head_v,
            head_u,
            s,
            n_rows,
        )
        out["p_vu"] = _pvalue(be, out["stat_vu"])
    return out


def pair_statistics(
    be: Backend,
    first: SymbolBlock,
    second: SymbolBlock,
    products: BlockProducts,
    u: Any,
    v: Any,
    flip: Any,
    s: KernelSettings,
    diagonal: bool,
) -> dict[str, Any]:
    """Statistics of the pairs (``first[u]``, ``second[v]``), as backend arrays.

    Both directions are tested; the forward one is ``u`` on ``v`` unless ``flip``.
    Each pair reports the direction with the smaller p-value (the stronger evidence, and
    the spread that is traded; NaN wins, so it shows) in ``hedge_ratio``, ``adf_stat``,
    ``pvalue``..., the other in ``*_reverse``, and the diagnostics of its spread. The
    pair's p-value, which selection uses, is the larger of the two (both must reject):
    see :func:`mlflow_pairs.screening.engine.screening_table`. ``dir2`` is True where the
    reported ``y`` is the ``v`` leg.
    """
    xp = be.xp
    tests = engle_granger_tests(be, first, second, products, u, v, s)
    legs = _Legs(xp, _reported_direction(xp, tests["p_uv"], tests["p_vu"], flip))
    constant = tests["constant"]
    beta = xp.where(constant, math.nan, legs.y(tests["beta_uv"], tests["beta_vu"]))
    mean_u, mean_v = first.means[u], second.means[v]
    intercept = legs.y(mean_u - tests["beta_uv"] * mean_v, mean_v - tests["beta_vu"] * mean_u)
    safe_beta = xp.where(xp.isfinite(beta), beta, 0.0)
    return {
        "dir2": legs.dir2,
        "hedge_ratio": beta,
        "intercept": xp.where(constant, math.nan, intercept),
        "adf_stat": legs.y(tests["stat_uv"], tests["stat_vu"]),
        "pvalue": legs.y(tests["p_uv"], tests["p_vu"]),
        "used_lag": legs.y(tests["lag_uv"], tests["lag_vu"]),
        "nobs": legs.y(tests["nobs_uv"], tests["nobs_vu"]),
        "adf_stat_reverse": legs.x(tests["stat_uv"], tests["stat_vu"]),
        "pvalue_reverse": legs.x(tests["p_uv"], tests["p_vu"]),
        "half_life": _half_life(xp, legs, first, second, u, v, tests, safe_beta, s),
        "hurst": _hurst(xp, legs, first, second, products, u, v, safe_beta, s),
        # The spread of (almost) perfectly collinear legs is rounding noise, whose sign
        # changes would differ by engine and block size: no crossing is reported.
        "crossings": xp.where(
            tests["reason"] == 1,
            0,
            _crossings(be, legs, products, u, v, safe_beta, first, diagonal),
        ),
        "return_correlation": _return_correlation(xp, first, second, u, v, tests, s),
        "reason": tests["reason"],
    }


class _Legs:
    """Picks per pair the value of the reported ``y`` or ``x`` leg among a value for
    the ``u`` leg and one for the ``v`` leg."""

    def __init__(self, xp: Any, dir2: Any) -> None:
        self.xp, self.dir2 = xp, dir2  # dir2: y is the v leg

    def y(self, on_u: Any, on_v: Any) -> Any:
        return self.xp.where(self.dir2, on_v, on_u)

    def x(self, on_u: Any, on_v: Any) -> Any:
        return self.xp.where(self.dir2, on_u, on_v)


def _reported_direction(xp: Any, p_uv: Any, p_vu: Any, flip: Any) -> Any:
    """True where the reported direction is v on u: the smaller p-value's.

    The regression with the stronger evidence of a stationary residual estimates the
    hedge ratio better: on planted pairs its 90th percentile error is 4.3% against 5.9%
    for the weaker one's (docs/screening.md). The forward direction is u on v unless
    flipped. Two p-values within rounding of each other are a tie, which the forward
    direction wins: with TLS they always are (both regressions are the same line), and
    rounding must not pick the direction, or each engine and block size would pick its
    own. A NaN p-value wins, so it shows.
    """
    p_fwd, p_rev = xp.where(flip, p_vu, p_uv), xp.where(flip, p_uv, p_vu)
    smaller = p_rev < p_fwd - TIE_TOLERANCE * xp.where(p_rev > p_fwd, p_rev, p_fwd)
    use_reverse = xp.where(xp.isnan(p_rev), True, xp.where(xp.isnan(p_fwd), False, smaller))
    return use_reverse != flip


def _half_life(
    xp: Any,
    legs: _Legs,
    first: SymbolBlock,
    second: SymbolBlock,
    u: Any,
    v: Any,
    tests: dict[str, Any],
    beta: Any,
    s: KernelSettings,
) -> Any:
    """AR(1) of the spread's change on its level, t = 0 .. T-2, from sums."""
    cross, lags, last = tests["cross"], s.max_lag, s.n_features - 1
    head_u, head_v = tests["head_u"][:lags], tests["head_v"][:lags]
    change_u, change_v = first.head_change[:, u], second.head_change[:, v]
    ll_uv = cross[:, 0, 0] + tests["early"]
    ld_both = (  # sum of z_u dz_v + z_v dz_u: symmetric, whichever leg is y
        cross[:, 0, last]
        + cross[:, last, 0]
        + (head_u * change_v).sum(0)
        + (head_v * change_u).sum(0)
    )

    def spread_sum(of_first: Any, of_second: Any) -> Any:
        return legs.y(of_first, of_second) - beta * legs.x(of_first, of_second)

    sum_l = spread_sum(first.sum_level[u], second.sum_level[v])
    sum_d = spread_sum(first.sum_change[u], second.sum_change[v])
    ll_u, ll_v, ld_u, ld_v = first.ll[u], second.ll[v], first.ld[u], second.ld[v]
    s_ll = legs.y(ll_u, ll_v) - 2 * beta * ll_uv + beta * beta * legs.x(ll_u, ll_v)
    s_ld = legs.y(ld_u, ld_v) - beta * ld_both + beta * beta * legs.x(ld_u, ld_v)
    return half_life_from_sums(xp, first.n_obs - 1, sum_l, sum_d, s_ll, s_ld)


def _hurst(
    xp: Any,
    legs: _Legs,
    first: SymbolBlock,
    second: SymbolBlock,
    products: BlockProducts,
    u: Any,
    v: Any,
    beta: Any,
    s: KernelSettings,
) -> Any:
    """Hurst exponent from the variance of the spread's differences at each lag."""
    log_std = []
    for k, tau in enumerate(s.hurst_lags):
        sq_u, sq_v = first.hurst_sq[k, u], second.hurst_sq[k, v]
        mean_u, mean_v = first.hurst_mean[k, u], second.hurst_mean[k, v]
        cross = _entries(products.hurst[k], u, v)
        second_moment = (
            legs.y(sq_u, sq_v) - 2 * beta * cross + beta * beta * legs.x(sq_u, sq_v)
        ) / (first.n_obs - tau)
        mean = legs.y(mean_u, mean_v) - beta * legs.x(mean_u, mean_v)
        log_std.append(0.5 * xp.log(xp.clip(second_moment - mean * mean, 0.0, None)))
    return hurst_from_log_std(xp, xp.stack(log_std, 0), s.hurst_lags)


def _return_correlation(
    xp: Any,
    first: SymbolBlock,
    second: SymbolBlock,
    u: Any,
    v: Any,
    tests: dict[str, Any],
    s: KernelSettings,
) -> Any:
    """Correlation of the legs' daily log-returns (symmetric in the legs)."""
    last = s.n_features - 1
    change_u, change_v = first.head_change[:, u], second.head_change[:, v]
    products = (
        tests["cross"][:, last, last]
        + (change_u * change_v).sum(0)
        - (first.n_obs - 1) * first.change_mean[u] * second.change_mean[v]
    )
    return products / xp.sqrt(first.rr[u] * second.rr[v])


def _crossings(
    be: Backend,
    legs: _Legs,
    products: BlockProducts,
    u: Any,
    v: Any,
    beta: Any,
    first: SymbolBlock,
    diagonal: bool,
) -> Any:
    """Mean crossings: sign changes of the spread of the centred log prices (mean 0).

    Every spread is written as ``rows[u] - gamma rows[v]``: a reported v-on-u spread
    ``z_v - beta z_u`` is ``-beta`` times ``z_u - z_v / beta``, with the same crossings,
    so the spreads of one u are all compared against its one path; with ``beta = 0``
    the spread is ``z_v`` itself.
    """
    xp = be.xp
    row_v = v + (0 if diagonal else first.rows.shape[0])
    zero = beta == 0
    on_v = legs.dir2 & zero
    gamma = xp.where(legs.dir2, 1.0 / xp.where(zero, 1.0, beta), beta)
    return be.sign_changes(
        products.rows,
        xp.where(on_v, row_v, u),
        xp.where(on_v, u, row_v),
        xp.where(on_v, 0.0, gamma),
    )


def _entries(matrix: Any, rows: Any, columns: Any) -> Any:
    """``matrix[rows, columns]`` as one gather from the flat matrix (faster than 2-D
    fancy indexing on both backends)."""
    return matrix.reshape(-1)[rows * matrix.shape[1] + columns]


def _hedge(xp: Any, g_uu: Any, g_vv: Any, g_uv: Any, method: str) -> tuple[Any, Any]:
    """Hedge ratios of u on v and of v on u from the centred cross-products."""
    if method == "ols":
        return g_uv / g_vv, g_uv / g_uu
    if method == "tls":

        def tls(syy: Any, sxx: Any) -> Any:
            return (syy - sxx + xp.sqrt((syy - sxx) ** 2 + 4 * g_uv**2)) / (2 * g_uv)

        return tls(g_uu, g_vv), tls(g_vv, g_uu)
    raise ValueError(f"hedge method must be 'ols' or 'tls', not {method!r}")


def adf_statistics(
    be: Backend,
    self_y: Any,
    self_x: Any,
    cross_yx: Any,
    beta: Any,
    valid: Any,
    head_y: Any,
    head_x: Any,
    s: KernelSettings,
    n_rows: int,
) -> tuple[Any, Any, Any]:
    """ADF t-statistics on the residuals ``y - beta x``, with the lag and sample size.

    ``self_*`` (P, F, F) are each leg's regressor cross-products, ``cross_yx`` the
    legs' cross-products (y's regressors by x's); ``head_*`` (L+1, P) the first log
    prices, which a refit with a shorter lag adds to the sample. Invalid pairs get NaN.
    """
    xp, lags, n_f = be.xp, s.max_lag, s.n_features
    b = beta[:, None, None]
    a = self_y - b * (cross_yx + xp.swapaxes(cross_yx, 1, 2)) + b * b * self_x
    a[~valid] = be.eye(n_f)  # placeholders; their statistic is NaN
    n_pairs = a.shape[0]
    if s.autolag is not None:
        criteria = xp.stack(
            [
                _information_criterion(xp, _ols(be, a, p)[1], n_rows, p + 1, s.autolag)
                for p in range(lags + 1)
            ],
            1,
        )
        chosen = xp.where(xp.isnan(criteria), math.inf, criteria).argmin(1)
    else:
        chosen = be.index(np.full(n_pairs, lags))
    stat = be.full(n_pairs, math.nan)
    nobs = be.full(n_pairs, float(n_rows))
    early = head_y - beta[None, :] * head_x  # (L+1, P) residuals of the first rows
    for lag in range(lags + 1):
        members = chosen == lag
        if not bool(members.any()):
            continue
        keep = [*range(lag + 1), n_f - 1]
        block = a[members][:, keep][:, :, keep]
        if lag < lags:
            block = block + _early_rows(xp, early[:, members], lag, lags)
        n_lag = n_rows + (lags - lag)
        coef, ssr, inverse = _ols(be, block, lag)
        sigma2 = ssr / (n_lag - (lag + 1))
        stat[members] = coef[:, 0] / xp.sqrt(sigma2 * inverse[:, 0, 0])
        nobs[members] = float(n_lag)
    stat = xp.where(valid, stat, math.nan)
    return stat, chosen, nobs


def _ols(be: Backend, a: Any, p: int) -> tuple[Any, Any, Any]:
    """Coefficients, SSR and (X'X)^-1 of Δe_t on [level, p lags] from the products ``a``."""
    target = a.shape[-1] - 1
    xtx = a[:, : p + 1, : p + 1]
    xty = a[:, : p + 1, target]
    inverse = _inverse(be, xtx)
    coef = be.xp.einsum("nij,nj->ni", inverse, xty)
    ssr = a[:, target, target] - (coef * xty).sum(1)
    return coef, ssr, inverse


def _inverse(be: Backend, a: Any) -> Any:
    """Inverses of a batch of small symmetric positive-definite matrices (Gauss–Jordan;
    far faster than a LAPACK call per matrix)."""
    k = a.shape[-1]
    work = be.concat([a, a * 0.0 + be.eye(k)], axis=2)
    for j in range(k):
        work[:, j, :] = work[:, j, :] / work[:, j, j][:, None]
        for i in range(k):
            if i != j:
                work[:, i, :] = work[:, i, :] - work[:, i, j][:, None] * work[:, j, :]
    return work[:, :, k:]


def _information_criterion(xp: Any, ssr: Any, nobs: int, k: int, method: str) -> Any:
    # statsmodels OLS without a constant: -2 llf + penalty * k.
    llf2 = nobs * (math.log(2 * math.pi) + xp.log(ssr / nobs) + 1)
    return llf2 + (2 * k if method == "aic" else math.log(nobs) * k)


def _early_rows(xp: Any, e: Any, lag: int, max_lag: int) -> Any:
    """Cross-products of the rows t = lag .. max_lag-1 that a lag-``lag`` refit adds."""
    d = e[1:] - e[:-1]
    rows = []
    for t in range(lag, max_lag):
        rows.append(xp.stack([e[t], *[d[t - j] for j in range(1, lag + 1)], d[t]], 1))
    stacked = xp.stack(rows, 1)  # (pairs, rows, lag + 2)
    return xp.einsum("nri,nrj->nij", stacked, stacked)


def _pvalue(be: Backend, stat: Any) -> Any:
    """MacKinnon's p-value (two variables, constant), as ``np.polyval`` evaluates it."""
    xp = be.xp

    def polyval(coefficients: np.ndarray) -> Any:
        value = stat * 0.0
        for c in coefficients[::-1]:
            value = value * stat + float(c)
        return value

    pvalue = be.ndtr(xp.where(stat <= _TAU_STAR, polyval(_SMALL_P), polyval(_LARGE_P)))
    pvalue = xp.where(stat > _TAU_MAX, 1.0, pvalue)
    pvalue = xp.where(stat < _TAU_MIN, 0.0, pvalue)
    return xp.where(xp.isnan(stat), math.nan, pvalue)

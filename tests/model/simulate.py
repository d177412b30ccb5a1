"""Simulated prices with known structure for the model's tests and benchmarks."""

from __future__ import annotations

import numpy as np
import pandas as pd


def garch_noise(
    rng: np.random.Generator, n: int, omega: float, alpha: float, beta: float
) -> tuple[np.ndarray, np.ndarray]:
    """GARCH(1,1) innovations with unit-scale parameters: (shocks, conditional variances)."""
    e, s2 = np.zeros(n), np.zeros(n)
    s2[0] = omega / (1 - alpha - beta)
    z = rng.standard_normal(n)
    for t in range(n):
        if t:
            s2[t] = omega + alpha * e[t - 1] ** 2 + beta * s2[t - 1]
        e[t] = np.sqrt(s2[t]) * z[t]
    return e, s2


def mean_reverting_pairs(
    seed: int,
    n_days: int = 2000,
    n_pairs: int = 3,
    theta: float = 0.1,
    noise_scale: float = 0.004,
    regime_dependent: bool = False,
) -> pd.DataFrame:
    """Pairs (Y_i, X_i): X a random walk, log Y = 0.5 + 1.2 log X + s, with s an AR(1)
    spread.

    By default the spread's shocks follow a GARCH(1,1) and it reverts at speed
    ``theta``. With ``regime_dependent`` the spread switches (Markov, about every 100
    days) between a turbulent regime (daily speed 0.3, large shocks) and a calm one (speed
    0.01, shocks five times smaller), scaled so that both regimes have the same stationary
    spread width: the z-score alone cannot tell them apart, the volatility can.
    """
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2012-01-02", periods=n_days)
    columns = {}
    for i in range(n_pairs):
        x = 3.5 + np.cumsum(rng.normal(0, 0.01, n_days))
        spread = np.zeros(n_days)
        if regime_dependent:
            turbulent = np.zeros(n_days, dtype=bool)
            for t in range(1, n_days):
                turbulent[t] = turbulent[t - 1] != (rng.random() < 0.01)
            fast, slow = 0.3, 0.01
            calm_scale = noise_scale * np.sqrt((1 - (1 - slow) ** 2) / (1 - (1 - fast) ** 2))
            scale = np.where(turbulent, noise_scale, calm_scale)
            speed = np.where(turbulent, fast, slow)
            shocks = rng.standard_normal(n_days) * scale
        else:
            garch, _ = garch_noise(rng, n_days, 0.05, 0.12, 0.85)
            shocks = noise_scale * garch
            speed = np.full(n_days, theta)
        for t in range(1, n_days):
            spread[t] = (1 - speed[t]) * spread[t - 1] + shocks[t]
        columns[f"X{i}"] = np.exp(x)
        columns[f"Y{i}"] = np.exp(0.5 + 1.2 * x + spread)
    return pd.DataFrame(columns, index=index)

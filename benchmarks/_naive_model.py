"""The serving benchmark's baseline: a pyfunc that refits GARCH(1,1) on every request
(models-from-code, so nothing is pickled)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from arch import arch_model
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel


class NaiveGarch(PythonModel):
    def load_context(self, context):  # type: ignore[no-untyped-def]
        self.hedges = context.model_config["hedges"]

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        prices = model_input.set_index("date")
        rows = []
        for pair, beta in self.hedges.items():
            y, x = pair.split("/")
            spread = np.log(prices[y].astype(float)) - beta * np.log(prices[x].astype(float))
            returns = spread.diff().dropna() * 100
            fit = arch_model(returns, mean="Constant", vol="GARCH", p=1, q=1, rescale=False).fit(
                disp="off"
            )
            sigma = float(np.sqrt(fit.forecast(horizon=1).variance.iloc[-1, 0])) / 100
            z = (spread.iloc[-1] - spread.mean()) / spread.std()
            rows.append({"pair": pair, "zscore": float(z), "garch_sigma": sigma})
        return pd.DataFrame(rows)


set_model(NaiveGarch())

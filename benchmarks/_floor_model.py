"""The serving benchmark's floor: a pyfunc that does no work (models-from-code), to show
what ``mlflow models serve`` itself costs for the same request."""

from __future__ import annotations

import pandas as pd
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel


class Constant(PythonModel):
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return pd.DataFrame({"pair": ["none"] * 10, "value": [0.0] * 10})


set_model(Constant())

"""mlflow-pairs: statistical-arbitrage pairs trading as an MLflow extension."""

from importlib.metadata import PackageNotFoundError, version

from mlflow_pairs.hookspecs import hookimpl

try:
    __version__ = version("mlflow-pairs")
except PackageNotFoundError:  # running from a checkout that is not installed
    __version__ = "0+unknown"

__all__ = ["__version__", "hookimpl"]

"""Apache Spark for what outgrows one process: the optional ``spark`` extra.

``pip install 'mlflow-pairs[spark]'``. Nothing here imports PySpark at import time; the
session helper says how to install it when it is missing.
"""

from mlflow_pairs.spark.session import (
    INSTALL_HINT,
    SparkJobError,
    SparkUnavailableError,
    check_master,
    require_pyspark,
    session_scope,
    spark_session,
)

__all__ = [
    "INSTALL_HINT",
    "SparkJobError",
    "SparkUnavailableError",
    "check_master",
    "require_pyspark",
    "session_scope",
    "spark_session",
]

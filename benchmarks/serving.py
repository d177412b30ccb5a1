"""Serving latency and throughput of the garch_gru model under ``mlflow models serve``.

Run on demand (not part of the test suite):

    python benchmarks/serving.py [--requests 300] [--naive-requests 40]

Trains a small model on 20 synthetic symbols (10 pairs), saves it, and serves it with
``mlflow models serve --env-manager local``. The baseline, measured in the same run, is a
naive pyfunc that refits a GARCH(1,1) with ``arch`` for every pair on every request; a
third pyfunc that does nothing shows what the scoring server itself costs. All get the
same 250-day, 20-symbol request (``dataframe_split``), first one at a time, then from
several concurrent clients (``--clients``); the server runs one worker throughout.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


NAIVE = "naive pyfunc (refits GARCH per request)"
OURS = "garch_gru flavor"
FLOOR = "floor: a pyfunc doing nothing, same signature"


def _prices(n_days: int = 1500) -> pd.DataFrame:
    from tests.model.simulate import mean_reverting_pairs

    return mean_reverting_pairs(11, n_days=n_days, n_pairs=10)


def _serve(model_uri: str, workdir: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = (workdir / f"serve-{port}.log").open("w")
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("mlflow")),
            "models",
            "serve",
            "-m",
            model_uri,
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(360):
        try:
            if requests.get(f"{url}/ping", timeout=1).status_code == 200:
                return process, url
        except requests.RequestException:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"server for {model_uri} did not start")


def _measure(url: str, body: bytes, count: int, clients: int = 1) -> dict[str, float]:
    """Latency percentiles and requests per second with ``clients`` concurrent senders
    (each sending ``count / clients`` requests back to back). The body is encoded once,
    so the client's JSON encoding is not measured."""
    from concurrent.futures import ThreadPoolExecutor

    headers = {"Content-Type": "application/json"}

    def send(n: int) -> list[float]:
        session = requests.Session()
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            answer = session.post(f"{url}/invocations", data=body, headers=headers, timeout=120)
            times.append(time.perf_counter() - t0)
            answer.raise_for_status()
        return times

    send(3)  # warm-up
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        parts = list(pool.map(send, [count // clients] * clients))
    wall = time.perf_counter() - start
    ms = np.array([t for part in parts for t in part]) * 1000
    return {
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "rps": len(ms) / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--naive-requests", type=int, default=40)
    parser.add_argument("--clients", type=int, default=4, help="concurrent senders")
    args = parser.parse_args()

    import mlflow

    from mlflow_pairs import flavor
    from mlflow_pairs.model import GarchGruModel, TrainingConfig

    workdir = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    prices = _prices()
    pairs = [(f"Y{i}", f"X{i}") for i in range(10)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = GarchGruModel("energy", pairs, [], training=TrainingConfig(epochs=3)).fit(prices)
    ours = workdir / "garch_gru"
    flavor.save_model(model, ours, input_example=flavor.example_request(model, prices))

    naive = workdir / "naive"
    hedges = {f"{y}/{x}": model.spread_parts_[f"{y}/{x}"].hedge_ratio for y, x in pairs}
    mlflow.pyfunc.save_model(
        naive,
        python_model=str(Path(__file__).with_name("_naive_model.py")),
        model_config={"hedges": hedges},
        pip_requirements=["mlflow", "arch"],
    )

    floor = workdir / "floor"
    mlflow.pyfunc.save_model(
        floor,
        python_model=str(Path(__file__).with_name("_floor_model.py")),
        signature=flavor.model_signature(model),
        pip_requirements=["mlflow"],
    )

    request = prices.iloc[-250:].reset_index(names="date")
    request["date"] = request["date"].dt.strftime("%Y-%m-%d")
    split = json.loads(request.to_json(orient="split"))
    split.pop("index", None)
    body = json.dumps({"dataframe_split": split}).encode()

    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_PAIRS_TORCH_THREADS": "1",
    }
    results = {}
    for name, uri, count in (
        (NAIVE, naive, args.naive_requests),
        (OURS, ours, args.requests),
        (FLOOR, floor, args.requests),
    ):
        process, url = _serve(str(uri), workdir, env)
        try:
            results[name] = _measure(url, body, count)
            results[f"{name} ({args.clients} clients)"] = _measure(
                url, body, count, clients=args.clients
            )
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(f"request: 20 symbols x 250 days, 10 pairs; {os.cpu_count()} CPUs; one server worker")
    for name, r in results.items():
        print(f"  {name:58s} p50 {r['p50']:7.1f} ms  p99 {r['p99']:7.1f} ms  {r['rps']:6.1f} req/s")
    for label, suffix in (("sequential", ""), (f"{args.clients} concurrent clients", "")):
        key = "" if label == "sequential" else f" ({args.clients} clients)"
        ratio = results[OURS + key]["rps"] / results[NAIVE + key]["rps"]
        cap = results[FLOOR + key]["rps"] / results[NAIVE + key]["rps"]
        print(
            f"  throughput vs the naive baseline, {label}: {ratio:.1f}x "
            f"(target >= 10x; a model doing nothing: {cap:.1f}x){suffix}"
        )
    print(f"  p50 target < 30 ms: {results[OURS]['p50']:.1f} ms")


if __name__ == "__main__":
    main()

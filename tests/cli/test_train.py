"""``mlflow-pairs train`` end to end on the embedded store."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from mlflow_pairs.config import load_settings
from mlflow_pairs.db import create_database
from mlflow_pairs.jobs import load_panel
from mlflow_pairs.tracking import MlflowConnection
from tests._tables import read_table
from tests.cli.test_tables import _artifact, _same, _same_screening, _tagged
from tests.conftest import pairs_cli, write_config

SMALL = {
    "backtest": {
        "start": "2017-01-01",
        "formation_days": 504,
        "trading_days": 252,
        "max_windows": 2,
    },
    "ml": {"epochs": 3, "hidden_size": 8},
}
NAME = "pairs_trading_gru_garch_technology"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


def _config(home: Path) -> Path:
    store = {
        "tracking_uri": f"sqlite:///{home / 'mlruns' / 'mlflow.db'}",
        "artifact_root": (home / "mlruns").as_uri(),
    }
    return write_config(home / "config.yaml", {**SMALL, "mlflow": store})


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The README's main job as a user runs it: `mlflow-pairs train`, no options, no
    configuration, in an empty folder (the embedded store under ./mlruns)."""
    home = tmp_path_factory.mktemp("train")
    first = pairs_cli("train", env=_env(), cwd=home, timeout=900)
    assert first.returncode == 0, first.stderr
    assert (home / "mlruns" / "mlflow.db").exists()
    config = write_config(
        home / "same-store.yaml",
        {
            "mlflow": {
                "tracking_uri": f"sqlite:///{home / 'mlruns' / 'mlflow.db'}",
                "artifact_root": (home / "mlruns").as_uri(),
            }
        },
    )
    connection = MlflowConnection(load_settings(config, environ={}))
    return {"home": home, "config": config, "output": first.stdout, "connection": connection}


PLANTED = "pairs_trading_gru_garch_custom"


def write_planted(path: Path, seed: int = 11) -> list[str]:
    """A synthetic universe (3 planted pairs among 12 random walks, 1500 days from 2014)
    as a wide CSV; returns its symbols."""
    from tests.synthetic import planted_universe

    prices = planted_universe(seed, n_days=1500, start="2014-01-02").prices
    prices.rename_axis("date").reset_index().to_csv(path, index=False)
    return list(prices.columns)


@pytest.fixture(scope="module")
def synthetic(trained: dict) -> dict:
    """`train --prices` with the default configuration on a synthetic universe with
    planted pairs (the sample's honest answer is "nothing passed"): windows that trade."""
    home = trained["home"]
    write_planted(home / "planted.csv")
    result = pairs_cli("train", "--prices", "planted.csv", env=_env(), cwd=home, timeout=900)
    assert result.returncode == 0, result.stderr
    connection = trained["connection"]
    version = connection.list_versions(PLANTED)[-1]
    return {**trained, "output": result.stdout, "version": version}


def test_main_job_on_the_sample_is_flat_and_registers_an_exploratory_model(
    trained: dict,
) -> None:
    """Honest defaults on the bundled sample: no pair survives BH at 5% in any window, so
    the backtest is flat, and the latest window's model, fitted on its best candidates,
    is registered as an exploratory challenger that is never promoted."""
    connection, output = trained["connection"], trained["output"]
    version = connection.list_versions(NAME)[0]
    run = connection.client.get_run(version.run_id)
    metrics = run.data.metrics
    assert metrics["tested_windows"] == 0
    assert metrics["flat_windows"] == metrics["windows"] == 12
    for variant in ("static_z", "garch", "garch_gru"):
        assert metrics[f"{variant}_sharpe"] == 0
        assert metrics[f"{variant}_trades"] == 0
    assert "flat in 12" in output
    assert "(exploratory)" in output
    # F1 is never shown without the constant "always reverts" predictor's beside it.
    f1_line = next(line for line in output.splitlines() if line.startswith("model ("))
    constant = metrics["model_f1_constant"]
    assert f"F1 {metrics['model_f1']:.3f} (constant {constant:.3f})" in f1_line
    assert run.data.tags["mlflow_pairs.evidence"] == "exploratory"
    assert "Walk-forward train of sector technology" in run.data.tags["mlflow.note.content"]
    experiment = connection.client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert version.tags["mlflow_pairs.exploratory"] == "true"
    assert version.tags["mlflow_pairs.promotion_decision"] == "not promoted"
    assert "exploratory model" in version.tags["mlflow_pairs.promotion_reasons"]
    assert connection.get_alias(NAME, "challenger").version == version.version
    assert connection.get_alias(NAME, "champion") is None
    refused = pairs_cli(
        "--config", str(trained["config"]), "promote", NAME, str(version.version),
        env=_env(), cwd=trained["home"],
    )  # fmt: skip
    assert refused.returncode == 2
    assert "is exploratory" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert connection.get_alias(NAME, "champion") is None
    # Servable all the same: the registered model answers in-process.
    import mlflow

    connection.activate()
    served = mlflow.pyfunc.load_model(f"models:/{NAME}@challenger")
    prices = load_panel(universe="sample-technology").prices
    answer = served.predict(prices.iloc[-120:].reset_index(names="date"))
    assert set(answer["signal"]) <= {-1, 0, 1}
    assert len(answer) >= 1


def test_run_has_params_metrics_tables_plots_and_model(synthetic: dict, tmp_path: Path) -> None:
    connection = synthetic["connection"]
    version = synthetic["version"]
    run = connection.client.get_run(version.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["config.backtest.formation_days"] == "756"
    # MLflow's UI lists params alphabetically: the strategy's settings are params, where
    # runs are stored and served is not (it is in config.yaml, with everything else).
    sections = {key.split(".")[1] for key in run.data.params if key.startswith("config.")}
    assert {"backtest", "data", "garch", "hedge", "ml", "screening"} <= sections
    assert not sections & {"mlflow", "server", "tables"}
    assert sorted(run.data.params)[0].startswith("config.backtest.")
    downloaded = connection.client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path))
    document = yaml.safe_load(Path(downloaded).read_text())
    assert document["backtest"]["formation_days"] == 756
    assert document["mlflow"]["tracking_uri"].startswith("sqlite:///")
    assert document["server"]["port"] == 5000
    assert run.data.params["universe"].endswith("planted.csv")
    metrics = run.data.metrics
    assert metrics["tested_windows"] >= 4
    for variant in ("static_z", "garch", "garch_gru"):
        for name in (
            "sharpe",
            "sortino",
            "calmar",
            "max_drawdown",
            "annual_return",
            "gross_sharpe",
            "trades",
            "turnover",
            "exposure",
            "win_rate",
            "sharpe_lower",
            "sharpe_upper",
            "psr",
            "dsr",
        ):
            assert f"{variant}_{name}" in metrics, f"{variant}_{name}"
        assert metrics[f"{variant}_sharpe_lower"] <= metrics[f"{variant}_sharpe"]
        assert metrics[f"{variant}_sharpe"] <= metrics[f"{variant}_sharpe_upper"]
    for baseline in ("static_z", "garch"):
        for name in ("diff", "lower", "upper", "pvalue"):
            assert f"garch_gru_vs_{baseline}_sharpe_{name}" in metrics
    assert {"model_f1", "model_auc", "model_zscore_auc", "windows", "dsr_trials"} <= set(metrics)
    assert {"model_oos_auc_lift", "model_oos_auc_lift_lower", "model_oos_gru_brier"} <= set(metrics)
    output = synthetic["output"]
    for text in ("95% interval", "PSR", "DSR", "garch_gru - static_z: Sharpe", "lift"):
        assert text in output, text
    assert len(connection.client.get_metric_history(run.info.run_id, "epoch_loss")) >= 1
    artifacts = {a.path for a in connection.client.list_artifacts(run.info.run_id, "backtest")}
    assert {
        "backtest/positions.csv",
        "backtest/daily_returns.csv",
        "backtest/ablation.csv",
        "backtest/screening.csv",
        "backtest/pair_performance.csv",
        "backtest/classification.csv",
    } <= artifacts
    plots = {a.path for a in connection.client.list_artifacts(run.info.run_id, "plots")}
    assert {
        "plots/equity_drawdown.png",
        "plots/spread_signals.png",
        "plots/gru_training.png",
        "plots/tear_sheet.png",
    } <= plots
    assert run.inputs.dataset_inputs
    challenger = connection.get_alias(PLANTED, "challenger")
    assert challenger.version == version.version
    assert challenger.tags["mlflow_pairs.promotion_decision"] in ("promoted", "not promoted")
    assert "constant predictor" in challenger.tags["mlflow_pairs.promotion_reasons"]
    assert "AUC lift over |z|" in challenger.tags["mlflow_pairs.promotion_reasons"]
    assert f"registered {PLANTED} version" in output


def test_traded_spread_is_the_tested_spread(synthetic: dict) -> None:
    """Every position trades the screening's hedge ratio of its window (to 1e-9), only in
    pairs that the screening selected, and every selected row has q <= 0.05."""
    connection = synthetic["connection"]
    run_id = synthetic["version"].run_id
    home = str(synthetic["home"])
    screening = pd.read_csv(
        connection.client.download_artifacts(run_id, "backtest/screening.csv", home),
        parse_dates=["formation_start", "formation_end"],
    )
    positions = pd.read_csv(
        connection.client.download_artifacts(run_id, "backtest/positions.csv", home),
        parse_dates=["date"],
    )
    selected = screening[screening["selected"]]
    assert len(selected) > 0
    assert (selected["qvalue"] <= 0.05).all()
    held = positions[positions["weight_y"] != 0].copy()
    assert len(held) > 100
    # The window a trading day belongs to: the latest formation that ended before it.
    ends = np.sort(screening["formation_end"].unique())
    held["formation_end"] = ends[np.searchsorted(ends, held["date"].to_numpy()) - 1]
    held["pair"] = held["y"] + "/" + held["x"]
    selected = selected.assign(pair=selected["y"] + "/" + selected["x"])
    merged = held.merge(
        selected[["formation_end", "pair", "hedge_ratio"]], on=["formation_end", "pair"],
        how="left", validate="many_to_one",
    )  # fmt: skip
    assert merged["hedge_ratio"].notna().all(), "a position in a pair that was not selected"
    implied = -merged["weight_x"] / merged["weight_y"]
    np.testing.assert_allclose(implied, merged["hedge_ratio"], rtol=1e-9, atol=0)


def test_pnl_recomputes_from_positions_and_prices(synthetic: dict) -> None:
    connection = synthetic["connection"]
    run_id = synthetic["version"].run_id
    home = str(synthetic["home"])
    positions = pd.read_csv(
        connection.client.download_artifacts(run_id, "backtest/positions.csv", home),
        parse_dates=["date"],
    )
    daily = pd.read_csv(
        connection.client.download_artifacts(run_id, "backtest/daily_returns.csv", home),
        parse_dates=["date"],
    )
    prices = pd.read_csv(Path(home) / "planted.csv", index_col="date", parse_dates=True)
    simple = prices.pct_change()
    merged = positions.merge(daily, on=["date", "pair"])
    assert (merged["weight_y"] != 0).sum() > 100
    r_y = np.array([simple.at[d, s] for d, s in zip(merged["date"], merged["y"], strict=True)])
    r_x = np.array([simple.at[d, s] for d, s in zip(merged["date"], merged["x"], strict=True)])
    recomputed = merged["weight_y"] * r_y + merged["weight_x"] * r_x
    np.testing.assert_allclose(recomputed, merged["gross"], atol=1e-12)
    np.testing.assert_allclose(
        merged["gross"] - merged["cost"] - merged["borrow"], merged["net"], atol=1e-15
    )


def test_rerun_creates_a_new_version_and_keeps_the_old(trained: dict) -> None:
    connection = trained["connection"]
    before = {v.version: v.run_id for v in connection.list_versions(NAME)}
    again = pairs_cli(
        "--config", str(trained["config"]), "train", env=_env(), cwd=trained["home"], timeout=600
    )
    assert again.returncode == 0, again.stderr
    after = {v.version: v.run_id for v in connection.list_versions(NAME)}
    assert len(after) == len(before) + 1
    assert all(after[v] == run for v, run in before.items())
    assert connection.get_alias(NAME, "challenger").version == max(after, key=int)


def test_failure_midway_marks_the_run_failed_and_keeps_what_was_logged(tmp_path: Path) -> None:
    index = pd.bdate_range("2015-01-01", periods=900)
    walk = np.exp(3 + np.cumsum(np.random.default_rng(0).normal(0, 0.01, 900)))
    # Two legs that are the same series: no pair can be tested, so no model can be made.
    pd.DataFrame({"date": index, "AAA": walk, "BBB": walk * 2}).to_csv(
        tmp_path / "p.csv", index=False
    )
    config = _config(tmp_path)
    result = pairs_cli(
        "--config",
        str(config),
        "train",
        "--prices",
        "p.csv",
        "--symbols",
        "AAA,BBB",
        "--start",
        "2015-01-01",
        env=_env(),
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 1
    assert "the latest formation window has no candidate pair to fit" in result.stderr
    assert "Traceback" not in result.stderr
    connection = MlflowConnection(load_settings(config, environ={}))
    experiment = connection.get_or_create_experiment()
    runs = connection.client.search_runs([experiment.experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert runs[0].data.params["symbols"] == "AAA,BBB"
    assert "windows" in runs[0].data.metrics


def test_models_list_promote_and_backtest_commands(synthetic: dict) -> None:
    config, home = str(synthetic["config"]), synthetic["home"]
    connection = synthetic["connection"]
    listed = pairs_cli("--config", config, "models", "list", env=_env(), cwd=home)
    assert listed.returncode == 0, listed.stderr
    assert PLANTED in listed.stdout
    assert NAME in listed.stdout
    assert "challenger" in listed.stdout

    first = connection.list_versions(PLANTED)[-1].version
    promoted = pairs_cli("--config", config, "promote", PLANTED, str(first), env=_env(), cwd=home)
    assert promoted.returncode == 0, promoted.stderr
    assert connection.get_alias(PLANTED, "champion").version == first
    tags = connection.client.get_model_version(PLANTED, first).tags
    assert tags["mlflow_pairs.promotion_decision"].startswith("promoted")
    relisted = pairs_cli("--config", config, "models", "list", env=_env(), cwd=home)
    block = relisted.stdout.split(PLANTED, 1)[1].split("\npairs_trading", 1)[0]
    line = next(row for row in block.splitlines() if f"v{first} " in row)
    assert "not promoted" not in line
    missing = pairs_cli("--config", config, "promote", PLANTED, "999", env=_env(), cwd=home)
    assert missing.returncode == 2
    assert "has no version 999" in missing.stderr

    versions_before = len(connection.list_versions(PLANTED))
    from mlflow_pairs import flavor

    connection.activate()
    trained_to = pd.Timestamp(flavor.load_model(f"models:/{PLANTED}@champion").data_end_)

    def backtest(*extra: str) -> subprocess.CompletedProcess[str]:
        return pairs_cli(
            "--config", config, "backtest", "--model", f"models:/{PLANTED}@champion",
            "--prices", "planted.csv", *extra, env=_env(), cwd=home, timeout=300,
        )  # fmt: skip

    # No dates: out of sample, from the day after the model's training data ends.
    evaluated = backtest()
    assert evaluated.returncode == 0, evaluated.stderr
    run = connection.client.get_run(evaluated.stdout.rsplit("run ", 1)[1].strip())
    assert run.data.tags["mlflow_pairs.job"] == "backtest"
    assert run.data.tags["mlflow_pairs.in_sample"] == "false"
    assert run.data.params["start"] == f"{trained_to + pd.Timedelta(days=1):%Y-%m-%d}"
    assert "sharpe" in run.data.metrics
    plots = {a.path for a in connection.client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/equity_drawdown.png", "plots/spread_signals.png", "plots/tear_sheet.png"} <= (
        plots
    )
    # A start inside the training data is refused without the flag, tagged with it.
    inside = f"{trained_to - pd.Timedelta(days=200):%Y-%m-%d}"
    refused = backtest("--start", inside)
    assert refused.returncode == 2
    assert "inside the model's training data" in refused.stderr
    allowed = backtest("--start", inside, "--allow-in-sample")
    assert allowed.returncode == 0, allowed.stderr
    run = connection.client.get_run(allowed.stdout.rsplit("run ", 1)[1].strip())
    assert run.data.tags["mlflow_pairs.in_sample"] == "true"
    assert len(connection.list_versions(PLANTED)) == versions_before  # nothing refitted or added


def test_promotion_gates_through_the_registry(trained: dict) -> None:
    import mlflow

    from mlflow_pairs import flavor
    from mlflow_pairs.tracking.train_run import register_and_promote

    connection = trained["connection"]
    connection.activate()
    model = flavor.load_model(f"models:/{NAME}/1")
    panel = load_panel(universe="sample-technology", start="2014-01-01")
    good = {"f1": 0.9, "sharpe": 2.0, "max_drawdown": 0.05, "auc_lift_lower": 0.01}
    worse = {"f1": 0.91, "sharpe": 1.5, "max_drawdown": 0.30, "auc_lift_lower": 0.01}
    with connection.start_run(sector="technology"):
        promoted, decision = register_and_promote(connection, model, panel, "technology", good)
    assert decision.promote
    assert connection.get_alias(NAME, "champion").version == promoted.version
    with connection.start_run(sector="technology"):
        rejected, decision = register_and_promote(connection, model, panel, "technology", worse)
    assert not decision.promote
    assert connection.get_alias(NAME, "champion").version == promoted.version
    assert connection.get_alias(NAME, "challenger").version == rejected.version
    tags = connection.client.get_model_version(NAME, rejected.version).tags
    assert tags["mlflow_pairs.promotion_decision"] == "not promoted"
    assert "failed: Sharpe 1.500 vs champion 2.000 + 0.1" in tags["mlflow_pairs.promotion_reasons"]
    with connection.start_run(sector="technology"):
        _, decision = register_and_promote(
            connection, model, panel, "technology", {**good, "sharpe": 9.0}, "exploratory"
        )
    assert not decision.promote
    assert connection.get_alias(NAME, "champion").version == promoted.version
    assert mlflow.get_tracking_uri() == connection.tracking_uri


# -- the project's own tables -------------------------------------------------------


def _check_train_rows(
    tracking: str, run_id: str, version: str, home: Path, name: str = NAME
) -> int:
    """Checks one train run's rows against its artifacts; returns its performance rows."""
    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    screening = _artifact(client, run_id, "backtest/screening.csv", home)
    stored = read_table(tracking, "screening_results", where={"run_id": run_id})
    assert len(stored) == len(screening) > 0
    stored["formation_start"] = stored["window_start"].astype(str)
    stored["formation_end"] = stored["window_end"].astype(str)
    keys = ["y", "x", "formation_start", "formation_end"]
    merged = stored.merge(_tagged(screening, keys), on=keys, validate="one_to_one")
    assert len(merged) == len(screening)
    _same_screening(merged)

    pairs = _artifact(client, run_id, "backtest/pair_performance.csv", home)
    pairs = pairs[pairs["variant"] == "garch_gru"]
    performance = read_table(tracking, "model_performance", where={"run_id": run_id})
    assert len(performance) == len(pairs)
    if performance.empty:
        return 0
    assert set(performance["model_version"]) == {int(version)}
    assert set(performance["model_name"]) == {name}
    performance["window_start"] = performance["period_start"].astype(str)
    performance["window_end"] = performance["period_end"].astype(str)
    keys = ["pair", "window_start", "window_end"]
    both = performance.merge(_tagged(pairs, keys), on=keys, validate="one_to_one")
    assert len(both) == len(pairs)
    for column in ("f1", "accuracy", "auc", "sharpe", "max_drawdown", "trades"):
        _same(both[column], both[f"logged_{column}"])
    return len(performance)


def test_train_rows_carry_the_run_id_and_the_logged_numbers(synthetic: dict) -> None:
    """The README's main job (flat: screening rows only) and the synthetic run (pair
    performance too) on the embedded SQLite store."""
    from mlflow_pairs.config import tables_uri

    connection = synthetic["connection"]
    uri = tables_uri(connection.settings)
    assert uri == connection.tracking_uri
    client = connection.client
    written = {}
    for name in (NAME, PLANTED):
        trains = [
            v
            for v in connection.list_versions(name)
            if client.get_run(v.run_id).data.tags.get("mlflow_pairs.job") == "train"
        ]
        assert trains
        written[name] = sum(
            _check_train_rows(uri, v.run_id, v.version, synthetic["home"], name) for v in trains
        )
    assert written[NAME] == 0  # flat: no pair traded
    assert written[PLANTED] > 0


def test_report_pairs_agrees_with_the_runs_artifacts(synthetic: dict) -> None:
    """`report pairs` recomputed with pandas from what every train run logged."""
    trained = synthetic
    connection = trained["connection"]
    client = connection.client
    experiment = client.get_experiment_by_name("pairs_trading")
    runs = client.search_runs(
        [experiment.experiment_id], "tags.mlflow_pairs.job = 'train'", max_results=100
    )
    screening = pd.concat(
        [
            _artifact(client, r.info.run_id, "backtest/screening.csv", trained["home"]).assign(
                run_id=r.info.run_id
            )
            for r in runs
        ]
    )
    legs = zip(screening["y"], screening["x"], strict=True)
    screening["key"] = ["/".join(sorted(pair)) for pair in legs]
    chosen = screening[screening["selected"]]
    assert not chosen.empty
    performance = pd.concat(
        [
            _artifact(client, r.info.run_id, "backtest/pair_performance.csv", trained["home"])
            .query("variant == 'garch_gru'")
            .assign(run_id=r.info.run_id)
            for r in runs
        ]
    )
    performance["key"] = ["/".join(sorted(p.split("/"))) for p in performance["pair"]]

    result = pairs_cli(
        "--config", str(trained["config"]), "report", "pairs", "--limit", "100",
        "--format", "json", env=_env(), cwd=trained["home"],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = pd.read_json(io.StringIO(result.stdout))
    assert set(report["pair"]) == set(chosen["key"])
    for row in report.itertuples():
        tested = screening[screening["key"] == row.pair]
        assert row.times_selected == int(tested["selected"].sum())
        assert row.times_tested == len(tested)
        assert row.runs == tested["run_id"].nunique()
        assert row.best_pvalue == pytest.approx(tested["pair_pvalue"].min(), rel=1e-12)
        traded = performance[performance["key"] == row.pair]
        assert row.model_versions == traded["run_id"].nunique()
        if len(traded):
            assert row.sharpe == pytest.approx(traded["sharpe"].mean(), rel=1e-9)
            assert row.trades == traded["trades"].sum()
    by_count = report["times_selected"].tolist()
    assert by_count == sorted(by_count, reverse=True)
    table = pairs_cli(
        "--config", str(trained["config"]), "report", "pairs", "--sector", "energy",
        env=_env(), cwd=trained["home"],
    )  # fmt: skip
    assert "No pair has been selected by screening in sector energy" in table.stdout


@pytest.mark.postgres
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_two_trains_at_once_keep_all_rows(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Two processes train into one fresh store at the same time: both create (or find)
    the schemas, register distinct versions and keep all their rows."""
    if kind == "sqlite":
        tracking = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    else:
        tracking = (
            f"postgresql://postgres@127.0.0.1:5432/{request.getfixturevalue('database_name')}"
        )
    create_database(tracking)
    store = {"tracking_uri": tracking, "artifact_root": (tmp_path / "artifacts").as_uri()}
    config = write_config(tmp_path / "config.yaml", {**SMALL, "mlflow": store})
    write_planted(tmp_path / "planted.csv")
    exe = str(Path(sys.executable).with_name("mlflow-pairs"))
    processes = [
        subprocess.Popen(
            [
                exe,
                "--config",
                str(config),
                "train",
                "--prices",
                "planted.csv",
                "--start",
                "2014-01-01",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            cwd=tmp_path,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=900) for p in processes]
    for process, (_out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
        assert "Warning" not in err
    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    versions = client.search_model_versions(f"name = '{PLANTED}'")
    assert sorted(int(v.version) for v in versions) == [1, 2]
    assert len({v.run_id for v in versions}) == 2
    for version in versions:
        assert _check_train_rows(tracking, version.run_id, version.version, tmp_path, PLANTED)
    assert set(read_table(tracking, "screening_results")["run_id"]) == {v.run_id for v in versions}


def test_dsr_trials_count_the_configurations_tried(tmp_path: Path) -> None:
    """The deflated Sharpe ratio's trials are the variants (3) times the distinct strategy
    configurations the experiment's train runs have tried: a rerun of the same settings
    adds none, a changed entry band one."""
    config = _config(tmp_path)
    store = yaml.safe_load(config.read_text())["mlflow"]
    changed = write_config(
        tmp_path / "changed.yaml",
        {**SMALL, "backtest": {**SMALL["backtest"], "entry_z": 2.5}, "mlflow": store},
    )
    for path in (config, config, changed):
        result = pairs_cli("--config", str(path), "train", env=_env(), cwd=tmp_path, timeout=600)
        assert result.returncode == 0, result.stderr
    connection = MlflowConnection(load_settings(config, environ={}))
    experiment = connection.get_or_create_experiment()
    runs = connection.client.search_runs([experiment.experiment_id], order_by=["start_time ASC"])
    assert [r.data.metrics["dsr_trials"] for r in runs] == [3.0, 3.0, 6.0]
    hashes = [r.data.params["strategy_hash"] for r in runs]
    assert hashes[0] == hashes[1] != hashes[2]

"""``models:/<name>@champion`` loads and predicts the same after a chain of copies
(issue 14, item 4): MLflow -> dir: -> MLflow, and MLflow -> MLflow.  Two versions
predicting differently, so a version pointing at the other's model would show; the
stages (``transition_model_version_stage``) come along too."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from mlflow import MlflowClient

from corpus import invoke, set_remotes

MODEL = "churn ✓"
X = [[0.0], [1.0], [2.0], [3.0]]


def _source(uri: str) -> None:
    """Two runs, each a real sklearn model logged by ``mlflow.sklearn.log_model`` and
    registered; v1 (the champion, Production) predicts the labels, v2 (Staging) their flip."""
    import mlflow
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("champion")
    client = MlflowClient(uri)
    for version, labels, stage in (("1", [0, 0, 1, 1], "Production"), ("2", [1, 1, 0, 0], "Staging")):
        with mlflow.start_run(run_name=f"fit v{version}"):
            clf = LogisticRegression().fit(X, labels)
            info = mlflow.sklearn.log_model(clf, name="model", input_example=[[0.5]])
        mlflow.register_model(info.model_uri, MODEL)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            client.transition_model_version_stage(MODEL, version, stage)
    client.set_registered_model_alias(MODEL, "champion", "1")


def _predictions(uri: str) -> list[int]:
    import mlflow
    import mlflow.pyfunc

    mlflow.set_tracking_uri(uri)
    try:
        return [int(p) for p in mlflow.pyfunc.load_model(f"models:/{MODEL}@champion").predict(X)]
    finally:
        mlflow.set_tracking_uri("")


def _stages(uri: str) -> dict[str, str]:
    return {str(v.version): v.current_stage for v in MlflowClient(uri).search_model_versions(f"name = '{MODEL}'")}


@pytest.mark.parametrize("through_archive", [True, False], ids=["mlflow-dir-mlflow", "mlflow-mlflow"])
def test_champion_loads_and_predicts_the_same_after_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           through_archive: bool) -> None:
    src, dst = f"sqlite:///{tmp_path / 'src.db'}", f"sqlite:///{tmp_path / 'dst.db'}"
    _source(src)
    expected = _predictions(src)
    assert expected == [0, 0, 1, 1]
    set_remotes(monkeypatch, src=src, dst=dst)
    hops = [("src", f"dir:{tmp_path / 'archive'}"), (f"dir:{tmp_path / 'archive'}", "dst")] if through_archive \
        else [("src", "dst")]
    for a, b in hops:
        out = invoke("copy", a, b, "--json")
        assert out.exit_code == 0, out.stdout + out.stderr
        checked = invoke("check", a, b)
        assert checked.exit_code == 0, checked.stdout

    assert _predictions(dst) == expected
    assert _stages(dst) == {"1": "Production", "2": "Staging"}
    assert MlflowClient(dst).get_registered_model(MODEL).aliases == {"champion": 1}

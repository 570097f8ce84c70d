"""trackbridge quickstart: a small hyper-parameter sweep, logged once, sent wherever config says.

    python examples/quickstart.py            # then: trackbridge ls mlflow

Trains a linear classifier (scikit-learn's SGDClassifier) on the wine dataset that
ships with scikit-learn (no download) for a few learning-rate/regularisation
settings.  Each setting is a child run of one "sweep" run, with its params,
per-epoch train/validation metrics, a confusion-matrix PNG and the model.  The
best model is then registered with the alias "champion".

Where it goes is configuration, not code: by default the embedded MLflow store
``./mlflow.db``; set ``TRACKBRIDGE_BACKEND`` (or ``.env`` / ``trackbridge.toml``)
to log elsewhere, or to several places at once (``mlflow,dir``).
"""
from __future__ import annotations

import pickle
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.datasets import load_wine  # noqa: E402
from sklearn.linear_model import SGDClassifier  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay, accuracy_score, log_loss  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import trackbridge as tb  # noqa: E402

EPOCHS = 30
SETTINGS = [
    {"eta0": 0.001, "alpha": 1e-4},
    {"eta0": 0.01, "alpha": 1e-4},
    {"eta0": 0.1, "alpha": 1e-3},
    {"eta0": 0.01, "alpha": 1e-2},
]
MODEL_NAME = "quickstart-wine"


def load_data(seed: int = 0) -> tuple[np.ndarray, ...]:
    data = load_wine()
    x_train, x_val, y_train, y_val = train_test_split(
        data.data, data.target, test_size=0.3, random_state=seed, stratify=data.target
    )
    scaler = StandardScaler().fit(x_train)
    return scaler.transform(x_train), scaler.transform(x_val), y_train, y_val, data.target_names


def save_model(model: SGDClassifier, folder: Path) -> Path:
    """An MLflow model folder when mlflow is installed (loadable with mlflow.sklearn), else a pickle."""
    try:
        import mlflow.sklearn
        from mlflow.models import infer_signature
    except ImportError:
        folder.mkdir(parents=True)
        (folder / "model.pkl").write_bytes(pickle.dumps(model))
        return folder
    sample = np.zeros((1, model.n_features_in_))
    # explicit requirements: inferring them costs MLflow a subprocess (~4 s) per model
    mlflow.sklearn.save_model(
        model, str(folder), signature=infer_signature(sample, model.predict(sample)),
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
    )
    return folder


def confusion_png(model: SGDClassifier, x: np.ndarray, y: np.ndarray, labels: list[str], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(4, 4))
    ConfusionMatrixDisplay.from_estimator(model, x, y, display_labels=labels, ax=ax, colorbar=False)
    ax.set_title("validation")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def train_one(run: tb.Run, setting: dict, data: tuple, workdir: Path) -> float:
    """Train one setting epoch by epoch, logging as it goes; return the final validation accuracy."""
    x_train, x_val, y_train, y_val, names = data
    classes = np.unique(y_train)
    model = SGDClassifier(loss="log_loss", learning_rate="constant", random_state=0, **setting)
    rng = np.random.default_rng(0)
    for epoch in range(EPOCHS):
        order = rng.permutation(len(y_train))
        model.partial_fit(x_train[order], y_train[order], classes=classes)
        run.log_metrics({
            "train/accuracy": accuracy_score(y_train, model.predict(x_train)),
            "val/accuracy": accuracy_score(y_val, model.predict(x_val)),
            "val/log_loss": log_loss(y_val, model.predict_proba(x_val), labels=classes),
        }, step=epoch)
    val_accuracy = accuracy_score(y_val, model.predict(x_val))
    run.log_artifact(confusion_png(model, x_val, y_val, list(names), workdir / "confusion_matrix.png"))
    run.log_model(save_model(model, workdir / "model"), name="model")
    return val_accuracy


def main() -> None:
    started = time.perf_counter()
    data = load_data()
    results: list[tuple[float, dict, tb.Run]] = []
    with tb.start_run(project="quickstart", name="sweep", config={"epochs": EPOCHS, "dataset": "wine"}) as sweep:
        for i, setting in enumerate(SETTINGS):
            config = {"model": {"type": "SGDClassifier", "loss": "log_loss", **setting}, "epochs": EPOCHS}
            with tb.start_run(name=f"trial-{i}", config=config, tags={"sweep": "quickstart"}) as run:
                with tempfile.TemporaryDirectory() as tmp:  # logged files are copied: safe to delete
                    accuracy = train_one(run, setting, data, Path(tmp))
                run.set_tags({"val_accuracy": f"{accuracy:.3f}"})
            results.append((accuracy, setting, run))
        best_accuracy, best_setting, best_run = max(results, key=lambda item: item[0])
        sweep.log_metrics({"best/val_accuracy": best_accuracy})
        sweep.set_tags({"best_trial": best_run.name})
    best_run.register_model(
        MODEL_NAME, aliases=["champion"],
        description=f"SGDClassifier on wine, val accuracy {best_accuracy:.3f}",
        tags={"eta0": str(best_setting["eta0"]), "alpha": str(best_setting["alpha"])},
    )
    best_run.flush()

    print(f"{'trial':<10}{'eta0':>8}{'alpha':>8}{'val acc':>10}")
    for accuracy, setting, run in results:
        mark = "  <- champion" if run is best_run else ""
        print(f"{run.name:<10}{setting['eta0']:>8}{setting['alpha']:>8}{accuracy:>10.3f}{mark}")
    print(f"\nlogged {len(results)} trials under run 'sweep' of project 'quickstart' to "
          f"{', '.join(best_run.remote_ids)} in {time.perf_counter() - started:.1f} s")
    print(f"registered model {MODEL_NAME!r}, alias 'champion' -> {best_run.name}")
    print("see them with: trackbridge ls mlflow   (or: mlflow ui --backend-store-uri sqlite:///mlflow.db)")


if __name__ == "__main__":
    main()

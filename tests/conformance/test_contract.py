"""Every backend declares itself as data: info, features, limits (no connection needed)."""
from __future__ import annotations

import subprocess
import sys

from cases import Case

from trackbridge.backends import backend_class, infos
import pytest

from trackbridge.backends.base import Backend, Features, Limits, ReadOnlyBackend
from trackbridge.errors import ReadOnlyBackendError


def test_backend_declares_info_and_features_without_connecting(case: Case, backend: Backend) -> None:
    cls = type(backend)
    assert isinstance(cls.features, Features)
    assert cls.info.name == backend.name == cls.name
    assert infos()[backend.name].target.endswith(":" + cls.__name__)
    assert backend_class(backend.name).features == cls.features


def test_writer_declares_its_limits_and_platform(backend: Backend) -> None:
    if backend.info.read_only:  # declared once: the info, and the class that opens no writer
        assert isinstance(backend, ReadOnlyBackend)
        with pytest.raises(ReadOnlyBackendError, match=f"^{backend.name}: is a read-only source"):
            backend.writer()
        assert backend.reader().platform == backend.name
        return
    writer = backend.writer()
    assert isinstance(writer.limits, Limits)
    assert writer.limits.max_metrics_per_batch >= 1
    assert writer.platform == backend.name
    assert backend.reader().platform == backend.name


def test_features_can_be_switched_off_one_by_one(backend: Backend) -> None:
    off = backend.features.disable("nested_runs", "registry")
    assert {"nested_runs", "registry"} <= off.lacks()
    assert backend.features.lacks() <= off.lacks()


def test_import_trackbridge_and_the_backend_loads_no_vendor_sdk(backend: Backend) -> None:
    module = type(backend).__module__
    code = ("import sys, trackbridge, importlib; importlib.import_module(%r); "
            "print(' '.join(m for m in ('mlflow', 'wandb', 'comet_ml', 'azure.ai.ml', 'azureml', 'pyarrow', "
            "'tensorboard', 'tensorboardX', 'trackio') "
            "if m in sys.modules))" % module)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_limits_are_known_without_opening_a_writer(case: Case, backend: Backend) -> None:
    """``plan`` and ``check`` open no writer: the backend says its writer's limits itself."""
    if backend.info.read_only:
        pytest.skip(f"{case.id} is read-only (BackendInfo): it has no writer")
    opened: list[bool] = []
    real = type(backend).writer
    try:
        type(backend).writer = lambda self: opened.append(True) or real(self)  # type: ignore[method-assign]
        limits = backend.limits()
    finally:
        type(backend).writer = real  # type: ignore[method-assign]
    assert not opened
    assert limits == backend.writer().limits

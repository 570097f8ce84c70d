"""The protobuf classes of event files, from whichever of tensorboard or tensorboardX is
installed (both ship the same messages; tensorboardX is the small one, pure Python).
Imported on first read, so listing backends never loads either."""
from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

from trackbridge.errors import MissingDependencyError


class Protos(NamedTuple):
    event: Any
    hparams_plugin_data: Any


@lru_cache(maxsize=1)
def protos() -> Protos:
    """``Event`` and ``HParamsPluginData`` message classes."""
    try:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
    except ImportError:
        try:
            from tensorboardX.proto.event_pb2 import Event
            from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData
        except ImportError as exc:
            raise MissingDependencyError(
                "tensorboard: reading event files needs the TensorBoard protobuf classes "
                f"({exc.name or exc} is not installed). Install them with: pip install 'trackbridge[tensorboard]'"
            ) from exc
    return Protos(Event, HParamsPluginData)

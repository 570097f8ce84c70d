"""What one ``Summary.Value`` of an event file is in the canonical model: a scalar point,
media points (histogram, image, audio, text), hparams, or something declared unread.

TensorBoard writers put a tag's plugin name in the metadata of its *first* value only
(TensorFlow does; tensorboardX repeats it), so the plugin of each tag is remembered per
run (:class:`Plugins`), as TensorBoard itself does.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

#: TensorFlow's ``DataType`` numbers of numeric tensors -> (``TensorProto`` field, struct code).
_NUMERIC = {1: ("float_val", "f"), 2: ("double_val", "d"), 3: ("int_val", "i"), 9: ("int64_val", "q"),
            19: ("half_val", "e"), 10: ("bool_val", "?"), 4: ("int_val", "B"), 5: ("int_val", "h"),
            6: ("int_val", "b"), 17: ("int_val", "H")}
_STRING = 7
#: plugins whose tensors are scalars (``""``: a TF1 numeric summary without metadata).
SCALAR_PLUGINS = ("scalars", "")
#: the hparams plugin's tags (session start: the params; session end: the status).
HPARAMS_PLUGIN = "hparams"
SESSION_START = "_hparams_/session_start_info"
SESSION_END = "_hparams_/session_end_info"


class Plugins(dict):
    """tag -> plugin name, as first seen in a run."""

    def of(self, value: Any) -> str:
        name = value.metadata.plugin_data.plugin_name
        if name:
            self.setdefault(value.tag, name)
            return name
        return self.get(value.tag, "")


def numbers(tensor: Any) -> list[float] | None:
    """The values of a numeric tensor, flattened, or ``None`` for another dtype."""
    spec = _NUMERIC.get(tensor.dtype)
    if spec is None:
        return None
    name, code = spec
    if tensor.tensor_content:
        content = tensor.tensor_content
        count = len(content) // struct.calcsize(code)
        return [float(v) for v in struct.unpack(f"<{count}{code}", content)]
    if tensor.dtype == 19:  # half_val holds the 16 bits of each value in an int
        return [struct.unpack("<e", struct.pack("<H", v))[0] for v in tensor.half_val]
    return [float(v) for v in getattr(tensor, name)]


def shape(tensor: Any) -> list[int]:
    return [d.size for d in tensor.tensor_shape.dim]


def scalar(value: Any, plugin: str) -> float | None:
    """The scalar of ``value`` (``simple_value``, float32, or a one-number tensor of the
    scalars plugin, kept at its own precision), or ``None`` when it is not a scalar."""
    which = value.WhichOneof("value")
    if which == "simple_value":
        return float(value.simple_value)
    if which == "tensor" and plugin in SCALAR_PLUGINS:
        got = numbers(value.tensor)
        if got is not None and len(got) == 1:
            return got[0]
    return None


@dataclass(frozen=True)
class Media:
    """One rich value: its kind, its data (histograms, text) or its bytes (images, audio)."""

    kind: str
    data: Any = None
    payload: bytes | None = None
    extension: str = ""
    meta: dict[str, Any] | None = None


def _image_format(payload: bytes) -> str:
    if payload.startswith(b"\x89PNG"):
        return "png"
    if payload.startswith(b"\xff\xd8"):
        return "jpeg"
    if payload.startswith(b"GIF8"):
        return "gif"
    return "bin"


def _count(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def media(value: Any, plugin: str) -> list[Media] | None:
    """The media of ``value`` (several for a tensor of several images), or ``None`` when it
    holds none.  Payloads follow ``docs/fidelity.md``: a histogram is ``{"bins": edges,
    "values": counts}`` (TensorBoard keeps right edges only: the first bucket's left edge is
    its own right edge, an empty bucket, as tensorboardX writes it), the proto's statistics
    in ``meta``; an image is a file with ``format``, ``width``, ``height``."""
    which = value.WhichOneof("value")
    if which == "histo":
        h = value.histo
        limits = list(h.bucket_limit)
        bins = ([limits[0]] + limits) if limits else []
        return [Media("histogram", {"bins": bins, "values": [_count(c) for c in h.bucket]},
                      meta={"min": h.min, "max": h.max, "num": h.num, "sum": h.sum, "sum_squares": h.sum_squares})]
    if which == "image":
        image = value.image
        fmt = _image_format(image.encoded_image_string)
        return [Media("image", payload=image.encoded_image_string, extension=fmt,
                      meta={"format": fmt, "width": image.width, "height": image.height,
                            "colorspace": image.colorspace})]
    if which == "audio":
        audio = value.audio
        return [Media("audio", payload=audio.encoded_audio_string, extension="wav",
                      meta={"format": "wav", "sample_rate": audio.sample_rate, "num_channels": audio.num_channels,
                            "length_frames": audio.length_frames, "content_type": audio.content_type})]
    if which != "tensor":
        return None
    tensor = value.tensor
    if plugin == "histograms":  # TF2: a [k, 3] tensor of (left edge, right edge, count)
        flat = numbers(tensor)
        if flat is None or len(flat) % 3:
            return None
        rows = [flat[i:i + 3] for i in range(0, len(flat), 3)]
        bins = ([rows[0][0]] + [r[1] for r in rows]) if rows else []
        return [Media("histogram", {"bins": bins, "values": [_count(r[2]) for r in rows]})]
    if plugin == "images" and tensor.dtype == _STRING:  # TF2: [width, height, image, image...]
        strings = list(tensor.string_val)
        if len(strings) < 3:
            return None
        width, height = (int(s) for s in strings[:2])
        return [Media("image", payload=blob, extension=_image_format(blob),
                      meta={"format": _image_format(blob), "width": width, "height": height})
                for blob in strings[2:]]
    if plugin == "text" and tensor.dtype == _STRING:
        texts = [s.decode("utf-8", errors="replace") for s in tensor.string_val]
        dims = shape(tensor)
        if len(texts) == 1:
            return [Media("text", texts[0])]
        return [Media("text", texts, meta={"shape": dims})]
    return None


def hparams(value: Any, plugin_data_class: Any) -> tuple[dict[str, Any], int | None]:
    """The params of a session start (``(params, None)``), or the status of a session end
    (``({}, status)``: 1 success, 2 failure, 3 running, 0 unknown)."""
    data = plugin_data_class.FromString(value.metadata.plugin_data.content)
    if value.tag == SESSION_START:
        out: dict[str, Any] = {}
        for name, param in data.session_start_info.hparams.items():
            kind = param.WhichOneof("kind")
            out[name] = None if kind in (None, "null_value") else getattr(param, kind)
        return out, None
    if value.tag == SESSION_END:
        return {}, int(data.session_end_info.status)
    return {}, None

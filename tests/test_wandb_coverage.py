"""The W&B coverage table classifies every record kind, request kind, history value
``_type`` and record field of the installed wandb (issue 14: a new wandb must not add
something that copies lose silently)."""
from __future__ import annotations

from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb
from wandb.sdk.data_types.base_types.wb_value import WBValue

from trackbridge.backends.wandb import media
from trackbridge.backends.wandb.coverage import COVERAGE, counts

#: record -> the table prefix its fields are listed under (``_info``/``_control`` are the
#: SDK's routing of a record, never data).
_FIELDS = {"metric": pb.MetricRecord, "metric.options": pb.MetricOptions, "artifact": pb.ArtifactRecord,
           "run": pb.RunRecord}


def _forms_in_sdk_source() -> set[str]:
    """The ``_type``\\ s the data types write in history beside their ``_log_type`` (lists,
    ``table-file``) that the installed wandb's source still names."""
    import wandb.sdk.data_types as types

    text = "".join(p.read_text(encoding="utf-8") for p in Path(types.__file__).parent.rglob("*.py"))
    return {t for t in [*media.LIST_KINDS, *media.SINGLE_KINDS] if f'"{t}"' in text}


def _installed() -> set[str]:
    found = {f"record:{f.name}" for f in pb.Record.DESCRIPTOR.oneofs_by_name["record_type"].fields}
    found |= {f"request:{f.name}" for f in pb.Request.DESCRIPTOR.oneofs_by_name["request_type"].fields}
    found |= {f"history:{t}" for t in WBValue.type_mapping()}  # every class's _log_type
    found |= {f"history:{t}" for t in _forms_in_sdk_source()}
    for prefix, message in _FIELDS.items():
        found |= {f"field:{prefix}.{f.name}" for f in message.DESCRIPTOR.fields
                  if not f.name.startswith("_") and not (prefix == "metric" and f.name == "options")}
    return found


def test_every_installed_kind_and_field_is_classified() -> None:
    missing = sorted(_installed() - COVERAGE.keys())
    assert not missing, f"classify these in backends/wandb/coverage.py: {missing}"


def test_every_row_says_where_it_goes() -> None:
    odd = [k for k, v in COVERAGE.items() if not v.startswith(("-> ", "not carried: "))]
    assert not odd, odd
    installed = _installed()
    stale = sorted(k for k in COVERAGE if not k.startswith("field:media.") and k not in installed)
    assert not stale, f"not in the installed wandb: {stale}"
    mapped, dropped = counts()
    assert mapped and dropped and mapped + dropped == len(COVERAGE)


def test_media_kinds_written_are_the_mapped_types() -> None:
    """Every ``_type`` the reader maps to a kind is classified as mapped, and the writer
    writes each kind it declares native."""
    for t in [*media.SINGLE_KINDS, *media.LIST_KINDS]:
        assert COVERAGE[f"history:{t}"].startswith("-> media kind"), t
    assert media.NATIVE_KINDS == set(media.SINGLE_KINDS.values())
    assert {f"history:{t}" for t in [*media.SINGLE_KINDS, *media.LIST_KINDS]} <= _installed()

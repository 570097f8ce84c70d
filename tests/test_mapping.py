"""Names and values fitted to a destination's limits, with every change recorded."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from trackbridge.backends.base import Limits
from trackbridge.errors import InvalidKeyError, InvalidValueError
from trackbridge.mapping import (
    MAPPING_TAG,
    KeyMapper,
    MappingRecord,
    check_metric_value,
    fit_value,
    flatten,
    param_to_str,
)

MLFLOW_LIKE = Limits(key_pattern=r"[/\w.\- :]*", max_key_length=250)


def test_flatten_nested_dicts_keeps_lists_as_leaves() -> None:
    assert flatten({"opt": {"lr": 0.1, "betas": [0.9, 0.99]}, "x": 1}) == {
        "opt.lr": 0.1, "opt.betas": [0.9, 0.99], "x": 1,
    }
    assert flatten({"a": {"b": {"c": 1}}}, sep="|") == {"a|b|c": 1}


def test_param_to_str_matches_mlflow_conventions() -> None:
    assert param_to_str("a", 0.1) == "0.1"
    assert param_to_str("a", True) == "True"
    assert param_to_str("a", [1, 2]) == "[1, 2]"
    assert param_to_str("a", {"b": 1}) == '{"b": 1}'
    assert param_to_str("p", Path("/tmp/x")) == "/tmp/x"


def test_unserialisable_value_is_a_clear_error() -> None:
    with pytest.raises(InvalidValueError, match="param 'model'.*object.*Convert"):
        param_to_str("model", object())


def test_key_sanitised_and_recorded() -> None:
    record = MappingRecord()
    mapper = KeyMapper(MLFLOW_LIKE, "metric", record)
    assert mapper.map("loss@train") == "loss_train"
    assert mapper.map("loss@train") == "loss_train"
    assert record.renamed == {"metric:loss_train": "loss@train"}
    tag = record.to_tag()
    assert MappingRecord.from_tags(tag).renamed == record.renamed
    assert MAPPING_TAG in tag


def test_collision_after_sanitising_is_an_error_not_an_overwrite() -> None:
    mapper = KeyMapper(MLFLOW_LIKE, "metric")
    mapper.map("loss@train")
    with pytest.raises(InvalidKeyError, match="'loss@train' and 'loss#train' both become 'loss_train'"):
        mapper.map("loss#train")
    with pytest.raises(InvalidKeyError):
        KeyMapper(MLFLOW_LIKE, "metric").map_all({"a b@": 1, "a b#": 2})


def test_overlong_keys_stay_unique() -> None:
    mapper = KeyMapper(Limits(max_key_length=20), "param")
    a, b = mapper.map("x" * 30 + "a"), mapper.map("x" * 30 + "b")
    assert len(a) == len(b) == 20 and a != b


def test_long_value_policies() -> None:
    record = MappingRecord()
    assert fit_value("p", "v" * 100_000, 6000, "truncate", record) == "v" * 6000
    assert record.truncated == {"param:p": 100_000}
    with pytest.raises(InvalidValueError, match="100000 characters.*at most 6000"):
        fit_value("p", "v" * 100_000, 6000, "raise", MappingRecord())
    assert fit_value("p", "short", 6000, "raise", MappingRecord()) == "short"


def test_metric_values() -> None:
    assert math.isnan(check_metric_value("m", float("nan")))
    assert check_metric_value("m", 3) == 3.0
    with pytest.raises(InvalidValueError, match="metric 'm': str is not a number"):
        check_metric_value("m", "0.5")


def test_a_record_longer_than_the_destinations_tags_points_to_its_file() -> None:
    from trackbridge.mapping import MAPPING_FILE

    record = MappingRecord(dropped={f"tag:{i}": "x" * 50 for i in range(40)})
    tag = record.to_tag(max_length=1000)
    assert len(tag["trackbridge.mapping"]) <= 1000 and MAPPING_FILE in tag["trackbridge.mapping"]
    assert "mapping" in MappingRecord.from_tags(tag).kept
    assert MappingRecord.from_tags(record.to_tag()).dropped == record.dropped

"""The ``.wandb`` transaction log codec against the real SDK's files and damage."""
from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from wandb_helpers import sdk_run, wandb_file  # noqa: F401  (fixture)

from trackbridge.backends.wandb import txlog


def _read_all(data: bytes) -> list[tuple[int, bytes]]:
    return list(txlog.iter_records(io.BytesIO(data)))


def _write(records: list[bytes]) -> bytes:
    out = io.BytesIO()
    writer = txlog.LogWriter(out)
    for record in records:
        writer.write(record)
    return out.getvalue()


def test_round_trip_across_block_boundaries() -> None:
    rng = random.Random(3)
    sizes = [0, 1, 7, 32_754, 32_755, 32_761, 32_768, 70_000, 5, 200_000] + [rng.randrange(0, 3000) for _ in range(300)]
    records = [rng.randbytes(n) for n in sizes]
    data = _write(records)
    assert data[:7] == b":W&B\xe1\xbe\x00"
    back = _read_all(data)
    assert [r for _, r in back] == records
    # offsets point at each record's first chunk: reading from there gives it again
    stream = io.BytesIO(data)
    offset, first = back[150]
    assert next(txlog.iter_records(stream, start=offset))[1] == first


def test_reads_every_record_the_sdk_wrote(sdk_run) -> None:  # noqa: F811
    from wandb.proto import wandb_internal_pb2 as pb

    run_dir, expected = sdk_run
    records = list(txlog.read_file(wandb_file(run_dir)))
    kinds = []
    for _, data in records:
        record = pb.Record()
        record.ParseFromString(data)
        kinds.append(record.WhichOneof("record_type"))
    assert kinds[0] == "header" and "exit" in kinds
    assert kinds.count("history") == len(expected["loss"]) + 2  # two rows at late steps
    assert wandb_file(run_dir).stat().st_size > 10 * txlog.BLOCK_SIZE  # many blocks


def test_rewrite_of_an_sdk_file_is_byte_identical(sdk_run) -> None:  # noqa: F811
    """Our writer makes the same bytes as the SDK's for the same records."""
    run_dir, _ = sdk_run
    original = wandb_file(run_dir).read_bytes()
    assert _write([r for _, r in _read_all(original)]) == original


def test_truncated_file_keeps_every_record_before_the_cut(sdk_run, tmp_path: Path) -> None:  # noqa: F811
    run_dir, _ = sdk_run
    data = wandb_file(run_dir).read_bytes()
    whole = _read_all(data)
    for cut in (len(data) - 1, len(data) // 2, txlog.BLOCK_SIZE + 3, 100):
        with pytest.raises(txlog.TxlogError) as info:
            list(txlog.iter_records(io.BytesIO(data[:cut])))
        err = info.value
        intact = [r for r in whole if r[0] + len(r[1]) + 7 <= cut and r[0] < err.offset]
        got: list[tuple[int, bytes]] = []
        with pytest.raises(txlog.TxlogError):
            for item in txlog.iter_records(io.BytesIO(data[:cut])):
                got.append(item)
        assert got == whole[:len(got)] and len(got) == err.records
        assert len(got) >= len(intact) - 1 and err.offset <= cut
        assert f"byte offset {err.offset}" in str(err) and "truncated" in str(err)


def test_bit_flip_stops_at_the_damaged_chunk(sdk_run, tmp_path: Path) -> None:  # noqa: F811
    run_dir, _ = sdk_run
    data = bytearray(wandb_file(run_dir).read_bytes())
    whole = _read_all(bytes(data))
    target_offset, target = whole[len(whole) // 2]
    data[target_offset + 7 + len(target) // 2] ^= 0x10
    got: list[tuple[int, bytes]] = []
    with pytest.raises(txlog.TxlogError) as info:
        for item in txlog.iter_records(io.BytesIO(bytes(data))):
            got.append(item)
    assert got == whole[: len(whole) // 2]
    assert "bad CRC" in str(info.value)
    assert target_offset <= info.value.offset < target_offset + len(target) + 7 * 3


def test_not_a_wandb_file(tmp_path: Path) -> None:
    path = tmp_path / "x.wandb"
    path.write_bytes(b"PK\x03\x04 not a log")
    with pytest.raises(txlog.TxlogError, match="not a .wandb file"):
        list(txlog.read_file(path))


def test_read_at_gives_the_records_at_those_offsets(tmp_path: Path) -> None:
    rng = random.Random(7)
    records = [rng.randbytes(rng.choice([1, 100, 5000, 40_000, 70_000])) for _ in range(60)]
    path = tmp_path / "run.wandb"
    path.write_bytes(_write(records))
    every = list(txlog.read_file(path))
    picked = every[::3] + every[1::7]
    picked.sort()
    assert list(txlog.read_at(path, [o for o, _ in picked], window=4096)) == picked
    # damage where a picked record lies: raised as iter_records raises it
    cut = picked[-1][0] + 3
    path.write_bytes(path.read_bytes()[:cut])
    with pytest.raises(txlog.TxlogError):
        list(txlog.read_at(path, [o for o, _ in picked]))

"""The write trace file format: round trip, versioning, consistency checks."""

from __future__ import annotations

import json

import pytest

from memsim.trace.records import TRACE_VERSION, Trace, TraceError, WriteRecord, make_trace


def _records():
    return [
        WriteRecord(
            0,
            "features.0",
            "Conv2d",
            "activation",
            (4, 2, 2),
            16,
            "float32",
            32,
            ops=100,
            ones_fraction=tuple([0.25] * 32),
            zero_fraction=0.5,
        ),
        WriteRecord(0, "features.1", "ReLU", "activation", (4, 2, 2), 16, "float32", 32),
    ]


def test_round_trip(tmp_path):
    trace = make_trace("toy", "float32", _records(), meta={"batch": 8})
    path = trace.save(tmp_path / "t.json")
    back = Trace.load(path)
    assert back == trace
    assert [r.index for r in back] == [0, 1]
    assert back.written_elements == 32 and back.written_bits == 32 * 32
    assert list(back.to_frame()["total_bits"]) == [512, 512]


def test_wrong_version_is_a_clear_error(tmp_path):
    path = make_trace("toy", "float32", _records()).save(tmp_path / "t.json")
    data = json.loads(path.read_text())
    data["version"] = TRACE_VERSION + 1
    path.write_text(json.dumps(data))
    with pytest.raises(TraceError, match=f"version {TRACE_VERSION + 1}"):
        Trace.load(path)


def test_not_a_trace_and_missing_file(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("[1, 2]")
    with pytest.raises(TraceError, match="not a memsim trace"):
        Trace.load(bad)
    bad.write_text("{nope")
    with pytest.raises(TraceError, match="not valid JSON"):
        Trace.load(bad)
    with pytest.raises(TraceError, match="does not exist"):
        Trace.load(tmp_path / "none.json")


def test_record_consistency_checks():
    with pytest.raises(TraceError, match="numel"):
        WriteRecord(0, "a", "ReLU", "activation", (2, 2), 5, "float32", 32)
    with pytest.raises(TraceError, match="role"):
        WriteRecord(0, "a", "ReLU", "scratch", (2,), 2, "float32", 32)
    with pytest.raises(TraceError, match="ones_fraction"):
        WriteRecord(0, "a", "ReLU", "activation", (2,), 2, "float32", 32, ones_fraction=(0.5,))


def test_repeated_trace_doubles_work():
    trace = make_trace("toy", "float32", _records())
    twice = trace.repeated(2)
    assert len(twice) == 4 and twice.written_bits == 2 * trace.written_bits
    assert len({r.name for r in twice}) == 4

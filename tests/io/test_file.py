import pandas as pd
import pyarrow as pa
import pytest

from tideflow.errors import InvalidArgumentError
from tideflow.io.file import FileSink, FileSource, read_arrow, read_table, write_table


def frame() -> pd.DataFrame:
    return pd.DataFrame({"user": ["a", "b", "c"], "clicks": [1, 0, 3], "ctr": [0.5, 0.0, 0.75]})


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_round_trip(tmp_path, suffix):
    path = tmp_path / f"table{suffix}"
    write_table(frame(), path)
    pd.testing.assert_frame_equal(read_table(path), frame())
    assert read_arrow(path).num_rows == 3


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_sink_writes_in_pieces_and_source_reads_in_batches(tmp_path, suffix):
    path = tmp_path / f"t{suffix}"
    with FileSink(path, dataset="clicks") as sink:
        sink.write(frame())
        sink.write(pa.Table.from_pandas(frame(), preserve_index=False))
        sink.write([{"user": "d", "clicks": 9, "ctr": 0.1}])
    assert sink.written_range() is not None
    source = FileSource(path, dataset="clicks")
    batches = list(source.batches(max_records=3))
    assert [len(b) for b in batches] == [3, 3, 1]
    assert batches[-1].records == [{"user": "d", "clicks": 9, "ctr": 0.1}]
    assert batches[0].start_offset is None
    assert len(read_table(path)) == 7


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(InvalidArgumentError, match="cannot tell the format"):
        read_table(tmp_path / "table.txt")
    with pytest.raises(InvalidArgumentError, match="unknown file format 'xml'"):
        FileSink(tmp_path / "t.csv", format="xml")

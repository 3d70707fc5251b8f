"""Reading tables (CSV, TSV, JSONL, Parquet) with errors that name the file, row and column.

Every recipe that reads rows (fraud, forecasting, sentiment, translation, medical label CSVs) goes
through `read_table`, so a ragged row or a wrong encoding gets the same clear message everywhere.
`iter_table` reads in chunks so memory stays bounded for large files.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from dlkit.errors import UserError

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "tsv",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def table_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"'{path}' is not a table dlkit reads", "use .csv, .tsv, .jsonl or .parquet")
    return fmt


def _check_file(path: Path) -> None:
    if not path.exists():
        raise UserError(f"file '{path}' does not exist")
    if path.is_dir():
        raise UserError(f"'{path}' is a folder, not a table file")
    if path.stat().st_size == 0:
        raise UserError(f"file '{path}' is empty", "it needs a header row and at least one data row")


def _explain(path: Path, exc: Exception, encoding: str) -> UserError:
    text = str(exc)
    if isinstance(exc, UnicodeDecodeError):
        return UserError(
            f"'{path}' is not valid {encoding} text (byte {exc.start}: {exc.reason})",
            "pass its encoding, e.g. data.encoding=latin-1 or data.encoding=cp1252",
        )
    ragged = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if ragged:
        want, line, got = ragged.groups()
        return UserError(
            f"'{path}' line {line} has {got} fields, but the header has {want}",
            "fix that row (a stray separator or an unquoted comma)",
        )
    return UserError(
        f"'{path}' cannot be read as a table: {text.strip().splitlines()[0] if text.strip() else exc}"
    )


def _reader_args(fmt: str, encoding: str) -> dict:
    if fmt == "csv":
        return {"sep": ",", "encoding": encoding}
    if fmt == "tsv":
        return {"sep": "\t", "encoding": encoding, "quoting": 3}  # QUOTE_NONE: text with quotes stays intact
    return {}


def read_table(path: Path, encoding: str = "utf-8", columns: list[str] | None = None) -> pd.DataFrame:
    """The whole table as a DataFrame; an empty table or a header-only file is refused."""
    path = Path(path)
    _check_file(path)
    fmt = table_format(path)
    try:
        if fmt == "parquet":
            df = pd.read_parquet(path, columns=columns)
        elif fmt == "jsonl":
            df = pd.read_json(path, lines=True, encoding=encoding)
        else:
            df = pd.read_csv(path, **_reader_args(fmt, encoding), usecols=columns)
    except UserError:
        raise
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError, OSError) as exc:
        raise _explain(path, exc, encoding) from None
    if df.empty:
        raise UserError(f"table '{path}' has no data rows", "it needs a header row and at least one data row")
    return df


def iter_table(
    path: Path, chunk_rows: int = 100_000, encoding: str = "utf-8", columns: list[str] | None = None
) -> Iterator[pd.DataFrame]:
    """Chunks of at most `chunk_rows` rows (Parquet by row group batches)."""
    path = Path(path)
    _check_file(path)
    fmt = table_format(path)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows, columns=columns):
                yield batch.to_pandas()
        elif fmt == "jsonl":
            yield from pd.read_json(path, lines=True, chunksize=chunk_rows, encoding=encoding)
        else:
            yield from pd.read_csv(path, **_reader_args(fmt, encoding), usecols=columns, chunksize=chunk_rows)
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError, OSError) as exc:
        raise _explain(path, exc, encoding) from None


def require_columns(df: pd.DataFrame, needed: list[str], path: Path, what: str = "column") -> None:
    """Refuse a table that lacks a configured column, naming the ones it has."""
    missing = [c for c in needed if c not in df.columns]
    if missing:
        have = ", ".join(map(str, df.columns[:30]))
        raise UserError(
            f"'{path}' has no {what} '{missing[0]}' (columns: {have})",
            "rename the column or point the config at the right one (see `dlkit info RECIPE`)",
        )

"""Training-log files as users write them, read into something ``history_curves`` takes.

``read_log(path)`` returns a pandas DataFrame (CSV) or a name -> list mapping (JSON):

- CSV: Keras ``CSVLogger`` files (also with ``\\r\\r\\n`` line endings), pandas exports of
  ``History.history`` with or without their index column, Lightning ``metrics.csv``, YOLOv5's
  ``results.csv`` (columns padded with spaces); column names are stripped of surrounding spaces;
  blank lines are skipped. Which column is the epoch is decided by ``curves.history_curves``.
- JSON: an object mapping metric names to lists of numbers (``History.history`` dumped with
  ``json.dump``), or a list of per-epoch records. Entries that are not lists of numbers (a config
  dict, a final test score, a string) are not curves and are left out; a file with no curve at all
  is an error.

No mlflow, no keras: the file is only parsed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def _numeric_list(value: Any) -> bool:
    if not isinstance(value, list) or not value:
        return False
    return all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
               or (isinstance(v, str) and v.strip().lower() in ("nan", "inf", "-inf", "infinity",
                                                                 "-infinity"))
               for v in value)


def _as_number(v: Any) -> float:
    if v is None:
        return math.nan
    return float(v)


def read_log(path: str | Path) -> Any:
    """A training-log file as a DataFrame (CSV) or a mapping of curves (JSON); see module doc.

    Raises ``ValueError`` naming the problem for a file that holds no curve, ``OSError`` for one
    that cannot be read.
    """
    import pandas as pd

    path = Path(path)
    if path.suffix.lower() == ".json":
        with path.open(encoding="utf-8") as fh:
            try:
                data = json.load(fh)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON ({exc})") from None
        if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
            return pd.DataFrame.from_records(data)
        if not isinstance(data, dict):
            raise ValueError("a JSON log must be an object mapping metric names to lists of "
                             "numbers, or a list of per-epoch records")
        curves = {str(k): [_as_number(v) for v in vals] for k, vals in data.items()
                  if _numeric_list(vals)}
        if not curves and data:
            raise ValueError("no metric in the JSON log is a list of numbers; metrics present: "
                             f"{', '.join(map(str, data))}")
        return curves
    try:
        frame = pd.read_csv(path, skipinitialspace=True, skip_blank_lines=True)
    except pd.errors.EmptyDataError:
        raise ValueError("the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a CSV file pandas can read ({str(exc).splitlines()[0]})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.dropna(how="all")

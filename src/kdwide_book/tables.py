"""Printing tables in chapters: one format for every number that nbval compares (4 significant digits).

Chapters print pandas tables through :func:`print_table` instead of repeating ``to_string(float_format=...)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

__all__ = ["format_number", "print_table"]


def format_number(value: float, digits: int = 4) -> str:
    """``value`` with ``digits`` significant digits (``'nan'`` for NaN).

    Example:
      >>> format_number(0.0123456), format_number(12345.6, 3)
      ('0.01235', '1.23e+04')
    """
    return f"{value:.{digits}g}"


def print_table(
    table: pd.DataFrame | pd.Series,
    *,
    digits: int = 4,
    columns: Sequence[str] | None = None,
    rename: Mapping[str, str] | None = None,
    index: bool = True,
) -> None:
    """Print ``table`` with every float at ``digits`` significant digits.

    Args:
      table: a DataFrame (or Series).
      digits: significant digits of floats.
      columns: only these columns, in this order.
      rename: new column names (``{"transfer_risk": "risk"}``); underscores are shown as spaces otherwise.
      index: print the index.

    Example:
      >>> print_table(pd.DataFrame({"rho": [0.5, 1.0], "transfer_risk": [0.012345, 0.5]}), index=False)
       rho  transfer risk
       0.5        0.01235
         1            0.5
    """
    if isinstance(table, pd.Series):
        table = table.to_frame()
    if columns is not None:
        table = table[list(columns)]
    names = {name: name.replace("_", " ") for name in table.columns if isinstance(name, str)}
    names.update(rename or {})
    print(table.rename(columns=names).to_string(float_format=lambda v: format_number(v, digits), index=index))

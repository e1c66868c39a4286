"""Which params key a learning curve, and why runs did not make one: pure functions over params.

A learning curve is a group of runs that differ only in their training-set size. Runs are grouped
by the params they log, except:

- ``auto_numbered``: ``optimizer_name`` when its values differ only by a trailing ``_N``
  (``adam``, ``adam_1``, ... ``adam_4``). Keras numbers the objects it creates in one process, and
  ``mlflow.keras.autolog`` / ``mlflow.tensorflow.autolog`` log the optimizer's name, so a size sweep
  in one script would otherwise put every run in a group of its own. Params of the user's own
  (``model_name = resnet_18``) are never read this way.

``split_message`` explains, when no group has enough sizes, which params split the runs and how to
group them with ``--group-by``; ``distinguishing_labels`` and ``short_label`` keep a table of groups
readable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

MIN_SIZES = 3  # distinct sizes a curve needs (scaling.scaling_fit's own minimum)
AUTOLOG_NAMED = ("optimizer_name",)  # params autolog fills with a Keras object's (numbered) name
_SUFFIX = re.compile(r"_\d+$")


def _base(value: str) -> str:
    """``value`` without a Keras auto-number (``adam_3`` -> ``adam``); values without a letter
    before the suffix (``1_000``) are kept whole."""
    base = _SUFFIX.sub("", value)
    return base if re.search(r"[A-Za-z]", base) else value


def auto_numbered(params_of_runs: Sequence[Mapping[str, str]]) -> set[str]:
    """The ``AUTOLOG_NAMED`` params that every run has, whose values differ between runs but agree
    once a trailing ``_N`` is removed."""
    if not params_of_runs:
        return set()
    common = set.intersection(*(set(p) for p in params_of_runs))
    found = set()
    for name in common:
        if name not in AUTOLOG_NAMED:
            continue
        values = {str(p[name]) for p in params_of_runs}
        if len(values) > 1 and len({_base(v) for v in values}) == 1:
            found.add(name)
    return found


def group_key(params: Mapping[str, str], *, size_param: str, group_by: Sequence[str] | None,
              ignored: set[str] | frozenset[str] = frozenset()) -> dict[str, str]:
    """The params that key a run's group: ``group_by`` (a missing one reads as ``""``), else all
    params but the size and the ``ignored`` ones."""
    if group_by:
        return {p: str(params.get(p, "")) for p in group_by}
    return {k: str(v) for k, v in params.items() if k != size_param and k not in ignored}


def split_message(groups: Sequence[Mapping[str, str]], *, size_param: str,
                  sizes: Sequence[int]) -> str:
    """Why no learning curve could be fitted: ``groups`` are the groups' key params and ``sizes``
    the number of distinct sizes in each (all below ``MIN_SIZES``)."""
    names = sorted({k for g in groups for k in g})
    varying = [k for k in names if len({g.get(k) for g in groups}) > 1]
    shared = [k for k in names if k not in varying]
    most = max(sizes, default=0)
    head = (f"no learning curve fitted: every group has fewer than {MIN_SIZES} distinct "
            f"{size_param} values (at most {most})")
    if len(groups) < 2 or not varying:
        return f"{head}; train at {MIN_SIZES} or more sizes"
    shown = ", ".join(varying[:5]) + (f" and {len(varying) - 5} more" if len(varying) > 5 else "")
    which = f"the params {shown} differ" if len(varying) > 1 else f"the param {shown} differs"
    example = " ".join(_preferred(shared)) or "PARAM"
    return (f"{head}: {which} between the runs and split them into {len(groups)} groups. Name "
            f"the params that stay fixed along one curve, e.g. --group-by {example}")


def _preferred(shared: Sequence[str]) -> list[str]:
    """Up to two params to suggest for ``--group-by``: training-setup names first."""
    first = [p for p in ("epochs", "batch_size") if p in shared]
    return (first or list(shared))[:2]


def distinguishing_labels(groups: Sequence[Mapping[str, str]], *,
                          none_differ: str = "all runs") -> list[str]:
    """A label per group naming only the params whose values differ between the groups
    (``none_differ`` where none do, as for a single group): what tells the rows of a table
    apart."""
    names = sorted({k for g in groups for k in g})
    varying = [k for k in names if len({g.get(k) for g in groups}) > 1]
    return [", ".join(f"{k}={g.get(k, '')}" for k in varying) or none_differ for g in groups]


def short_label(label: str, width: int = 40) -> str:
    """``label`` cut to ``width`` characters with an ellipsis, for tables and run names."""
    return label if len(label) <= width else label[:width - 1] + "…"

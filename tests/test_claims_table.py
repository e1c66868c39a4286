"""The claims table exists once, generated: ``projects/CLAIMS.md`` and the README's summary of it.

``python -m projects.claims_table`` runs ``main`` per seed and renders both files' generated
blocks from the outcomes it measured (``projects/claims_measured.json``), with the formatter of
``main``'s own ``claims.md``. The fast tests check that the committed blocks are exactly what the
script renders from the committed measurement (so a claim edited in ``projects/claims.py`` or a
hand-edited table fails here) and the formatter itself. The slow test runs the real ``main`` on
seed 0 the way the script does (a new process, a throwaway SQLite store) and checks that what it
measures is what the committed table says.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # projects/ is run from the checkout, not installed

from projects import claims_table as script  # noqa: E402
from projects.claims import BY_KEY, Outcome  # noqa: E402
from projects.claims_report import claims_table, held_summary, rows_from_json, rows_to_json  # noqa: E402


def _measured() -> dict:
    return json.loads(script.MEASURED.read_text())


def test_committed_blocks_are_what_the_script_renders() -> None:
    measured = _measured()
    claims_md, readme = script.CLAIMS_MD.read_text(), script.README.read_text()
    assert script.generated_block(claims_md, "CLAIMS.md") == script.claims_md_block(measured), (
        "projects/CLAIMS.md is stale: run `python -m projects.claims_table --render` (claim text) "
        "or `python -m projects.claims_table` (measure again)")
    assert script.generated_block(readme, "README.md") == script.readme_block(measured), (
        "README.md's claims summary is stale: run `python -m projects.claims_table --render`")
    assert script.main(["--check"]) == 0
    # One table: the README has the summary and the link, not a copy of the rows.
    assert "the document's claim |" not in readme and "](projects/CLAIMS.md)" in script.readme_block(measured)
    # Every claim of projects/claims.py is measured on every committed seed.
    assert measured["seeds"][0]["seed"] == 0  # the drift test re-measures seed 0
    for seed in measured["seeds"]:
        assert [row["key"] for row in seed["rows"]] == list(BY_KEY), seed["seed"]


def _rows(verdicts: dict[str, tuple[str, bool | None]]) -> list:
    return [(BY_KEY[key], Outcome(key, verdict=v, plateau_epoch=3, gap=0.0123456, detail=f"{key} said"), held)
            for key, (v, held) in verdicts.items()]


def test_one_formatter_for_one_seed_and_for_several() -> None:
    a = _rows({"lr_schedule": ("healthy", True), "limited_images": ("at_chance", False),
               "augmentation_generator": ("healthy", True)})
    b = _rows({"lr_schedule": ("healthy", True), "limited_images": ("at_chance", False),
               "augmentation_generator": ("overfitting", False)})
    one = claims_table({0: a})
    assert one.splitlines()[0] == ("| scenario | source | the document's claim | measured verdict | "
                                   "plateau epoch | gap | claim held? |")
    assert "| healthy | 3 | 0.0123 | yes |" in one and "- **lr_schedule**: lr_schedule said" in one
    two = claims_table({0: a, 1: b})
    assert "measured verdict, seeds 0 / 1 |" in two.splitlines()[0]
    assert "| healthy ×2 | 3 ×2 | 0.0123 ×2 | yes ×2 |" in two
    assert "| healthy / overfitting | 3 ×2 | 0.0123 ×2 | yes / no |" in two
    assert "- **lr_schedule**, seed 1: lr_schedule said" in two
    assert held_summary({0: a}) == "2 of 3 judged claims held (seed 0)."
    assert held_summary({0: a, 1: b}) == (
        "1 of 3 claims held on every seed (0, 1), 1 failed on every seed; whether it held changed "
        "between seeds for augmentation_generator (held: seed 0 2 of 3, seed 1 1 of 3).")
    assert held_summary({0: a, 2: a}) == ("2 of 3 claims held on every seed (0, 2), 1 failed on every "
                                          "seed: whether a claim held never changed between seeds.")
    # What main logs as claims.json reads back as the same rows.
    assert rows_from_json(json.loads(json.dumps(rows_to_json(a))), "x") == a
    with pytest.raises(ValueError, match="seed 1 measured other variants than seed 0"):
        claims_table({0: a, 1: b[:2]})


def test_bad_measurement_or_markers_are_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"claims.json: variant 'gone' is not in projects/claims.py"):
        rows_from_json([{"key": "gone", "held": True, "outcome": {"key": "gone"}}], "claims.json")
    with pytest.raises(ValueError, match=r"README.md: needs exactly one '<!-- claims:start"):
        script.replace_block("no markers here", "x", "README.md")


def test_drift_is_whether_a_claim_held_and_each_stable_verdict() -> None:
    def seed(n: int, *rows: tuple[str, str, bool]) -> dict:
        return {"seed": n, "rows": [{"key": k, "held": h, "outcome": {"verdict": v}} for k, v, h in rows]}

    measured = {"seeds": [seed(0, ("a", "healthy", True), ("b", "healthy", True)),
                          seed(1, ("a", "healthy", True), ("b", "overfitting", True))]}
    assert script.seed_drift(measured, seed(0, ("a", "healthy", True), ("b", "overfitting", True))) == []
    moved = seed(0, ("a", "not_converged", True), ("b", "underfitting", True))
    assert script.seed_drift(measured, moved) == [
        "a: committed healthy (held: True), measured not_converged (held: True)",
        "b: committed healthy (held: True), measured underfitting (held: True)"]
    assert script.seed_drift(measured, seed(0, ("a", "healthy", False))) == [
        "a: committed healthy (held: True), measured healthy (held: False)",
        "b: in the committed table, not measured now"]
    assert script.seed_drift(measured, seed(2)) == ["seed 2 is not in the committed measurement"]


@pytest.mark.slow
def test_seed_0_measures_what_the_committed_table_says(tmp_path: Path) -> None:
    """The drift test: main on seed 0 now, against the committed seed-0 column."""
    fresh = script.measure_seed(0, tmp_path / "seed0", out=sys.stdout)
    differ = script.seed_drift(_measured(), fresh)
    assert not differ, ("seed 0 no longer measures what projects/CLAIMS.md says; if the change is "
                        "meant, run `python -m projects.claims_table`:\n" + "\n".join(differ))

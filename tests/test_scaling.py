"""``scaling_fit``: recovers a power law with offset, and is consistent in what it derives from it;
the ``scaling`` command names the groups of tracked runs it fits."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlflow_plateau.scaling import scaling_fit

SIZES = np.array([250, 500, 1000, 2000, 4000, 8000, 16000], dtype=np.float64)


@pytest.mark.parametrize("a, b, c", [
    (5.0, 0.5, 0.1),      # a classic data-limited curve
    (100.0, 0.3, 0.5),    # slow decay towards a high floor
    (2.0, 1.0, 0.0),      # no floor at all
    (1e3, 1.5, 0.01),     # steep
    (0.8, 0.15, 0.05),    # shallow, floor small against the power term
])
def test_recovers_a_noiseless_power_law_with_offset(a, b, c):
    fit = scaling_fit(SIZES, a * SIZES ** -b + c)
    assert not fit.insufficient_points and fit.n_distinct == 7
    assert fit.exponent == pytest.approx(b, rel=1e-3)
    assert fit.coefficient == pytest.approx(a, rel=1e-2)
    assert fit.floor == pytest.approx(c, abs=1e-4 * (a * SIZES[-1] ** -b + c))
    assert fit.residual_rms < 1e-5
    assert fit.low <= fit.exponent <= fit.high


def test_derived_quantities_are_consistent_with_the_fit():
    fit = scaling_fit(SIZES, 5.0 * SIZES ** -0.5 + 0.1)
    np.testing.assert_allclose(fit.predict(SIZES), 5.0 * SIZES ** -0.5 + 0.1, rtol=1e-6)
    n_max = SIZES.max()
    assert fit.gain_at_2x == pytest.approx(1 - fit.predict(2 * n_max) / fit.predict(n_max))
    assert fit.gain_at_2x == pytest.approx(1 - (5 * (2 * n_max) ** -0.5 + 0.1)
                                           / (5 * n_max ** -0.5 + 0.1), rel=1e-4)
    for n in (300.0, 16000.0, 1e6):
        assert fit.n_for_error(float(fit.predict(n))) == pytest.approx(n, rel=1e-6)
    assert fit.n_for_error(fit.floor) is None            # the floor is never reached
    assert fit.n_for_error(0.5 * fit.floor) is None      # nor anything below it
    assert fit.slope == pytest.approx(np.polyfit(np.log(SIZES), np.log(fit.errors), 1)[0])
    assert fit.slope < 0


def test_predict_accepts_scalars_and_arrays():
    fit = scaling_fit(SIZES, 3.0 * SIZES ** -0.4 + 0.2)
    assert np.ndim(fit.predict(1000)) == 0
    assert fit.predict([1000, 2000]).shape == (2,)


def test_result_is_deterministic_and_json_safe():
    rng = np.random.default_rng(0)
    errors = (5.0 * SIZES ** -0.5 + 0.1) * np.exp(0.03 * rng.standard_normal(SIZES.size))
    one, two = scaling_fit(SIZES, errors), scaling_fit(SIZES, errors)
    assert one.to_dict() == two.to_dict()
    text = json.dumps(one.to_dict(), allow_nan=False)
    assert '"exponent"' in text and one.bootstrap_samples > 100


def test_noisy_power_law_exponent_inside_the_bootstrap_interval():
    rng = np.random.default_rng(1)
    sizes = np.repeat(SIZES, 2)
    errors = (5.0 * sizes ** -0.5 + 0.05) * np.exp(0.02 * rng.standard_normal(sizes.size))
    fit = scaling_fit(sizes, errors)
    assert fit.low <= 0.5 <= fit.high
    assert fit.high - fit.low < 0.5


def test_one_bad_run_does_not_bend_the_curve():
    errors = 5.0 * SIZES ** -0.5 + 0.05
    errors[3] *= 2.0  # one run with a bug, twice the error it should have
    fit = scaling_fit(SIZES, errors)
    assert fit.exponent == pytest.approx(0.5, rel=0.1)


def test_input_order_does_not_matter():
    errors = 5.0 * SIZES ** -0.5 + 0.1
    perm = np.array([3, 0, 6, 1, 5, 2, 4])
    a, b = scaling_fit(SIZES, errors), scaling_fit(SIZES[perm], errors[perm])
    assert a.to_dict() == b.to_dict()


@pytest.mark.parametrize("sizes, errors", [
    ([], []),
    ([1000], [0.3]),
    ([1000, 2000], [0.3, 0.25]),
    ([1000, 1000, 2000, 2000, 2000], [0.3, 0.31, 0.25, 0.26, 0.24]),  # many runs, 2 sizes
])
def test_fewer_than_three_distinct_sizes_is_insufficient_points(sizes, errors):
    fit = scaling_fit(sizes, errors)
    assert fit.insufficient_points
    assert fit.n_distinct == len(set(sizes))
    assert fit.exponent is None and fit.gain_at_2x is None
    json.dumps(fit.to_dict(), allow_nan=False)
    with pytest.raises(ValueError, match="3 are needed"):
        fit.predict(1000)
    with pytest.raises(ValueError, match="3 are needed"):
        fit.n_for_error(0.1)


def test_repeated_sizes_are_fine():
    sizes = [1000, 1000, 2000, 2000, 4000, 4000]
    errors = [0.30, 0.32, 0.25, 0.24, 0.21, 0.215]
    fit = scaling_fit(sizes, errors)
    assert not fit.insufficient_points and fit.n_distinct == 3
    assert fit.sizes.tolist() == sorted(sizes)
    assert fit.exponent >= 0 and fit.gain_at_2x > 0


def test_errors_that_grow_with_size_predict_no_gain():
    sizes = [1000, 2000, 4000, 8000]
    fit = scaling_fit(sizes, [0.20, 0.22, 0.25, 0.27])
    assert fit.slope > 0
    assert fit.gain_at_2x == pytest.approx(0.0, abs=0.01)


def test_flat_errors_predict_no_gain():
    fit = scaling_fit([1000, 2000, 4000, 8000], [0.2, 0.2, 0.2, 0.2])
    assert fit.gain_at_2x == pytest.approx(0.0, abs=1e-3)
    assert fit.slope == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("sizes, errors, message", [
    ([0, 1000, 2000], [0.3, 0.2, 0.1], "sizes must be finite and > 0"),
    ([-5, 1000, 2000], [0.3, 0.2, 0.1], "sizes must be finite and > 0"),
    ([float("nan"), 1000, 2000], [0.3, 0.2, 0.1], "sizes must be finite and > 0"),
    ([float("inf"), 1000, 2000], [0.3, 0.2, 0.1], "sizes must be finite and > 0"),
    ([500, 1000, 2000], [0.3, 0.0, 0.1], "errors must be finite"),
    ([500, 1000, 2000], [0.3, -0.2, 0.1], "errors must be finite"),
    ([500, 1000, 2000], [0.3, float("nan"), 0.1], "errors must be finite"),
    ([500, 1000, 2000], [0.3, 0.2], "3 sizes but 2 errors"),
])
def test_bad_input_raises_a_value_error_that_names_the_problem(sizes, errors, message):
    with pytest.raises(ValueError, match=message):
        scaling_fit(sizes, errors)


def test_sizes_spanning_hundreds_of_decades_are_a_value_error_not_a_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="overflows float64"):
            scaling_fit([1e-300, 1e-9, 1e308], [1e-300, 1e-300, 1e-300])
        fit = scaling_fit([1e-300, 1e300, 1.0], [1e300, 1e300, 1e300])  # overflows, but fits
    assert fit.gain_at_2x == pytest.approx(0.0)


def test_n_for_error_beyond_any_float_is_none():
    fit = scaling_fit(SIZES, 5.0 * SIZES ** -0.01 + 0.1)
    assert fit.n_for_error(fit.floor + 1e-9) is None


def test_interval_covers_the_true_exponent_about_90_percent():
    # Coverage by simulation (seeded, so deterministic): noisy power laws, with and without a
    # floor, 7 sizes, 3-5% multiplicative noise. The 90% interval should hold b ~90% of the time.
    rng = np.random.default_rng(2024)
    hits = trials = 0
    for a, b, c, noise in [(5.0, 0.5, 0.05, 0.03), (2.0, 0.3, 0.0, 0.05)]:
        for _ in range(50):
            errors = (a * SIZES ** -b + c) * np.exp(noise * rng.standard_normal(SIZES.size))
            fit = scaling_fit(SIZES, errors)
            hits += fit.low <= b <= fit.high
            trials += 1
    assert 0.82 <= hits / trials <= 0.97, hits / trials


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(a=st.floats(0.5, 100.0), b=st.floats(0.1, 1.5), floor_share=st.floats(0.0, 0.8))
def test_property_noiseless_power_laws_are_recovered(a, b, floor_share):
    # The floor as a share of the smallest error, so every curve still falls visibly.
    power = a * SIZES ** -b
    c = floor_share * power[-1] / (1 - floor_share) if floor_share < 1 else 0.0
    fit = scaling_fit(SIZES, power + c)
    assert fit.exponent == pytest.approx(b, rel=1e-2, abs=1e-3)
    np.testing.assert_allclose(fit.predict(SIZES), power + c, rtol=1e-4)
    assert 0 <= fit.low <= fit.exponent <= fit.high <= 5


def test_a_batch_of_curves_fits_as_each_curve_alone():
    from mlflow_plateau.scaling import scaling_fits

    rng = np.random.default_rng(5)
    curves = []
    for k in (7, 4, 9, 3, 2):  # different lengths (padded in the batch), one too short to fit
        sizes = SIZES[:k] if k <= SIZES.size else np.repeat(SIZES, 2)[:k]
        errors = (3.0 * sizes ** -0.4 + 0.05) * np.exp(0.03 * rng.standard_normal(sizes.size))
        curves.append((sizes, errors))
    batch = scaling_fits(curves)
    for (sizes, errors), fit in zip(curves, batch, strict=True):
        alone = scaling_fit(sizes, errors).to_dict()
        got = fit.to_dict()
        assert got.keys() == alone.keys()
        for key, value in alone.items():
            if isinstance(value, float):
                assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
            else:
                assert got[key] == value, key
    with pytest.raises(ValueError, match="errors must be finite"):
        scaling_fits([curves[0], ([1, 2, 3], [0.3, 0.0, 0.1])])


def test_scaling_summary_states_observed_and_predicted_from_the_plotted_numbers():
    """The sentence names the observed error at the largest size, the fit's value at twice it and
    the exponent's interval: the numbers the plot draws, so they cannot contradict it."""
    from mlflow_plateau.verdict import scaling_verdict

    rng = np.random.default_rng(3)
    sizes = np.array([500, 1000, 2000, 4000, 8000, 16000], dtype=float)
    errors = 3.0 * sizes ** -0.4 + 0.02 + rng.normal(0, 0.002, sizes.size)
    fit = scaling_fit(sizes, errors)
    v = scaling_verdict(fit)
    observed, predicted = v.evidence["observed_at_largest"], v.evidence["predicted_at_2x"]
    assert observed == pytest.approx(errors[-1])
    assert predicted == pytest.approx(float(fit.predict(32000)))
    assert f"observed {observed:.4g} at n=16000" in v.summary
    assert f"predicted {predicted:.4g} at n=32000" in v.summary
    assert f"90% interval {fit.low:.2f}\u2013{fit.high:.2f}" in v.summary


# --------------------------------------------------------------------- groups of tracked runs

# What autolog and a training script log beside the size: the same for every run of a sweep.
CONSTANT_PARAMS = {"epochs": "30", "batch_size": "64", "optimizer_name": "adam", "lr": "0.001",
                   "loss": "binary_crossentropy", "metrics": "['accuracy']", "shuffle": "True",
                   "validation_split": "0.0", "class_weight": "None", "initial_epoch": "0",
                   "steps_per_epoch": "None", "validation_freq": "1", "opt_beta_1": "0.9",
                   "opt_beta_2": "0.999", "opt_epsilon": "1e-07", "opt_amsgrad": "False",
                   "opt_weight_decay": "None", "opt_clipnorm": "None", "seed": "0",
                   "dropout": "0.1"}


def _log_sweep(experiment: str, models: dict[str, float], sizes=(100, 200, 400, 800, 1600)):
    """Runs of ``mlflow.log_params`` (the size, the model, ``CONSTANT_PARAMS``) and per-epoch
    curves whose best val_loss follows ``scale * n^-0.5 + 0.05``."""
    import mlflow

    mlflow.set_experiment(experiment)
    epochs = np.arange(20)
    for model, scale in models.items():
        for n in sizes:
            with mlflow.start_run(run_name=f"{model}-{n}"):
                mlflow.log_params({"train_size": n, "model": model, **CONSTANT_PARAMS})
                val = scale * n ** -0.5 + 0.05 + (epochs - 8.0) ** 2 / 400.0
                for e in epochs:
                    mlflow.log_metrics({"loss": float(val[e] - 0.03), "val_loss": float(val[e])},
                                       step=int(e))


def test_groups_and_summary_runs_are_named_by_the_params_that_differ(client, capsys):
    from mlflow_plateau.cli import main

    _log_sweep("named", {"small": 3.0, "big": 1.5})
    assert main(["scaling", "--experiment-name", "named", "--json"]) == 0
    groups = json.loads(capsys.readouterr().out)["groups"]
    assert sorted(g["name"] for g in groups) == ["model=big", "model=small"]
    exp = client.get_experiment_by_name("named").experiment_id
    summaries = client.search_runs([exp], "tags.`plateau.kind` = 'scaling'")
    assert sorted(r.info.run_name for r in summaries) == ["scaling: model=big",
                                                          "scaling: model=small"]
    # The full key still identifies the group (re-runs find its summary by it).
    assert all("epochs=30" in r.data.tags["scaling.group"] for r in summaries)
    # The table names the rows the same way and shows each exponent with its 90% interval.
    assert main(["scaling", "--experiment-name", "named"]) == 0
    out = capsys.readouterr().out
    for g in groups:
        interval = f"{g['fit']['exponent']:.2f} ({g['fit']['low']:.2f}\u2013{g['fit']['high']:.2f})"
        row = next(line for line in out.splitlines() if line.startswith(g["name"] + " "))
        assert interval in row, (interval, row)
        assert f"\n{g['name']}: " in out  # the summary line below the table
    assert "epochs=30" not in out and "opt_beta_1" not in out
    assert len(client.search_runs([exp], "tags.`plateau.kind` = 'scaling'")) == 2  # updated


def test_a_single_group_is_named_by_its_experiment(client, capsys):
    from mlflow_plateau.cli import main

    _log_sweep("one-curve", {"cnn": 2.0})
    assert main(["scaling", "--experiment-name", "one-curve"]) == 0
    out = capsys.readouterr().out
    exp = client.get_experiment_by_name("one-curve").experiment_id
    (summary,) = client.search_runs([exp], "tags.`plateau.kind` = 'scaling'")
    assert summary.info.run_name == "scaling: one-curve"
    assert "\none-curve: " in out and "model=cnn" not in out
    # A summary named otherwise before (an older version's dump of every param) is renamed.
    client.update_run(summary.info.run_id, name="scaling: batch_size=64, class_weight=None, ...")
    assert main(["scaling", "--experiment-name", "one-curve"]) == 0
    assert client.get_run(summary.info.run_id).info.run_name == "scaling: one-curve"

"""Which params key a learning curve (``grouping``): pure functions, no tracking store."""

from __future__ import annotations

from mlflow_plateau.grouping import (
    auto_numbered,
    distinguishing_labels,
    group_key,
    short_label,
    split_message,
)


def test_keras_auto_numbered_names_are_found_and_nothing_else():
    runs = [{"optimizer_name": name, "epochs": "3", "model_name": "resnet_18", "seed": str(i)}
            for i, name in enumerate(["adam", "adam_1", "adam_2", "adam_3", "adam_4"])]
    assert auto_numbered(runs) == {"optimizer_name"}
    # The user's own params that happen to end in a number are a real difference.
    assert auto_numbered([{"model_name": "resnet_18"}, {"model_name": "resnet_50"}]) == set()
    assert auto_numbered([{"optimizer_name": "adam_3"}, {"optimizer_name": "adam_7"}]) == \
        {"optimizer_name"}  # a sweep that began after other models were compiled
    assert auto_numbered([{"optimizer_name": "adam"}, {"optimizer_name": "sgd_1"}]) == set()
    assert auto_numbered([{"optimizer_name": "1_000"}, {"optimizer_name": "1_001"}]) == set()
    assert auto_numbered([{"optimizer_name": "adam"}, {}]) == set()  # not on every run
    assert auto_numbered([]) == set()


def test_group_key_leaves_out_the_size_and_the_ignored_params():
    params = {"train_size": "100", "optimizer_name": "adam_2", "epochs": "3"}
    assert group_key(params, size_param="train_size", group_by=None,
                     ignored={"optimizer_name"}) == {"epochs": "3"}
    assert group_key(params, size_param="train_size", group_by=["epochs", "batch"]) == \
        {"epochs": "3", "batch": ""}


def test_split_message_names_the_params_that_split_and_suggests_group_by():
    groups = [{"epochs": "3", "batch_size": "32", "seed": str(i), "lr": "0.1"} for i in range(4)]
    message = split_message(groups, size_param="train_size", sizes=[1, 1, 2, 1])
    assert message == ("no learning curve fitted: every group has fewer than 3 distinct train_size "
                       "values (at most 2): the param seed differs between the runs and split them "
                       "into 4 groups. Name the params that stay fixed along one curve, e.g. "
                       "--group-by epochs batch_size")
    two = split_message([{"a": "1", "b": "1"}, {"a": "2", "b": "2"}], size_param="n", sizes=[1, 1])
    assert "the params a, b differ" in two and "--group-by PARAM" in two
    one = split_message([{"epochs": "3"}], size_param="n", sizes=[2])
    assert one.endswith("(at most 2); train at 3 or more sizes")


def test_labels_for_a_table():
    groups = [{"epochs": "3", "model": "big"}, {"epochs": "3", "model": "small"}]
    assert distinguishing_labels(groups) == ["model=big", "model=small"]
    assert distinguishing_labels([{"epochs": "3"}]) == ["all runs"]
    assert distinguishing_labels([{"epochs": "3"}], none_differ="my-exp") == ["my-exp"]
    # A param only some groups log tells them apart too.
    assert distinguishing_labels([{"epochs": "3"}, {"epochs": "3", "dropout": "0.2"}]) == [
        "dropout=", "dropout=0.2"]
    assert short_label("x" * 50, 24) == "x" * 23 + "…" and short_label("short") == "short"

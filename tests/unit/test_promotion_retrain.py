"""The retrain policy: which triggers train, and no retrain on data the champion already learned from."""

from __future__ import annotations

import pytest
from mlops_pack.core.promotion.retrain import decide, drifted_partitions, training_window


def test_drift_on_data_the_champion_was_trained_on_does_not_retrain():
    d = decide(["drift"], ["new_data", "drift"], champion="2", champion_partitions=["2026-11-01", "2026-11-02"],
               drifted=["2026-11-02"])
    assert not d.train and "already trained on the drifted partitions ['2026-11-02']" in d.reason


def test_drift_on_new_data_retrains_and_names_the_partitions():
    d = decide(["drift"], ["drift"], champion="1", champion_partitions=["2026-11-01"], drifted=["2026-11-02"])
    assert d.train and d.drifted_partitions == ("2026-11-02",) and "2026-11-02" in d.reason


def test_an_unknown_champion_window_retrains_on_drift():
    assert decide(["drift"], ["drift"], champion="1", champion_partitions=None, drifted=["x"]).train


def test_new_data_trains_only_when_the_policy_says_so_once_a_champion_exists():
    assert decide(["new_data"], ["drift"], champion=None, champion_partitions=None).train  # first model
    skipped = decide(["new_data"], ["drift"], champion="1", champion_partitions=["a"])
    assert not skipped.train and "new_data is not in retrain.triggers" in skipped.reason
    assert decide(["new_data"], ["new_data"], champion="1", champion_partitions=["a"]).train


@pytest.mark.parametrize(("on", "trains"), [(["schedule"], True), (["new_data", "drift"], False)])
def test_schedule(on, trains):
    assert decide(["schedule"], on, champion="1", champion_partitions=["a"]).train is trains


def test_manual_runs_always_train_and_any_trigger_asking_wins():
    assert decide([], [], champion="1", champion_partitions=["a"]).train
    both = decide(["new_data", "drift"], ["new_data"], champion="1", champion_partitions=["a"], drifted=["a"])
    assert both.train


def test_prediction_keys_map_to_validated_partitions():
    assert drifted_partitions(["2026-11-03__v2", "2026-11-03__v1", "plain"]) == ["2026-11-03", "plain"]


def test_training_window_holds_the_drifted_partitions():
    keys = ["d1", "d2", "d3", "d4"]
    assert training_window(keys, 2) == ["d3", "d4"]
    assert training_window(keys, 2, ["d1"]) == ["d1", "d3", "d4"]
    with pytest.raises(ValueError, match=r"drifted partitions \['d9'\]"):
        training_window(keys, 2, ["d9"])


def test_drift_does_not_retrain_a_window_the_gate_already_rejected():
    d = decide(["drift"], ["new_data", "drift"], champion="1", champion_partitions=["d1"], drifted=["d2"],
               rejected_same_window="2")
    assert not d.train and "v2 was trained on this very window" in d.reason
    assert decide(["new_data", "drift"], ["new_data", "drift"], champion="1", champion_partitions=["d1"],
                  drifted=["d2"], rejected_same_window="2").train  # new data in the same batch still trains


def test_decay_of_the_champion_retrains_and_names_decay_as_the_evidence():
    d = decide(["performance"], ["performance"], champion="1", champion_partitions=["d1"], decayed_versions=["1"])
    assert d.train and d.evidence == ("decay",) and "v1's realized performance" in d.reason


def test_decay_of_a_replaced_champion_does_not_retrain():
    d = decide(["performance"], ["performance", "drift"], champion="2", champion_partitions=["d1"],
               decayed_versions=["1"])
    assert not d.train and "names v1, but the champion is v2" in d.reason


def test_decay_trains_only_when_performance_is_in_the_policy():
    d = decide(["performance"], ["drift"], champion="1", champion_partitions=["d1"], decayed_versions=["1"])
    assert not d.train and "performance is not in retrain.triggers" in d.reason


def test_a_rejected_window_is_not_retrained_on_decay_either():
    d = decide(["performance"], ["performance"], champion="1", champion_partitions=["d1"], decayed_versions=["1"],
               rejected_same_window="3")
    assert not d.train and "v3 was trained on this very window" in d.reason


def test_require_decay_for_drift_keeps_an_input_shift_that_costs_nothing_from_retraining():
    quiet = decide(["drift"], ["drift", "performance"], champion="1", champion_partitions=["d1"], drifted=["d2"],
                   require_decay_for_drift=True)
    assert not quiet.train and "shows no decay" in quiet.reason
    decayed = decide(["drift"], ["drift", "performance"], champion="1", champion_partitions=["d1"], drifted=["d2"],
                     require_decay_for_drift=True, decayed_versions=["1"])
    assert decayed.train and decayed.evidence == ("input drift",) and "has decayed" in decayed.reason
    # without the policy the same drift retrains on its own
    assert decide(["drift"], ["drift"], champion="1", champion_partitions=["d1"], drifted=["d2"]).train


def test_every_trigger_that_asks_is_named_as_evidence():
    d = decide(["drift", "performance", "new_data"], ["drift", "performance"], champion="1",
               champion_partitions=["d1"], drifted=["d2"], decayed_versions=["1"])
    assert d.train and d.evidence == ("input drift", "decay")
    assert decide([], [], champion="1", champion_partitions=None).evidence == ("manual run",)
    assert decide(["schedule"], ["schedule"], champion="1", champion_partitions=None).evidence == ("schedule",)
    assert decide(["new_data"], [], champion=None, champion_partitions=None).evidence == ("no champion yet",)


def test_a_versions_newest_judged_record_says_whether_it_has_decayed():
    from mlops_pack.core.promotion.retrain import decayed_versions

    records = [{"partition": "d1__v1", "model_version": "1", "status": "ok", "decayed": False},
               {"partition": "d2__v1", "model_version": "1", "status": "ok", "decayed": True},
               {"partition": "d3__v1", "model_version": "1", "status": "not_enough_labels", "decayed": False},
               {"partition": "d2__v2", "model_version": "2", "status": "ok", "decayed": True},
               {"partition": "d3__v2", "model_version": "2", "status": "ok", "decayed": False}]
    assert decayed_versions(records) == ["1"]  # too few labels on d3 says nothing; v2 recovered on d3

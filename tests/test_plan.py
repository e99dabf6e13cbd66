"""regsearch.plan: folds resolved against the data, members per (seed, fold), fair lr tuning."""

from __future__ import annotations

from pathlib import Path

import pytest

from regsearch.config import AUTO_FINAL_FOLDS, AUTO_FOLDS, ConfigError
from regsearch.plan import BASELINE, make_plan
from regsearch.records import Member, MemberResult
from tests.conftest import TINY


def test_small_pools_are_cross_validated_and_members_cover_every_seed_and_fold(
    tmp_path: Path, make_config
) -> None:
    cfg, _ = make_config(tmp_path, "+sweep=dropout", *TINY)
    plan = make_plan(cfg)
    assert plan.task.folds == AUTO_FOLDS  # moons: a pool of 200 rows
    members = plan.members(3, {"dropout": 0.2}, [7, 8])
    assert [(m.seed, m.repeat, m.fold) for m in members] == [
        (s, r, f) for r, s in enumerate([7, 8]) for f in range(AUTO_FOLDS)
    ]
    assert {m.trial for m in members} == {3}
    assert all(m.hparams.dropout == (0.2, 0.2) for m in members)


def test_cv_zero_keeps_the_holdout_split(tmp_path: Path, make_config) -> None:
    cfg, _ = make_config(tmp_path, "+sweep=dropout", *TINY, "search.cv=0")
    plan = make_plan(cfg)
    assert plan.task.folds == 0
    assert [m.fold for m in plan.members(0, {}, [0, 1])] == [None, None]


def test_more_folds_than_the_smallest_class_is_a_config_error(tmp_path: Path, make_config) -> None:
    cfg, _ = make_config(tmp_path, "+sweep=l2", "task=wine", "search.cv=60")
    with pytest.raises(ConfigError, match=r"search\.cv"):
        make_plan(cfg)


def test_tune_lr_adds_lr_to_every_family_and_a_baseline_with_the_same_budget(
    tmp_path: Path, make_config
) -> None:
    cfg, _ = make_config(tmp_path, "+sweep=compare", "sweep.families.l1.n_trials=3")
    plan = make_plan(cfg)
    assert next(iter(plan.families)) == BASELINE
    baseline = plan.families[BASELINE]
    assert list(baseline.params) == ["lr"]
    assert baseline.n_trials == max(f.n_trials for n, f in plan.families.items() if n != BASELINE)
    lr = baseline.params["lr"]
    assert (lr.low, lr.high, lr.log) == pytest.approx((0.02, 0.6, True))  # moons: lr 0.2
    for name, fam in plan.families.items():
        assert fam.params["lr"] == lr, name
    assert plan.families["l1"].n_trials == 3


def test_without_tune_lr_the_families_are_the_presets(tmp_path: Path, make_config) -> None:
    cfg, _ = make_config(tmp_path, "+sweep=compare", "sweep.tune_lr=false")
    plan = make_plan(cfg)
    assert BASELINE not in plan.families
    assert all("lr" not in fam.params for fam in plan.families.values())


def test_the_model_and_schedule_take_their_config_keys_by_name(tmp_path: Path, make_config) -> None:
    cfg, _ = make_config(
        tmp_path,
        "+sweep=l2",
        "model.hidden=[7,5]",
        "model.activation=tanh",
        "model.bias=false",
        "train=adam",
        "train.betas=[0.8,0.95]",
        "train.eps=1e-6",
        "train.batch_size=16",
        "train.max_epochs=30",
        "train.eval_every=5",
        "train.decay_all=true",
        "seed=3",
    )
    plan = make_plan(cfg)
    assert (plan.spec.in_features, plan.spec.out_features) == (2, 1)
    assert (plan.spec.hidden, plan.spec.activation, plan.spec.bias) == ((7, 5), "tanh", False)
    s = plan.schedule
    assert (s.optimizer, s.betas, s.eps, s.batch_size) == ("adam", (0.8, 0.95), 1e-6, 16)
    assert (s.max_epochs, s.eval_every, s.decay_all, s.order_seed) == (30, 5, True, 3)


def test_train_converts_to_original_units_once_and_before_on_result(
    tmp_path: Path, make_config
) -> None:
    # diabetes: a z-scored regression target, so each loss gains an original-units twin.
    cfg, _ = make_config(
        tmp_path, "+sweep=l2", "task=diabetes", "search.cv=0", "train.max_epochs=20"
    )
    plan = make_plan(cfg)
    first, later = plan.members(0, {}, [0]), plan.members(1, {}, [1])
    queue = [later]
    seen: dict[int, dict[str, float]] = {}

    def refill(free: int) -> list[Member]:
        return queue.pop() if queue else []

    def on_result(index: int, result: MemberResult) -> None:
        seen[index] = dict(result.final)  # a copy: what the study would tell from

    results = plan.train(first, refill=refill, on_result=on_result)
    assert [r.member.trial for r in results] == [0, 1]  # the refilled member follows
    for index, result in enumerate(results):
        data = plan.task.member_data(result.member.fold, result.member.seed)
        scale = data.target_scale**2
        assert seen[index] == result.final, "on_result saw the final numbers"
        assert result.final["val_loss_orig"] == pytest.approx(result.final["val_loss"] * scale)


def test_compare_leaves_out_families_a_linear_model_cannot_have(
    tmp_path: Path, make_config, caplog: pytest.LogCaptureFixture
) -> None:
    cfg, _ = make_config(tmp_path, "+sweep=compare", "task=highdim_linear")
    with caplog.at_level("INFO", logger="regsearch.plan"):
        plan = make_plan(cfg)
    assert set(plan.left_out) == {"dropout", "batchnorm"}
    assert "dropout" not in plan.families and "batchnorm" not in plan.families
    assert {"baseline", "l1", "l2", "weight_decay", "early_stopping"} == set(plan.families)
    lines = [r.getMessage() for r in caplog.records]
    assert "left out the dropout family: the model has no hidden layer to drop" in lines[0]
    assert "left out the batchnorm family: the model has no hidden layer to normalize" in lines[1]


@pytest.mark.parametrize(
    ("preset", "key"),
    [("+sweep=dropout", "sweep.params.dropout"), ("+sweep=batchnorm", "sweep.params.batch_norm")],
)
def test_a_family_asked_for_explicitly_is_refused_on_a_linear_model(
    tmp_path: Path, make_config, preset: str, key: str
) -> None:
    cfg, _ = make_config(tmp_path, preset, "model.hidden=[]")
    with pytest.raises(ConfigError, match=rf"^{key}: the model has no hidden layer"):
        make_plan(cfg)


def test_final_cv_auto_gives_the_comparison_ten_folds(tmp_path: Path, make_config) -> None:
    cfg, _ = make_config(tmp_path, "+sweep=dropout", *TINY)
    plan = make_plan(cfg)
    assert plan.task.folds == AUTO_FOLDS and plan.for_final().task.folds == AUTO_FINAL_FOLDS
    assert [m.fold for m in plan.for_final().members(0, {}, [0])] == list(range(10))
    cfg, _ = make_config(tmp_path, "+sweep=dropout", *TINY, "search.final_cv=0")
    assert make_plan(cfg).for_final().task.folds == 0
    cfg, _ = make_config(tmp_path, "+sweep=dropout", *TINY, "search.cv=0")
    assert make_plan(cfg).for_final().task.folds == 0  # auto follows a holdout tuning


def test_final_cv_follows_its_own_key(tmp_path: Path, make_config) -> None:
    cfg, _ = make_config(tmp_path, "+sweep=l2", "task=wine", "search.cv=3")
    assert make_plan(cfg).for_final().task.folds == AUTO_FINAL_FOLDS
    cfg, _ = make_config(tmp_path, "+sweep=l2", "task=wine", "search.final_cv=4")
    assert make_plan(cfg).for_final().task.folds == 4
    # An impossible value (more folds than wine's smallest class has rows) names the key.
    cfg, _ = make_config(tmp_path, "+sweep=l2", "task=wine", "search.final_cv=60")
    with pytest.raises(ConfigError, match=r"^search\.final_cv=60: "):
        make_plan(cfg)

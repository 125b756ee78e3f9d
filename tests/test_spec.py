"""The run spec: one table of defaults and limits, human messages, and spec -> command line -> spec."""
from __future__ import annotations

import pytest

from aigc.cli import build_parser
from aigc.engine.run_plan import Invocation, make_plan
from aigc.engine.spec import SETTINGS, RunSpec, SpecError, given_settings, spec_to_args


def parse_train(args: list[str]):
    return build_parser().parse_args(["train", "--run-dir", "unused", *args])


SPECS = [
    RunSpec.resolve(),
    RunSpec.resolve(preset="seed", epochs=7, batch_size=32, lr_g=1e-3, lr_d=3e-4, seed=11),
    RunSpec.resolve(epochs=3, loss="hinge", ema_decay=0.99, label_smoothing=0.1, discriminator="concat",
                    spectral_norm=True, jit=True, precision="float32", data="/data/mnist.npz",
                    init_from="/w/generator.keras", train_limit=512, eval_samples=0, log_every=5,
                    checkpoint_seconds=2.5, keep_every=2, beta_1=0.0, width=32, lr_half_life=2.5, probe_seconds=0.0,
                    lr_floor=0.125, class_fade=1.0, ema_warmup=5.0, r1_every=2, r1_samples=4),
]


@pytest.mark.parametrize("spec", SPECS, ids=["defaults", "seed-preset", "every-setting"])
def test_spec_to_command_line_and_back(spec, tmp_path, monkeypatch):
    """What the page builds is exactly what the trainer's parser reads back, and what a new run records."""
    monkeypatch.delenv("AIGC_MNIST", raising=False)
    args = parse_train(spec_to_args(spec))
    assert RunSpec.resolve(**given_settings(args), epochs=args.epochs) == spec
    if spec.init_from is None:  # (with init_from the plan reads the architecture from that file)
        plan = make_plan(Invocation(tmp_path / "run", add_epochs=args.epochs), given_settings(args))
        assert plan.spec == spec and plan.record["spec"] == spec.to_dict()


def test_every_setting_has_a_flag_and_a_help_line():
    parser_help = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for name, setting in SETTINGS.items():
        if name != "epochs":
            assert setting.flag in parser_help and setting.help
    assert set(SETTINGS) - {"epochs"} <= set(vars(parse_train([])))


@pytest.mark.parametrize("given, message", [
    (dict(batch_size=0), "--batch-size: must be a whole number at least 1"),
    (dict(lr_g=0.0), "--lr-g: must be a number above 0"),
    (dict(lr_d=float("nan")), "--lr-d: must be a number above 0"),
    (dict(loss="wasserstein"), "--loss: must be one of bce, hinge"),
    (dict(epochs=2.5), "--epochs: must be a whole number"),
    (dict(preset="vae"), "--preset: must be one of dcgan, seed"),
    (dict(preset="seed", spectral_norm=True), "apply to dcgan only"),
    (dict(preset="seed", width=48), "apply to dcgan only"),
    (dict(width=2), "--width: must be a whole number at least 4"),
    (dict(lr_half_life=-1.0), "--lr-half-life: must be a number at least 0"),
    (dict(colour="red"), "unknown setting"),
])
def test_bad_settings_get_a_sentence_not_an_assert(given, message):
    with pytest.raises(SpecError, match=message):
        RunSpec.resolve(**given)


def test_defaults_come_from_the_table_per_preset():
    assert RunSpec.resolve().ema_decay == 0.999 and RunSpec.resolve(preset="seed").ema_decay == 0.0
    spec = RunSpec.resolve(batch_size=64)
    assert spec.replace(batch_size=32).batch_size == 32 and spec.batch_size == 64  # immutable
    with pytest.raises(Exception):
        spec.batch_size = 1
    assert RunSpec.from_dict({**spec.to_dict(), "unknown": 1}) == spec


def test_learning_rates_follow_the_half_life():
    spec = RunSpec.resolve(lr_g=4e-4, lr_d=2e-4, lr_half_life=2.0)
    assert spec.learning_rates(0) == (4e-4, 2e-4)
    assert spec.learning_rates(2.0) == pytest.approx((2e-4, 1e-4))
    assert spec.learning_rates(5.0) == pytest.approx((4e-4 / 2 ** 2.5, 2e-4 / 2 ** 2.5))
    assert RunSpec.resolve(lr_g=4e-4, lr_half_life=0).learning_rates(100)[0] == 4e-4  # 0: constant
    assert spec.learning_rates(100.0) == pytest.approx((4e-4 / 16, 2e-4 / 16))  # the floor


def test_the_class_loss_fades_as_fast_as_the_learning_rates_by_default_and_class_fade_times_as_fast():
    spec = RunSpec.resolve(class_loss=1.0, lr_half_life=3.0, class_boost=0.0)
    assert spec.class_fade == 1.0 and RunSpec.resolve(preset="seed").class_fade == 2.0  # the seed preset as it was
    assert spec.class_weight(0) == 1.0
    assert spec.class_weight(3.0) == pytest.approx(0.5) and spec.class_weight(6.0) == pytest.approx(0.25)
    assert spec.class_weight(60) < 1e-5  # no floor: late training is the adversarial game alone
    twice = spec.replace(class_fade=2.0)
    assert twice.class_weight(1.5) == pytest.approx(0.5) and twice.class_weight(3.0) == pytest.approx(0.25)
    assert RunSpec.resolve(class_loss=0.5, lr_half_life=0, class_boost=0.0).class_weight(10) == 0.5


def test_the_class_boost_starts_a_run_on_top_of_the_class_loss_and_halves_every_half_life():
    spec = RunSpec.resolve()  # dcgan: weight 1 fading once per 3 epochs, plus a boost of 3 halving every 0.15 epoch
    assert (spec.class_loss, spec.class_boost, spec.class_boost_half_life) == (1.0, 3.0, 0.15)
    assert spec.class_weight(0) == pytest.approx(4.0)
    assert spec.class_weight(0.15) == pytest.approx(0.5 ** (0.15 / 3) + 1.5)
    assert spec.class_weight(0.6) == pytest.approx(0.5 ** (0.6 / 3) + 3 / 16)
    assert spec.class_weight(8.0) == pytest.approx(0.5 ** (8 / 3), rel=1e-6)  # gone long before a run ends
    slower = spec.replace(class_boost=2.0, class_boost_half_life=1.0)
    assert slower.class_weight(1.0) == pytest.approx(0.5 ** (1 / 3) + 1.0)
    assert RunSpec.resolve(lr_half_life=0).class_weight(0.3) == pytest.approx(1.0 + 3.0 / 4)  # no lr schedule: still
    assert RunSpec.resolve(class_loss=0.0).class_weight(0) == 0.0  # no class head: nothing to weigh
    assert RunSpec.resolve(preset="seed").class_boost == 0.0
    with pytest.raises(SpecError, match="--class-boost"):
        RunSpec.resolve(preset="seed", class_boost=1.0)
    with pytest.raises(SpecError):
        RunSpec.resolve(class_boost_half_life=0.0)


def test_runs_saved_before_the_width_setting_keep_the_width_they_were_built_with(tmp_path):
    from aigc.engine.run_plan import spec_of

    saved = {k: v for k, v in RunSpec.resolve(batch_size=64).to_dict().items() if k != "width"}
    assert RunSpec.from_dict(saved).width == 64 and RunSpec.from_dict(saved).model.base_filters == 64
    assert RunSpec.from_dict(dict(saved, model_extra={"base_filters": 32})).model.base_filters == 32
    legacy = {"model_config": {"preset": "dcgan", "base_filters": 16}, "hyperparameters": {"lr_g": 1e-4}}
    assert spec_of(legacy).width == 16 and spec_of({"model_config": {"preset": "dcgan"}}).width == 64
    assert RunSpec.resolve().width == 48 and RunSpec.resolve().model.base_filters == 48  # the new default


def test_a_run_started_from_weights_takes_their_width(tmp_path):
    from helpers import save_untrained_generator

    weights = save_untrained_generator(tmp_path / "g.keras", base_filters=16)
    plan = make_plan(Invocation(tmp_path / "run", add_epochs=1), {"init_from": str(weights)})
    assert plan.spec.width == 16 and plan.spec.model.base_filters == 16
    with pytest.raises(SpecError, match="width of 16"):
        make_plan(Invocation(tmp_path / "run2", add_epochs=1), {"init_from": str(weights), "width": 48})


def test_the_class_loss_follows_the_discriminator_it_trains(tmp_path):
    from aigc.engine.run_plan import save_plan, spec_of
    from helpers import save_untrained_generator

    assert RunSpec.resolve().model.class_head and not RunSpec.resolve(class_loss=0).model.class_head
    with pytest.raises(SpecError, match="apply to dcgan only"):
        RunSpec.resolve(preset="seed", class_loss=1.0)
    saved = {k: v for k, v in RunSpec.resolve().to_dict().items() if k != "class_loss"}
    assert RunSpec.from_dict(saved).class_loss == 0  # saved before the class loss: no head in its discriminator
    old = {k: v for k, v in RunSpec.resolve(lr_g=2e-4).to_dict().items() if k not in ("lr_half_life", "class_loss")}
    assert RunSpec.from_dict(old).lr_half_life == 0  # saved before the schedule: constant rates, as it trained
    assert spec_of({"model_config": {"preset": "dcgan"}}).lr_half_life == 0
    assert spec_of({"model_config": {"preset": "dcgan"}}).class_loss == 0
    # Starting from weights without a head (today's shipped file): no class loss, unless asked, which is refused.
    old = save_untrained_generator(tmp_path / "old.keras")
    assert make_plan(Invocation(tmp_path / "a", add_epochs=1), {"init_from": str(old)}).spec.class_loss == 0
    with pytest.raises(SpecError, match="has no class head"):
        make_plan(Invocation(tmp_path / "b", add_epochs=1), {"init_from": str(old), "class_loss": 1.0})
    # An existing run cannot switch its head on or off; changing the weight is fine.
    plan = make_plan(Invocation(tmp_path / "c", add_epochs=1), {})
    save_plan(plan)
    assert make_plan(Invocation(tmp_path / "c", add_epochs=1), {"class_loss": 0.5}).spec.class_loss == 0.5
    with pytest.raises(SpecError, match="cannot turn it on or off"):
        make_plan(Invocation(tmp_path / "c", add_epochs=1), {"class_loss": 0.0})

"""What one `train` invocation will do to a run directory, decided before TensorFlow loads.

A new run gets its spec from the flags (and from --init-from's architecture) and saves it
whole in config.json. An existing run reads its spec back; flags given again override
settings, each override is recorded in config.json and printed, and a new batch size
restarts the current epoch (a step then means a different number of images).

config.json has one writer, save_plan, and one reader, spec_of: the plan is complete (the
epoch target included) before it is saved, and the trainer never writes it. The epochs a run
has done are known only from its checkpoint (the trainer restores them); the plan needs none:
"train more" adds to the recorded total, and status.json is read for its state alone.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

from aigc.text import counted
from aigc.engine.spec import BEFORE_SPECS, MODEL_SETTINGS, SETTINGS, RunSpec, SpecError, epochs_behind
from aigc.runs.files import atomic_write_json, read_json
from aigc.runs.layout import RunPaths
from aigc.settings import mnist_env_path


@dataclass(frozen=True)
class Invocation:
    """Settings of one process, not of the run: where, how long, how many threads."""

    run_dir: Path
    add_epochs: int | None = None  # a new run's total, or epochs added to an existing run's recorded total
    resume: bool = False
    max_steps: int | None = None
    threads: int = 0  # 0 = the CPUs this process may use
    nice: int = 0


@dataclass(frozen=True)
class Plan:
    """The spec to train, and how it came about."""

    paths: RunPaths
    spec: RunSpec  # spec.epochs: the total this invocation trains to, decided here and saved before training
    invocation: Invocation
    created: bool  # a new run
    restart_epoch: bool = False  # the batch size changed: continue from the start of the current epoch
    notes: tuple[str, ...] = ()
    done: str | None = None  # set when there is nothing to train (a finished run resumed)
    record: dict = field(default_factory=dict)  # config.json as saved

    @property
    def base_epochs(self) -> int:
        """Epochs behind the weights the run started from (0 from scratch)."""
        return int(self.record.get("base_epochs") or 0)


def make_plan(invocation: Invocation, given: dict) -> Plan:
    """The plan for this invocation; SpecError with a reason when the flags cannot apply to this run."""
    paths = RunPaths(Path(invocation.run_dir))
    record = read_json(paths.config)
    if record is None:
        if invocation.resume:
            raise SpecError(f"nothing to resume in {paths.name}: it has no config.json (start it without --resume)")
        return _new_run(paths, invocation, given)
    return _existing_run(paths, invocation, given, record)


def _new_run(paths: RunPaths, invocation: Invocation, given: dict) -> Plan:
    given = dict(given)
    if not given.get("data") and mnist_env_path():
        given["data"] = str(mnist_env_path())  # recorded, so that a resume finds the same file
    for name in ("data", "init_from"):
        if given.get(name):
            given[name] = str(Path(given[name]).expanduser().resolve())
    if given.get("init_from"):
        given = architecture_of(given["init_from"], given)
    spec = RunSpec.resolve(**given, epochs=invocation.add_epochs or SETTINGS["epochs"].default)
    record = {"spec": spec.to_dict(), "model_config": dataclasses.asdict(spec.model), "created_at": time.time(),
              "overrides": []}
    if spec.init_from:
        from aigc.engine.checkpoints import lineage_of

        # Epochs already behind the starting weights: the learning-rate schedule continues from there.
        record["base_epochs"] = epochs_behind(lineage_of(spec.init_from))
    return Plan(paths, spec, invocation, created=True, record=record)


def architecture_of(init_from: str, given: dict) -> dict:
    """given with the architecture (preset, discriminator, spectral_norm, width) of the weights it starts from."""
    from aigc.engine.checkpoints import CheckpointError, read_meta

    try:
        config, _card = read_meta(init_from)
    except CheckpointError as error:
        raise SpecError(f"--init-from: {error}") from None
    for name in MODEL_SETTINGS:
        theirs = getattr(config, name)
        if given.get(name) is not None and given[name] != theirs:
            raise SpecError(f"--init-from holds a {name} of {theirs!r}; it cannot train as {given[name]!r}")
        given[name] = theirs
    if given.get("class_loss") is not None and (given["class_loss"] > 0) != config.class_head:
        raise SpecError(f"--init-from's discriminator {'has' if config.class_head else 'has no'} class head; "
                        f"--class-loss {given['class_loss']:g} cannot train it")
    if not config.class_head:
        given["class_loss"] = 0.0
    default = type(config)()
    extra = {k: getattr(config, k) for k in ("latent_dim",) if getattr(config, k) != getattr(default, k)}
    return dict(given, model_extra=extra)


def _existing_run(paths: RunPaths, invocation: Invocation, given: dict, record: dict) -> Plan:
    recorded = spec_of(record)
    fixed = [n for n in MODEL_SETTINGS if n in given and given[n] != getattr(recorded, n)]
    if fixed:
        raise SpecError(f"{paths.name} is a {recorded.preset} run ({', '.join(f'{n} {getattr(recorded, n)!r}' for n in fixed)}); "
                        "the architecture of an existing run cannot change: start a new run instead")
    # Train more: N epochs beyond the recorded total (which a finished run has done).
    epochs = recorded.epochs if invocation.resume else recorded.epochs + (invocation.add_epochs or 1)
    if epochs > SETTINGS["epochs"].high:
        raise SpecError(f"--epochs: {paths.name} already trains to {counted(recorded.epochs, 'epoch')}; at most "
                        f"{SETTINGS['epochs'].high:g} in all")
    spec = recorded.replace(**given, epochs=epochs)
    if spec.model != recorded.model:
        raise SpecError(f"{paths.name}'s discriminator {'has' if recorded.model.class_head else 'has no'} class head: "
                        "--class-loss cannot turn it on or off; start a new run instead")
    if invocation.resume and (read_json(paths.status) or {}).get("state") == "finished":
        return Plan(paths, spec, invocation, created=False, record=record,
                    done=f"{paths.name} already finished all {counted(spec.epochs, 'epoch')}; nothing to resume "
                         "(run without --resume and with --epochs N to train N more)")
    changes = recorded.changes(spec)
    notes = tuple(f"override: {name} {old!r} -> {new!r}" for name, (old, new) in changes.items() if name != "epochs")
    if "epochs" in changes:
        notes += (f"training {counted(epochs - recorded.epochs, 'more epoch')}: to epoch {epochs}",)
    restart = "batch_size" in changes
    if restart:
        notes += ("the batch size changed: the current epoch starts again from its first batch",)
    if changes:
        record = dict(record, spec=spec.to_dict(), overrides=list(record.get("overrides") or []) + [
            {"at": time.time(), "changes": {name: list(pair) for name, pair in changes.items()}}])
    return Plan(paths, spec, invocation, created=False, restart_epoch=restart, notes=notes, record=record)


def spec_of(record: dict) -> RunSpec:
    """The RunSpec of a config.json, the one way to read a run's settings (also of runs made before specs existed:
    their hyperparameters, and for what they did not record, the defaults of those days)."""
    if isinstance(record.get("spec"), dict):
        return RunSpec.from_dict(record["spec"])
    model = record.get("model_config") or {}
    legacy = dict(BEFORE_SPECS, **(record.get("hyperparameters") or {}))
    legacy.update({k: model[k] for k in MODEL_SETTINGS if k in model})
    data = record.get("data")
    legacy.update(data=None if data in (None, "keras") else data, init_from=record.get("init_from"))
    # from_dict gives the settings added since their values from before (width, class loss, schedule, R1...).
    extra = {k: model[k] for k in ("latent_dim", "base_filters") if k in model}
    return RunSpec.from_dict(dict(legacy, model_extra=extra))


def save_plan(plan: Plan) -> None:
    """Create the run folder and write config.json (the spec, whole) when it is new or changed."""
    plan.paths.root.mkdir(parents=True, exist_ok=True)
    atomic_write_json(plan.paths.config, plan.record)

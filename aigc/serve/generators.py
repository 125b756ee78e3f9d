"""The served generator: loaded once per process per (path, mtime), with a fallback to the shipped one."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from aigc.engine.checkpoints import CheckpointError, load_generator
from aigc.serve.caches import GENERATORS, file_key
from aigc import settings
from aigc.runs.layout import list_runs
from aigc.settings import without_paths

LOG = logging.getLogger("aigc.serve.generators")


@dataclass(frozen=True)
class GeneratorChoice:
    """One entry of the generator chooser: a label for people, a path chosen by the server."""

    label: str
    path: Path
    kind: str  # shipped | seed | run


def generator_choices(*, root: Path | None = None) -> list[GeneratorChoice]:
    """Existing generators: shipped dcgan, shipped seed preset, the newest run that saved one."""
    choices = []
    for preset, label, kind in (("dcgan", "Shipped (dcgan, conditional)", "shipped"),
                                ("seed", "Seed preset (unconditional)", "seed")):
        if settings.shipped_generator(preset).is_file():
            choices.append(GeneratorChoice(label, settings.shipped_generator(preset), kind))
    for paths in list_runs(root or settings.runs_root()):
        if paths.generator.is_file():
            choices.append(GeneratorChoice(f"Newest trained run ({paths.name})", paths.generator, "run"))
            break
    return choices


@dataclass(frozen=True)
class Served:
    """The generator the page serves: model, config, card, where it came from, and any warning."""

    model: object
    config: object
    card: dict
    path: Path
    label: str
    warning: str | None = None

    @property
    def latent_dim(self) -> int:
        """Length of the generator's latent input z."""
        return int(self.config.latent_dim)


def is_loaded(path: Path) -> bool:
    """True when the file at path (as it is now) is already in memory: no wait to show."""
    return file_key(path) in GENERATORS


def load_served(path: Path):
    """(model, config, card) for a generator file, loaded once per process per (path, mtime)."""
    key = file_key(path)
    return GENERATORS.get_or_make(key, lambda: load_generator(key[0]))


def serve_with_fallback(chosen: GeneratorChoice, choices: list[GeneratorChoice], *,
                        detailed: bool = False) -> tuple[Served | None, str | None]:
    """(Served, None) for the chosen generator, else the shipped one with a warning; (None, reason) when none loads.

    detailed: the loader's own words (local mode); otherwise only what failed, never the library's message
    (Keras quotes the file's whole config in it).
    """
    problems = []
    for candidate in [chosen] + [c for c in choices if c.kind == "shipped" and c != chosen]:
        try:
            model, config, card = load_served(candidate.path)
        except (CheckpointError, OSError) as error:
            reason = " ".join(str(error).split()) if detailed else _brief(error)
            problems.append(f"{candidate.label}: {reason}")
            LOG.warning("generator unusable: %s", error)
            continue
        warning = None
        if problems:
            warning = f"The selected generator could not be loaded, serving {candidate.label} instead. " \
                      f"{without_paths(problems[0])}"
        return Served(model, config, card, candidate.path, candidate.label, warning), None
    return None, "No usable generator: " + " | ".join(without_paths(p) for p in problems)


def _brief(error: Exception) -> str:
    """The first clause of a loader's message ('x.keras could not be loaded as a generator'), without its details."""
    text = " ".join(str(error).split()).split(" (", 1)[0]
    return without_paths(text)[:160] if isinstance(error, CheckpointError) else "the file could not be read"

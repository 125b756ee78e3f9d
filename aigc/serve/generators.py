"""The served generator: loaded once per process per (path, mtime), with a fallback to the shipped one."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from aigc.engine.checkpoints import CheckpointError, load_generator, read_meta
from aigc.serve import warm
from aigc.serve.caches import GENERATORS, file_key
from aigc import settings
from aigc.runs.files import read_json
from aigc.runs.layout import list_runs
from aigc.settings import without_paths

LOG = logging.getLogger("aigc.serve.generators")
NEWEST = "Newest trained run"
RUN_PREFIX = "Run "  # a run's link name: 'Run run-20260101-120000' means that run, whatever is trained later
RUNS_LISTED = 20  # older runs offered besides the newest


@dataclass(frozen=True)
class GeneratorChoice:
    """One entry of the generator chooser: a label for people, a path chosen by the server."""

    label: str
    path: Path
    kind: str  # shipped | seed | run
    run: str | None = None  # the run's folder name (kind run)
    finished: bool = False  # the run's status says finished

    @property
    def name(self) -> str:
        """The chooser's entry: the label without what changes ('Newest trained run', 'Shipped', 'Run x')."""
        return self.label.split(" (")[0]

    @property
    def link(self) -> str:
        """What a link or a session remembers: 'Run <folder>' for a run (never 'Newest'), else the entry."""
        return RUN_PREFIX + self.run if self.kind == "run" and self.run else self.name


def generator_choices(*, root: Path | None = None) -> list[GeneratorChoice]:
    """Existing generators: shipped dcgan, shipped seed preset, the newest run that saved one, older such runs."""
    choices = []
    for preset, label, kind in (("dcgan", "Shipped (dcgan, conditional)", "shipped"),
                                ("seed", "Seed preset (unconditional)", "seed")):
        if settings.shipped_generator(preset).is_file():
            choices.append(GeneratorChoice(label, settings.shipped_generator(preset), kind))
    runs = [paths for paths in list_runs(root or settings.runs_root()) if paths.generator.is_file()]
    for index, paths in enumerate(runs[:RUNS_LISTED + 1]):
        label = f"{NEWEST} ({paths.name})" if index == 0 else RUN_PREFIX + paths.name
        finished = (read_json(paths.status) or {}).get("state") == "finished"
        choices.append(GeneratorChoice(label, paths.generator, "run", paths.name, finished))
    return choices


def find_choice(wanted: str | None, choices: list[GeneratorChoice]) -> GeneratorChoice | None:
    """The choice that a remembered or linked name (an entry or a link name, forged input) means; None when gone."""
    wanted = str(wanted or "")[:120]
    return next((choice for choice in choices if wanted and wanted in (choice.name, choice.link)), None)


def default_choice(choices: list[GeneratorChoice]) -> GeneratorChoice:
    """The shipped generator when there is one, else the first choice."""
    return next((choice for choice in choices if choice.kind == "shipped"), choices[0])


def finished_since(choices: list[GeneratorChoice], seen) -> list[GeneratorChoice]:
    """Runs that finished and are not in `seen` (link names), newest first."""
    return [choice for choice in choices if choice.kind == "run" and choice.finished and choice.link not in seen]


@dataclass(frozen=True)
class Served:
    """The generator the page serves: config, card, where it came from, any warning; the model when asked for."""

    config: object
    card: dict
    path: Path
    label: str
    warning: str | None = None

    @property
    def model(self):
        """The Keras generator, from the process's cache (loaded there at the first use after a server start: a page
        whose results are all cached, such as the first visit's default grid from the warm store, never waits)."""
        return load_served(self.path)[0]

    @property
    def latent_dim(self) -> int:
        """Length of the generator's latent input z."""
        return int(self.config.latent_dim)


def is_loaded(path: Path) -> bool:
    """True when the file at path (as it is now) is already in memory: no wait to show."""
    return file_key(path) in GENERATORS


BEFORE_FIRST_LOAD: list = []  # run once before this process loads its first generator (a server tunes TensorFlow)
_BEFORE_LOCK = threading.Lock()  # two first loads at once: the second waits until the hooks have run


def load_served(path: Path):
    """(model, config, card) for a generator file, loaded once per process per (path, mtime)."""
    key = file_key(path)

    def make():
        with _BEFORE_LOCK:
            while BEFORE_FIRST_LOAD:
                BEFORE_FIRST_LOAD.pop()()
        return load_generator(key[0])
    return GENERATORS.get_or_make(key, make)


def serve_with_fallback(chosen: GeneratorChoice, choices: list[GeneratorChoice], *,
                        detailed: bool = False) -> tuple[Served | None, str | None]:
    """(Served, None) for the chosen generator, else the shipped one with a warning; (None, reason) when none loads.

    detailed: the loader's own words (local mode); otherwise only what failed, never the library's message
    (Keras quotes the file's whole config in it).
    """
    problems = []
    for candidate in [chosen] + [c for c in choices if c.kind == "shipped" and c != chosen]:
        try:
            # A file the warm store was made from loaded then, byte for byte: its settings suffice until a page
            # computes something (the load, TensorFlow's import included, is ~10 s on a cold server).
            config, card = read_meta(candidate.path) if warm.prime(candidate.path) and not is_loaded(candidate.path) \
                else load_served(candidate.path)[1:]
        except (CheckpointError, OSError) as error:
            reason = " ".join(str(error).split()) if detailed else _brief(error)
            problems.append(f"{candidate.label}: {reason}")
            LOG.warning("generator unusable: %s", error)
            continue
        warning = None
        if problems:
            warning = f"The selected generator could not be loaded, serving {candidate.label} instead. " \
                      f"{without_paths(problems[0])}"
        return Served(config, card, candidate.path, candidate.label, warning), None
    return None, "No usable generator: " + " | ".join(without_paths(p) for p in problems)


def _brief(error: Exception) -> str:
    """The first clause of a loader's message ('x.keras could not be loaded as a generator'), without its details."""
    text = " ".join(str(error).split()).split(" (", 1)[0]
    return without_paths(text)[:160] if isinstance(error, CheckpointError) else "the file could not be read"

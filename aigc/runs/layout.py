"""Where each file of a run directory lives, and how runs are found under the runs root."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from aigc.runs.files import TEMP_SUFFIX


@dataclass(frozen=True)
class RunPaths:
    """Every file of one run directory."""

    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def status(self) -> Path:
        return self.root / "status.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def generator(self) -> Path:
        return self.root / "generator.keras"

    @property
    def discriminator(self) -> Path:
        return self.root / "discriminator.keras"

    @property
    def snapshots(self) -> Path:
        return self.root / "generators"

    @property
    def ckpt(self) -> Path:
        return self.root / "ckpt"

    @property
    def tb(self) -> Path:
        return self.root / "tb"

    @property
    def log(self) -> Path:
        return self.root / "train.log"

    @property
    def stop(self) -> Path:
        return self.root / "STOP"

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def live_sample(self) -> Path:
        """The sample grid of the first epoch in progress (rewritten at each probe)."""
        return self.samples / "live.png"

    def sample_path(self, epoch: int) -> Path:
        return self.samples / f"epoch_{epoch:04d}.png"

    @property
    def inside(self) -> Path:
        """The per-epoch look inside the GAN (engine/inside.py): D's score per sample tile, the feature map."""
        return self.root / "inside"

    def inside_path(self, epoch: int) -> Path:
        return self.inside / f"epoch_{epoch:04d}.json"

    def sample_files(self) -> list[Path]:
        """Per-epoch sample grids, oldest first."""
        return sorted(self.samples.glob("epoch_*.png")) if self.samples.is_dir() else []

    def leftovers(self) -> list[Path]:
        """Half-written files and folders a killed trainer can leave: .NAME.*.tmp files and ckpt-N_temp folders."""
        found = []
        for folder in (self.root, self.samples, self.snapshots, self.inside):
            if folder.is_dir():
                found += [p for p in folder.iterdir() if p.name.startswith(".") and TEMP_SUFFIX in p.name]
        if self.ckpt.is_dir():
            found += [p for p in self.ckpt.iterdir() if p.name.endswith("_temp")]
        return sorted(found)

    def size_bytes(self) -> int:
        """Disk space the run takes (files only, links not followed)."""
        total = 0
        for folder, _dirs, names in os.walk(self.root):
            for name in names:
                try:
                    total += os.lstat(os.path.join(folder, name)).st_size
                except OSError:
                    continue
        return total


def list_runs(runs_root: Path) -> list[RunPaths]:
    """Run directories at any depth under runs_root (a folder with a status.json), newest first."""
    root = Path(runs_root)
    if not root.is_dir():
        return []
    runs = []
    for folder, dirs, names in os.walk(root):
        if "status.json" in names:
            runs.append(RunPaths(Path(folder)))
            dirs[:] = []  # a run's own subfolders (ckpt, samples...) hold no runs
        else:
            dirs[:] = [d for d in dirs if not d.startswith(".")]

    def updated(paths: RunPaths) -> float:
        try:
            return paths.status.stat().st_mtime
        except OSError:
            return 0.0

    return sorted(runs, key=updated, reverse=True)

"""Generator files carry their ModelConfig: loading rebuilds the right preset."""
import os
from pathlib import Path

import numpy as np
import pytest

from aigc.engine.checkpoints import CheckpointError, load_generator, read_meta, save_model_file, sibling_discriminator
from aigc.engine.spec import ModelConfig
from aigc.engine.models import build_generator


@pytest.mark.parametrize("preset", ["dcgan", "seed"])
def test_roundtrip_rebuilds_preset(tmp_path, preset):
    config = ModelConfig(preset=preset, latent_dim=32)
    model = build_generator(config)
    path = tmp_path / "generator.keras"
    save_model_file(model, path, config=config, card={"epochs": 3})
    loaded, loaded_config, card = load_generator(path)
    assert loaded_config == config and card == {"epochs": 3}
    z = np.ones((2, 32), np.float32)
    inputs = [z, np.array([1, 2], np.int32)] if config.conditional else z
    np.testing.assert_allclose(loaded(inputs, training=False), model(inputs, training=False), atol=1e-6)
    assert not list(tmp_path.glob("*.tmp*")), "no temporary file may be left behind"


def test_missing_and_bad_files(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_generator(tmp_path / "nope.keras")
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(CheckpointError, match="not an aigc generator"):
        load_generator(bad)
    with pytest.raises(CheckpointError, match="folder"):
        read_meta(tmp_path)


def test_truncated_file_is_a_clear_error(tmp_path):
    config = ModelConfig(preset="seed", latent_dim=8)
    path = tmp_path / "generator.keras"
    save_model_file(build_generator(config), path, config=config)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError):
        load_generator(path)


def test_sibling_discriminator(tmp_path):
    generator = tmp_path / "seed_generator.keras"
    assert sibling_discriminator(generator) is None
    (tmp_path / "seed_discriminator.keras").write_bytes(b"x")
    assert sibling_discriminator(generator) == tmp_path / "seed_discriminator.keras"


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_atomic_writes_get_the_usual_mode_not_mkstemps_0600(tmp_path, umask, mode):
    """A container's other user must read what the trainer writes: the mode follows the umask like open() does."""
    import os
    import stat
    import subprocess
    import sys

    script = (f"import os; os.umask({umask}); from pathlib import Path; from aigc.runs.files import atomic_write_bytes; "
              f"atomic_write_bytes(Path({str(tmp_path / 'status.json')!r}), b'{{}}')")
    subprocess.run([sys.executable, "-c", script], check=True, cwd=Path(__file__).resolve().parent.parent)
    assert stat.S_IMODE(os.stat(tmp_path / "status.json").st_mode) == mode


def test_every_keras_file_is_on_disk_before_its_name_points_at_it(tmp_path, monkeypatch):
    """The evaluator's save replaced the file without fsync: a power cut could leave an empty evaluator.keras."""
    import keras

    from aigc.quality import evaluator_train

    synced, real_fsync = [], os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or real_fsync(fd))
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    evaluator_train.save_model(model, tmp_path / "evaluator.keras")
    config = ModelConfig(preset="seed", latent_dim=8)
    save_model_file(build_generator(config), tmp_path / "generator.keras", config=config)
    assert len(synced) == 2 and all(Path(name).parent == tmp_path and name.endswith(".keras") for name in synced)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evaluator.keras", "generator.keras"]  # no temporary left
    assert keras.models.load_model(tmp_path / "evaluator.keras").count_params() == 3

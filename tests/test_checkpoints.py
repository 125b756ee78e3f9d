"""Generator files carry their ModelConfig: loading rebuilds the right preset."""
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


def test_atomic_writes_are_readable_by_others(tmp_path):
    import os
    import stat

    from aigc.runs.files import _UMASK, atomic_write_bytes

    atomic_write_bytes(tmp_path / "status.json", b"{}")
    mode = stat.S_IMODE(os.stat(tmp_path / "status.json").st_mode)
    assert mode == 0o666 & ~_UMASK, "a container user must be able to read files the trainer writes"

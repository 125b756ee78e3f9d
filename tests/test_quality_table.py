"""The README's quality table is regenerated from the evaluator's JSON, and that JSON belongs to the shipped files."""

import json
import shutil

import pytest

from bench import quality_table as qt


@pytest.mark.parametrize("stem", [stem for _, stem, _ in qt.SHIPPED])
@pytest.mark.parametrize("seed", qt.SEEDS)
def test_the_shipped_eval_json_was_made_from_the_shipped_file_with_its_seed(stem, seed):
    evaluation = json.loads(qt.eval_path(stem, seed).read_text())
    shipped_card = qt.card_of(qt.ROOT / "checkpoints" / f"{stem}.keras")
    assert evaluation["card"]["saved_at"] == shipped_card["saved_at"], (
        f"checkpoints/{stem}.keras changed after its evaluation: run python -m bench.quality_table --eval")
    assert (evaluation["seed"], evaluation["n"], evaluation["checkpoint"]) == (seed, 10_000, f"checkpoints/{stem}.keras")
    assert evaluation["precision"] is not None and evaluation["recall"] is not None


def test_the_readmes_quality_table_is_what_the_json_renders():
    assert qt.is_current(), "README.md's quality table is stale: run python -m bench.quality_table"
    assert qt.main(["--check"]) == 0


def test_a_figure_typed_into_the_table_or_changed_in_the_json_is_caught(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    for _, stem, _ in qt.SHIPPED:
        for seed in qt.SEEDS:
            shutil.copy(qt.eval_path(stem, seed), qt.eval_path(stem, seed, tmp_path))
    shutil.copy(qt.ROOT / "README.md", tmp_path / "README.md")
    assert qt.is_current(tmp_path)
    readme = (tmp_path / "README.md").read_text()
    fdd = f"{json.loads(qt.eval_path('generator', 0).read_text())['fdd']:.2f}"
    start = readme.index(qt.BEGIN)
    row = readme.index(fdd, start)
    (tmp_path / "README.md").write_text(readme[:row] + "1.00" + readme[row + len(fdd):])
    assert not qt.is_current(tmp_path)
    (tmp_path / "README.md").write_text(readme)
    evaluation = json.loads(qt.eval_path("generator", 1, tmp_path).read_text())
    evaluation["recall"] = 0.5
    qt.eval_path("generator", 1, tmp_path).write_text(json.dumps(evaluation))
    assert not qt.is_current(tmp_path)
    assert "| 0.500 |" in qt.render(tmp_path) or " / 0.500 |" in qt.render(tmp_path)


def test_the_readme_without_its_markers_is_a_clear_error():
    with pytest.raises(SystemExit, match="markers"):
        qt.splice("# README\n", "table")

"""Improved precision and recall (Kynkäänniemi et al. 2019) against the paper's definition: hand-computed cases,
known answers on toy clusters, a brute-force reference, bounded blocks, and the evaluator's stored test features."""
import json

import numpy as np
import pytest

from aigc.quality import metrics, precision_recall as pr


def brute_force(real, generated, k):
    """The paper's definition, written out with the full distance matrices in float64."""
    def radii(points):
        distances = np.linalg.norm(points[:, None] - points[None, :], axis=-1)
        return np.sort(distances, axis=1)[:, k]  # column 0 is the point itself

    cross = np.linalg.norm(generated[:, None] - real[None, :], axis=-1)  # (M, N)
    precision = (cross <= radii(real)[None, :]).any(axis=1).mean()
    recall = (cross <= radii(generated)[:, None]).any(axis=0).mean()
    return precision, recall


def clusters(centres, per_cluster, *, seed, spread=1.0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(c, spread, (per_cluster, len(c))) for c in np.asarray(centres, float)])


# One-dimensional points, worked by hand in the comments.
REAL = np.array([[0.0], [1.0], [3.0], [7.0], [8.0]])
GENERATED = np.array([[0.5], [1.5], [4.5], [5.5], [20.0], [21.0]])


def test_radii_are_the_kth_neighbour_distance_without_the_point_itself():
    # k = 1: 0->1, 1->0, 3->1 (2), 7->8, 8->7; k = 3: 0->7, 1->7 (6), 3->7 (4), 7->1 (6), 8->1 (7). Squared, float32.
    assert pr.squared_knn_radii(REAL, k=1) == pytest.approx([1, 1, 4, 1, 1], rel=1e-5)
    assert pr.squared_knn_radii(REAL, k=3) == pytest.approx([49, 36, 16, 36, 49], rel=1e-5)


def test_hand_computed_case_with_k_1():
    # Real balls: [-1,1] [0,2] [1,5] [6,8] [7,9] -> 0.5, 1.5, 4.5 inside; 5.5, 20, 21 outside: precision 3/6.
    # Generated balls (radius 1 each): [-0.5,2.5] [3.5,6.5] [19,22] -> real 0, 1 covered; 3, 7, 8 not: recall 2/5.
    result = pr.precision_recall(REAL, GENERATED, k=1)
    assert (result.precision, result.recall) == (pytest.approx(0.5), pytest.approx(0.4))
    assert result.realistic.tolist() == [True, True, True, False, False, False]
    assert result.covered.tolist() == [True, True, False, False, False]


def test_hand_computed_case_with_k_3():
    # Real balls reach [-7, 15]: the four points below 6 are inside, 20 and 21 are not (4/6).
    # Generated radii 5, 4, 4, 5, 15.5, 16.5 cover [-4.5, 37.5]: every real point (5/5).
    result = pr.precision_recall(REAL, GENERATED, k=3)
    assert (result.precision, result.recall) == (pytest.approx(4 / 6), pytest.approx(1.0))


def test_identical_sets_score_one_and_far_clusters_zero():
    real = clusters([[0, 0, 0]], 300, seed=0)
    same = pr.precision_recall(real, real.copy())
    assert (same.precision, same.recall) == (1.0, 1.0)
    far = pr.precision_recall(real, real + 1000.0)
    assert (far.precision, far.recall) == (0.0, 0.0)


def test_a_generator_covering_half_the_modes_is_precise_with_half_the_recall():
    centres = [[0, 0], [50, 0], [0, 50], [50, 50]]
    real = clusters(centres, 250, seed=1)
    generated = clusters(centres[:2], 500, seed=2)  # fresh draws from two of the four modes, as many points
    result = pr.precision_recall(real, generated)
    assert result.precision > 0.95, result.precision
    assert 0.4 < result.recall <= 0.5, result.recall
    assert not result.covered[500:].any()  # the two missing modes: no real point of theirs is covered


@pytest.mark.parametrize("k", [1, 3, 5])
def test_agrees_with_the_definition_written_out(k):
    real = clusters([[0] * 8, [3] * 8], 120, seed=3)
    generated = clusters([[0.5] * 8, [6] * 8], 90, seed=4, spread=1.3)
    result = pr.precision_recall(real, generated, k=k)
    precision, recall = brute_force(real, generated, k)
    # float32 against float64: a point exactly on a ball's edge may fall either way, so one point of slack.
    assert result.precision == pytest.approx(precision, abs=1 / 90)
    assert result.recall == pytest.approx(recall, abs=1 / 240)


def test_small_blocks_give_the_same_answer(monkeypatch):
    real, generated = clusters([[0] * 16], 400, seed=5), clusters([[0.3] * 16], 300, seed=6)
    whole = pr.precision_recall(real, generated)
    monkeypatch.setattr(pr, "BLOCK_FLOATS", 1000)  # 2-3 rows per block
    blocked = pr.precision_recall(real, generated)
    assert np.array_equal(whole.realistic, blocked.realistic) and np.array_equal(whole.covered, blocked.covered)


def test_too_few_points_and_mismatched_features_are_refused():
    with pytest.raises(AssertionError, match="more than k"):
        pr.squared_knn_radii(np.zeros((3, 2)), k=3)
    with pytest.raises(AssertionError, match="same D"):
        pr.precision_recall(np.zeros((10, 2)), np.zeros((10, 3)))


def test_against_reference_uses_equal_counts_and_reports_recall_per_digit():
    real = clusters([[10 * d, 0] for d in range(10)], 40, seed=7)
    labels = np.repeat(np.arange(10), 40)
    generated = clusters([[10 * d, 0] for d in range(9)], 20, seed=8)  # no 9s, 180 points
    found = pr.against_reference(generated, real, labels)
    assert found["pr_n"] == 180 and found["pr_k"] == 3
    assert found["per_class_recall"][9] == 0.0 and min(found["per_class_recall"][:9]) > 0.5
    assert pr.real_subset(400, 180).tolist() == pr.real_subset(400, 180).tolist()  # the same real points each time
    assert pr.against_reference(generated[:3], real, labels) == {}  # 3 points cannot have 3 neighbours
    diverged = generated.copy()
    diverged[5] = np.nan  # a diverged generator: no figures rather than NaN comparisons
    assert pr.against_reference(diverged, real, labels)["precision"] is None


def test_ten_thousand_points_each_stay_within_the_block_budget(monkeypatch):
    # The whole 10,000 x 10,000 matrix would be 400 MB in float32; every block must stay at or under 64 MB.
    shapes = []
    original = pr._squared_distances

    def recorded(rows, row_norms, columns, column_norms, out):
        shapes.append(out.shape)
        return original(rows, row_norms, columns, column_norms, out)

    monkeypatch.setattr(pr, "_squared_distances", recorded)
    features = np.random.default_rng(9).random((10_000, 128), np.float32)
    result = pr.precision_recall(features[:5000], features[5000:])
    assert 0.0 < result.precision <= 1.0 and max(r * c for r, c in shapes) * 4 <= 64 * 2**20


def fake_evaluator(features, labels, pr_ladder=None):
    """An Evaluator without a model: reference stats and test features only (metrics never call the model here)."""
    reference = metrics.Reference(features=features.astype(np.float32), labels=labels, pr_ladder=pr_ladder or {})
    mu, sigma = metrics.feature_stats(features)
    return metrics.Evaluator(model=None, mu=mu, sigma=sigma, ladder={"floor": 0.5}, info={"ladder_n": len(features)},
                             reference=reference)


def test_evaluate_features_carries_precision_recall_and_per_digit_figures():
    real = clusters([[4 * d] * 4 for d in range(10)], 30, seed=10)
    labels = np.repeat(np.arange(10), 30)
    evaluator = fake_evaluator(real, labels, {"floor": {"precision": 0.9, "recall": 0.8}})
    generated = clusters([[4 * d] * 4 for d in range(10)], 30, seed=11)
    probs = np.eye(10)[labels]
    result = metrics.evaluate_features(generated, probs, labels, evaluator=evaluator, per_digit=True)
    assert result["precision"] > 0.8 and result["recall"] > 0.8 and result["pr_n"] == 300
    assert len(result["per_class_recall"]) == 10 and len(result["per_class_fdd"]) == 10
    assert all(v >= 0 for v in result["per_class_fdd"]) and result["pr_ladder"]["floor"]["recall"] == 0.8
    summary = metrics.summary(result)
    assert summary["precision"] == round(result["precision"], 4) and summary["recall"] == round(result["recall"], 4)
    json.dumps(result["per_class_fdd"] + result["per_class_recall"])  # plain floats: eval --json prints them


def test_stats_without_test_features_still_give_fdd(tmp_path):
    features = clusters([[0] * 4], 50, seed=12)
    evaluator = fake_evaluator(features, np.zeros(50, np.int64))
    plain = metrics.Evaluator(model=None, mu=evaluator.mu, sigma=evaluator.sigma, ladder={}, info={})
    result = metrics.evaluate_features(features, np.full((50, 10), 0.1), evaluator=plain, per_digit=True)
    assert result["fdd"] is not None and result["precision"] is None and result["per_class_fdd"] is None
    assert metrics.summary(result)["precision"] is None


def test_stats_round_trip_with_float16_features(tmp_path):
    features = np.random.default_rng(13).random((40, 6)) * 5
    labels = np.arange(40) % 10
    reference = metrics.Reference(features=features, labels=labels,
                                  pr_ladder={"floor": {"precision": 0.87, "recall": 0.88}})
    path = tmp_path / "stats.npz"
    metrics.write_stats(path, features.mean(0), np.cov(features, rowvar=False), {"floor": 0.7}, {}, reference=reference)
    back = metrics.read_reference(path)
    assert back.features.dtype == np.float32 and np.allclose(back.features, features, rtol=1e-3)
    assert back.labels.tolist() == labels.tolist() and back.pr_ladder == reference.pr_ladder
    metrics.write_stats(path, features.mean(0), np.cov(features, rowvar=False), {"floor": 0.7}, {})
    assert metrics.read_reference(path) is None  # older stats: no features, no error


needs_evaluator = pytest.mark.skipif(not metrics.evaluator_available(), reason="shipped evaluator missing")


@needs_evaluator
def test_the_shipped_stats_carry_the_test_set_and_its_ceiling():
    evaluator = metrics.load_evaluator()
    assert evaluator.reference is not None and evaluator.reference.features.shape == (10_000, 128)
    assert np.bincount(evaluator.reference.labels).tolist()[0] == 980  # MNIST test: 980 zeros
    ladder = evaluator.reference.pr_ladder
    assert list(ladder) == list(metrics.LADDER_NAMES)
    # Real training digits are the ceiling for recall; texture damage (noise, blur) leaves the real manifold.
    assert ladder["floor"]["recall"] == max(pr["recall"] for pr in ladder.values())
    assert ladder["noise_0.1"]["precision"] < ladder["floor"]["precision"]
    # The stored features still match the stored statistics (float16 rounding only).
    assert np.abs(evaluator.reference.features.mean(axis=0) - evaluator.mu).max() < 1e-2

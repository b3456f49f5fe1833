"""Similar concepts of other classes: the brute-force answer, whether computed at once, in blocks or
kept from an earlier build as classes are added, redone or removed."""

import numpy as np
import pytest

from xplique_maco._apps.lens import similar as similar_module
from xplique_maco._apps.lens.similar import TOP, read_similar, similar_concepts, to_bytes


def random_lens(classes, nb_concepts=4, channels=16, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    return {index: rng.uniform(0, 1, (nb_concepts, channels)).astype(np.float32) for index in classes}


def compute(vectors: dict, stamps: dict | None = None, previous=None, calls: list | None = None):
    classes = sorted(vectors)

    def load():
        if calls is not None:
            calls.append(1)
        return [vectors[index] for index in classes]

    return similar_concepts(
        classes,
        [(stamps or {}).get(index, (0, 0)) for index in classes],
        [len(vectors[index]) for index in classes],
        load,
        previous,
    )


def brute_force(vectors: dict) -> list[list[tuple[int, int, float]]]:
    """Each concept's TOP concepts of other classes by cosine, from the whole matrix."""
    rows = [(index, rank, vector) for index in sorted(vectors) for rank, vector in enumerate(vectors[index])]
    unit = np.stack([vector / np.linalg.norm(vector) for _, _, vector in rows]).astype(np.float64)
    cosines = unit @ unit.T
    answer = []
    for row, (index, _, _) in enumerate(rows):
        others = [column for column, (other, _, _) in enumerate(rows) if other != index]
        best = sorted(others, key=lambda column: -cosines[row, column])[:TOP]
        answer.append([(rows[column][0], rows[column][1], cosines[row, column]) for column in best])
    return answer


def assert_matches(result, vectors):
    expected = brute_force(vectors)
    for row, wanted in enumerate(expected):
        got = [
            (int(c), int(r), float(v))
            for c, r, v in zip(
                result.neighbour_class[row], result.neighbour_rank[row], result.cosine[row], strict=True
            )
            if c >= 0
        ]
        assert [(c, r) for c, r, _ in got] == [(c, r) for c, r, _ in wanted], row
        np.testing.assert_allclose([v for *_, v in got], [v for *_, v in wanted], atol=1e-5)


def test_every_concept_gets_the_nearest_concepts_of_other_classes(monkeypatch):
    vectors = random_lens([0, 3, 4, 9, 12])
    assert_matches(compute(vectors), vectors)
    monkeypatch.setattr(similar_module, "_BLOCK", 3)  # blocks smaller than a class: the same answer
    assert_matches(compute(vectors), vectors)


def test_a_lone_class_or_few_concepts_leave_empty_slots():
    alone = compute(random_lens([2]))
    assert (alone.neighbour_class == -1).all() and np.isneginf(alone.cosine).all()
    two = compute({0: np.ones((1, 4), np.float32), 1: np.ones((1, 4), np.float32)})
    assert two.neighbour_class.tolist() == [[1, -1, -1], [0, -1, -1]]
    np.testing.assert_allclose(two.cosine[:, 0], 1.0, atol=1e-6)
    empty = compute({})
    assert empty.neighbour_class.shape == (0, TOP)


def test_a_rebuild_compares_only_what_changed_and_gives_the_full_answer(monkeypatch):
    vectors = random_lens([0, 1, 2, 3])
    calls = []
    first = compute(vectors, calls=calls)
    assert compute(vectors, previous=first, calls=calls) is first  # nothing new: nothing loaded
    assert len(calls) == 1
    vectors.update(random_lens([4, 7], seed=1))  # a new batch of classes
    products = []
    nearest = similar_module._nearest
    monkeypatch.setattr(
        similar_module,
        "_nearest",
        lambda vectors, owner, ranks, rows, columns: (
            products.append((len(rows), len(columns))) or nearest(vectors, owner, ranks, rows, columns)
        ),
    )
    grown = compute(vectors, previous=first, calls=calls)
    assert products == [(8, 24), (16, 8)]  # the new concepts with all; the others with the new ones
    assert_matches(grown, vectors)
    # Class 2 redone (a new vectors file, so a new stamp): rows that named it are compared again.
    vectors[2] = np.random.default_rng(5).uniform(0, 1, (4, 16)).astype(np.float32)
    redone = compute(vectors, stamps={2: (1, 1)}, previous=grown)
    assert_matches(redone, vectors)
    del vectors[4]  # a class left off (its files went missing)
    assert_matches(compute(vectors, stamps={2: (1, 1)}, previous=redone), vectors)


def test_a_concept_shared_by_two_classes_links_them():
    vectors = random_lens([0, 1, 2])
    vectors[2][3] = vectors[0][1] * 2.0  # the same direction, another scale
    result = compute(vectors)
    assert (result.neighbour_class[1, 0], result.neighbour_rank[1, 0]) == (2, 3)  # class 0, rank 1
    assert (result.neighbour_class[11, 0], result.neighbour_rank[11, 0]) == (0, 1)  # class 2, rank 3
    np.testing.assert_allclose(result.cosine[[1, 11], 0], 1.0, atol=1e-6)


def test_the_stored_result_is_read_back_or_ignored(tmp_path):
    result = compute(random_lens([0, 1]))
    path = tmp_path / "similar.npz"
    path.write_bytes(to_bytes(result))
    again = read_similar(path)
    for name in ("classes", "stamps", "counts", "neighbour_class", "neighbour_rank", "cosine"):
        np.testing.assert_array_equal(getattr(again, name), getattr(result, name))
    path.write_bytes(b"not an npz")
    assert read_similar(path) is None
    assert read_similar(tmp_path / "absent.npz") is None


@pytest.mark.parametrize("block", [1, 2, 1024])
def test_blocks_of_any_size_agree(monkeypatch, block):
    vectors = random_lens([1, 2, 3], nb_concepts=2, channels=5, seed=3)
    monkeypatch.setattr(similar_module, "_BLOCK", block)
    assert_matches(compute(vectors), vectors)

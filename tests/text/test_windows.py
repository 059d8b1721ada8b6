"""ContextWindows: batches cut from a corpus as needed equal the whole corpus's windows."""

import numpy as np
import pytest

from tinygrad_nlp.text import ContextWindows, build_id_file, create_contexts_target, keep_probabilities, open_id_file


def collect(source, batch_size, seed, shuffle=True):
    rng = np.random.default_rng(seed)
    parts = list(source.batches(batch_size, rng, shuffle))
    return np.concatenate([c for c, _ in parts]), np.concatenate([t for _, t in parts]), [len(t) for _, t in parts]


def test_one_block_gives_create_contexts_target_in_the_trainers_order():
    corpus = np.random.default_rng(0).integers(0, 50, 1000).astype(np.int32)
    contexts, target = create_contexts_target(corpus, 3)
    order = np.random.default_rng(7).permutation(len(target))  # what Trainer.fit does with arrays
    c, t, sizes = collect(ContextWindows(corpus, 3), 64, seed=7)
    np.testing.assert_array_equal(c, contexts[order])
    np.testing.assert_array_equal(t, target[order])
    assert sizes[:-1] == [64] * (len(sizes) - 1)


@pytest.mark.parametrize("block_size", [1, 5, 97, 10_000])
def test_blocks_cover_every_window_once(block_size):
    corpus = np.random.default_rng(1).integers(0, 30, 500).astype(np.int32)
    contexts, target = create_contexts_target(corpus, 2)
    source = ContextWindows(corpus, 2, block_size=block_size)
    assert source.num_targets == len(target)
    c, t, _ = collect(source, 16, seed=3)
    rows = lambda c, t: sorted(map(tuple, np.column_stack([c, t]).tolist()))  # noqa: E731
    assert rows(c, t) == rows(contexts, target)
    c2, t2, _ = collect(source, 16, seed=3, shuffle=False)  # in corpus order without shuffling
    np.testing.assert_array_equal(t2, target)
    np.testing.assert_array_equal(c2, contexts)


def test_a_memory_mapped_id_file_trains_like_the_array(tmp_path):
    words = np.random.default_rng(2).integers(0, 40, 3000)
    (tmp_path / "c.txt").write_text("\n".join(" ".join(f"w{i}" for i in words[a:a + 30]) for a in range(0, 3000, 30)))
    build_id_file(tmp_path / "c.txt", tmp_path / "ids.npy")
    ids = open_id_file(tmp_path / "ids.npy")
    in_memory = np.array(ids)
    a = collect(ContextWindows(ids, 2, block_size=256), 50, seed=0)
    b = collect(ContextWindows(in_memory, 2, block_size=256), 50, seed=0)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_subsampling_is_drawn_per_epoch_and_follows_the_keep_probabilities():
    rng = np.random.default_rng(4)
    corpus = np.where(rng.random(200_000) < 0.5, 0, rng.integers(1, 1000, 200_000)).astype(np.int32)
    counts = np.bincount(corpus)
    keep = keep_probabilities(counts, t=1e-3)
    source = ContextWindows(corpus, 2, keep=keep, block_size=50_000)
    _, t1, _ = collect(source, 1000, seed=0)
    _, t2, _ = collect(source, 1000, seed=1)
    assert len(t1) != len(t2)  # redrawn every epoch
    # word 0 makes half the corpus; it is kept with probability keep[0]
    share = np.mean(t1 == 0) * len(t1) / (counts[0])
    assert abs(share - keep[0]) < 0.01
    assert abs(source.num_targets - len(t1)) < 0.01 * len(t1)
    # rare words are always kept: every occurrence of them is a target (except near the ends)
    assert np.sum(t1 == 500) >= counts[500] - 2


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="1-D"):
        ContextWindows(np.zeros((2, 3), np.int32), 1)
    with pytest.raises(ValueError, match="fewer than 2 \\* window_size \\+ 1"):
        ContextWindows(np.arange(4), 2)
    with pytest.raises(ValueError, match="window_size"):
        ContextWindows(np.arange(10), 0)
    with pytest.raises(ValueError, match="integer word ids"):
        ContextWindows(np.zeros(10), 1)
    with pytest.raises(ValueError, match="probabilities"):
        ContextWindows(np.arange(10), 1, keep=np.full(10, 2.0))
    with pytest.raises(ValueError, match="batch_size"):
        next(ContextWindows(np.arange(10), 1).batches(0, np.random.default_rng()))

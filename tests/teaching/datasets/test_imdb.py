"""Tests of `kerasrnn.teaching.datasets.imdb` on small aclImdb-layout fixtures written
in a temporary folder (and as a `.tar.gz`), on `tensorflow_datasets`' mock
data and on a stand-in for `keras.datasets.imdb`. Every check reads the
fixture's files independently of the loader and compares."""

import collections
import gzip
import os
import tarfile

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from kerasrnn.teaching.datasets import imdb  # noqa: E402
from kerasrnn.teaching.datasets.imdb import load_imdb, write_sample_aclimdb  # noqa: E402

# Unequal class and split sizes, so that a swapped label or split shows.
COUNTS = {"train/pos": 12, "train/neg": 8, "test/pos": 5, "test/neg": 7}


def read_fixture(folder):
    """{split: {text: label}} read straight from the files, pos = 1."""
    expected = {}
    for split in ("train", "test"):
        expected[split] = {}
        for label, name in ((0, "neg"), (1, "pos")):
            directory = os.path.join(folder, split, name)
            for filename in os.listdir(directory):
                with open(os.path.join(directory, filename), encoding="utf-8") as f:
                    expected[split][f.read()] = label
    return expected


def pairs(dataset):
    out = []
    for texts, labels in dataset:
        texts, labels = np.atleast_1d(texts.numpy()), np.atleast_1d(labels.numpy())
        out += [(t.decode("utf-8"), int(y)) for t, y in zip(texts, labels)]
    return out


@pytest.fixture
def fixture_folder(tmp_path):
    return write_sample_aclimdb(tmp_path / "data", COUNTS, seed=3)


def test_folder_gives_right_labels_counts_and_splits(fixture_folder, tmp_path):
    data = load_imdb(fixture_folder, validation_split=0.25, seed=0, cache_dir=tmp_path)
    expected = read_fixture(fixture_folder)
    train, validation, test = (
        pairs(data.train),
        pairs(data.validation),
        pairs(data.test),
    )

    # Stratified hold-out: round(0.25 * 12) positives, round(0.25 * 8) negatives.
    assert data.num_examples == {"train": 15, "validation": 5, "test": 12}
    assert len(train) == 15 and len(validation) == 5 and len(test) == 12
    assert collections.Counter(y for _, y in validation) == {1: 3, 0: 2}
    # Every review keeps the label of its folder; validation comes from train.
    for text, label in train + validation:
        assert expected["train"][text] == label
    for text, label in test:
        assert expected["test"][text] == label
    assert {t for t, _ in train} | {t for t, _ in validation} == set(expected["train"])
    assert not {t for t, _ in train} & {t for t, _ in validation}
    assert {t for t, _ in test} == set(expected["test"])
    assert data.source == "directory"
    adapt_texts = [
        t.decode("utf-8") for batch in data.train_texts for t in batch.numpy()
    ]
    assert sorted(adapt_texts) == sorted(t for t, _ in train)


def review_ids_by_text(folder, split="train"):
    """{text: (label, id)} with the id read from each file's name."""
    out = {}
    for label, name in ((0, "neg"), (1, "pos")):
        directory = os.path.join(folder, split, name)
        for filename in os.listdir(directory):
            with open(os.path.join(directory, filename), encoding="utf-8") as f:
                out[f.read()] = (label, int(filename.split("_")[0]))
    return out


def test_id_block_split_holds_out_whole_blocks_of_each_class(
    fixture_folder, tmp_path, monkeypatch
):
    # Blocks of 2 ids: 6 positive blocks and 4 negative ones; a quarter of
    # each, rounded, is 2 and 1 blocks held out.
    monkeypatch.setattr(imdb, "ID_BLOCK_SIZE", 2)
    data = load_imdb(
        fixture_folder,
        validation_split=0.25,
        validation_split_by="id_blocks",
        cache_dir=tmp_path,
    )
    truth = review_ids_by_text(fixture_folder)
    train, validation = pairs(data.train), pairs(data.validation)
    assert data.num_examples == {"train": 14, "validation": 6, "test": 12}
    assert collections.Counter(y for _, y in validation) == {1: 4, 0: 2}
    assert {t for t, _ in train} | {t for t, _ in validation} == set(truth)
    assert not {t for t, _ in train} & {t for t, _ in validation}
    for text, label in train + validation:
        assert truth[text][0] == label
    # Each class's ids in order, cut in twos: every block lies wholly on one side.
    held_out = {t for t, _ in validation}
    for label in (0, 1):
        texts = sorted((i, t) for t, (y, i) in truth.items() if y == label)
        for k in range(0, len(texts), 2):
            sides = {t in held_out for _, t in texts[k : k + 2]}
            assert len(sides) == 1, f"block {k // 2} of class {label} is split"


def test_id_block_split_is_seeded_and_draws_different_blocks_per_seed():
    ids = np.arange(40)
    labels = np.repeat([0, 1], 20)
    texts = np.array([f"r{i}" for i in ids], dtype=object)

    def held_out(seed):
        _, (val_texts, _) = imdb.split_validation_by_id_blocks(
            texts, labels, ids, validation_split=0.2, seed=seed, block_size=4
        )
        return sorted(val_texts)

    assert held_out(0) == held_out(0)
    assert len({tuple(held_out(seed)) for seed in range(6)}) > 1
    # Ids, not file order, define the blocks: shuffled inputs, same blocks.
    order = np.random.default_rng(1).permutation(40)
    _, (val_texts, _) = imdb.split_validation_by_id_blocks(
        texts[order], labels[order], ids[order], 0.2, seed=0, block_size=4
    )
    blocks = {int(t[1:]) // 4 for t in val_texts}
    assert len(val_texts) == 8 and len(blocks) == 2


def test_random_folds_are_disjoint_stratified_and_fold_0_is_the_first_run():
    labels = np.repeat([0, 1], [30, 20])
    texts = np.array([f"r{i}" for i in range(50)], dtype=object)
    held_out = []
    for fold in range(5):  # validation_split 0.2: five folds of 6 + 4 reviews
        (train_texts, _), (val_texts, val_labels) = imdb.split_validation(
            texts, labels, validation_split=0.2, seed=7, fold=fold
        )
        assert collections.Counter(val_labels.tolist()) == {0: 6, 1: 4}
        assert set(train_texts) | set(val_texts) == set(texts)
        assert not set(train_texts) & set(val_texts)
        held_out.append(set(val_texts))
    assert set.union(*held_out) == set(texts)  # every review in exactly one fold
    assert sum(map(len, held_out)) == len(texts)
    # Fold 0 is the split drawn before folds existed: the first round(0.2 n)
    # of each class's seeded permutation.
    rng = np.random.default_rng(7)
    first = [
        rng.permutation(np.flatnonzero(labels == y))[:n] for y, n in ((0, 6), (1, 4))
    ]
    assert held_out[0] == set(texts[np.concatenate(first)])


def test_id_block_folds_hold_out_disjoint_sets_of_whole_blocks():
    ids = np.arange(48)
    labels = np.repeat([0, 1], 24)
    texts = np.array([f"r{i}" for i in ids], dtype=object)
    held_out = []
    for fold in range(3):  # 6 blocks of 4 per class, 2 per fold
        _, (val_texts, _) = imdb.split_validation_by_id_blocks(
            texts, labels, ids, 1 / 3, seed=2, block_size=4, fold=fold
        )
        blocks = {int(t[1:]) // 4 for t in val_texts}
        assert len(val_texts) == 16 and len(blocks) == 4
        held_out.append(blocks)
    assert set.union(*held_out) == set(range(12))
    with pytest.raises(
        ValueError, match=r"validation_fold=3 needs 8 blocks .* 3 folds"
    ):
        imdb.split_validation_by_id_blocks(
            texts, labels, ids, 1 / 3, seed=2, block_size=4, fold=3
        )


def test_load_imdb_validation_fold(fixture_folder, tmp_path):
    def texts(ds):
        return {t for t, _ in pairs(ds)}

    fold0 = load_imdb(fixture_folder, validation_split=0.25, cache_dir=tmp_path)
    fold1 = load_imdb(
        fixture_folder, validation_split=0.25, cache_dir=tmp_path, validation_fold=1
    )
    assert fold1.num_examples == fold0.num_examples
    assert not texts(fold0.validation) & texts(fold1.validation)
    assert texts(fold0.validation) <= texts(fold1.train)
    assert texts(fold0.test) == texts(fold1.test)
    # 8 negative reviews, 2 per fold: folds 0 to 3.
    with pytest.raises(
        ValueError, match=r"validation_fold=4 needs 10 reviews of class 0"
    ):
        load_imdb(
            fixture_folder, validation_split=0.25, cache_dir=tmp_path, validation_fold=4
        )
    for bad in (-1, 1.0, True, "1"):
        with pytest.raises(ValueError, match=f"Received: validation_fold={bad!r}"):
            load_imdb(fixture_folder, cache_dir=tmp_path, validation_fold=bad)


def test_id_block_split_needs_enough_blocks_and_a_folder(fixture_folder, tmp_path):
    # 250 ids per block: the fixture's classes are one block each.
    with pytest.raises(ValueError, match="blocks of 250 review ids"):
        load_imdb(fixture_folder, validation_split_by="id_blocks", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="source='tfds'"):
        load_imdb(validation_split_by="id_blocks")
    with pytest.raises(ValueError, match="validation_split_by must be one of"):
        load_imdb(fixture_folder, validation_split_by="movies")


def test_id_blocks_need_ids_in_the_file_names(fixture_folder, tmp_path, monkeypatch):
    monkeypatch.setattr(imdb, "ID_BLOCK_SIZE", 2)
    folder = os.path.join(fixture_folder, "train", "pos")
    first = sorted(os.listdir(folder))[0]
    os.rename(os.path.join(folder, first), os.path.join(folder, "best_10.txt"))
    with pytest.raises(ValueError, match="best_10.txt"):
        load_imdb(fixture_folder, validation_split_by="id_blocks", cache_dir=tmp_path)
    # The random split does not need the ids.
    assert load_imdb(fixture_folder, cache_dir=tmp_path).num_examples["train"] == 18


def test_parent_folder_and_archive_give_the_same_data(fixture_folder, tmp_path):
    from_folder = load_imdb(fixture_folder, seed=1, cache_dir=tmp_path / "c1")
    from_parent = load_imdb(
        os.path.dirname(fixture_folder), seed=1, cache_dir=tmp_path / "c1"
    )
    archive = write_sample_aclimdb(tmp_path / "packed", COUNTS, seed=3, archive=True)
    cache = tmp_path / "cache"
    from_archive = load_imdb(archive, seed=1, cache_dir=cache)
    for split in ("train", "validation", "test"):
        reference = sorted(pairs(getattr(from_folder, split)))
        assert sorted(pairs(getattr(from_parent, split))) == reference
        assert sorted(pairs(getattr(from_archive, split))) == reference
    # Extracted once, by an atomic rename: one folder, no partial leftovers.
    entries = sorted(os.listdir(cache))
    assert len(entries) == 1 and entries[0].startswith("aclImdb-")
    stamp = os.stat(cache / entries[0]).st_mtime_ns
    load_imdb(archive, cache_dir=cache)
    assert sorted(os.listdir(cache)) == entries
    assert os.stat(cache / entries[0]).st_mtime_ns == stamp


def test_shuffling_is_seeded_and_batches(fixture_folder, tmp_path):
    def first_epoch(seed):
        data = load_imdb(fixture_folder, seed=seed, cache_dir=tmp_path)
        return [t for t, _ in pairs(data.train)]

    assert first_epoch(0) == first_epoch(0)
    assert first_epoch(0) != first_epoch(5)
    data = load_imdb(fixture_folder, seed=0, cache_dir=tmp_path)
    epoch_1, epoch_2 = pairs(data.train), pairs(data.train)
    assert epoch_1 != epoch_2 and sorted(epoch_1) == sorted(epoch_2)
    # The validation and test order is fixed.
    assert pairs(data.validation) == pairs(data.validation)

    batched = load_imdb(fixture_folder, seed=0, batch_size=4, cache_dir=tmp_path)
    sizes = [int(texts.shape[0]) for texts, _ in batched.test]
    assert sizes == [4, 4, 4]
    assert sorted(pairs(batched.test)) == sorted(pairs(data.test))


@pytest.mark.parametrize(
    "remove, missing",
    [
        (["train/pos"], "train/pos"),
        (["test/neg", "train/neg"], "train/neg, test/neg"),
    ],
    ids=["no_train_pos", "no_two_folders"],
)
def test_incomplete_folder_names_what_is_missing(tmp_path, remove, missing):
    folder = write_sample_aclimdb(tmp_path, (2, 2))
    for sub in remove:
        for name in os.listdir(os.path.join(folder, sub)):
            os.remove(os.path.join(folder, sub, name))
        os.rmdir(os.path.join(folder, sub))
    with pytest.raises(ValueError, match=f"missing {missing}"):
        load_imdb(folder, cache_dir=tmp_path / "cache")
    assert not os.path.exists(tmp_path / "cache")


def test_empty_folder_and_folder_without_reviews(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        ValueError, match="missing train/pos, train/neg, test/pos, test/neg"
    ):
        load_imdb(empty)
    folder = write_sample_aclimdb(
        tmp_path / "d", {"train/pos": 2, "train/neg": 2, "test/pos": 2}
    )
    with pytest.raises(ValueError, match=r"no \.txt reviews in test/neg"):
        load_imdb(folder)
    with pytest.raises(ValueError, match="does not exist"):
        load_imdb(tmp_path / "nowhere")


def test_corrupt_archives_leave_nothing_behind(tmp_path):
    good = write_sample_aclimdb(tmp_path / "good", (4, 4), archive=True)
    with open(good, "rb") as f:
        payload = f.read()
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(payload[: len(payload) // 2])
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(gzip.compress(b"not a tar archive at all" * 50))
    noise = tmp_path / "noise.tar.gz"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    cache = tmp_path / "cache"
    for archive in (truncated, garbage, noise):
        with pytest.raises(ValueError, match="data_dir="):
            load_imdb(archive, cache_dir=cache)
        # Nothing a rerun could take for a finished extraction.
        assert not os.path.exists(cache) or os.listdir(cache) == []


def test_archive_in_the_wrong_layout_is_refused_and_not_cached(tmp_path):
    folder = tmp_path / "other"
    (folder / "reviews").mkdir(parents=True)
    (folder / "reviews" / "1_10.txt").write_text("great")
    archive = tmp_path / "other.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="other")
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="missing train/pos"):
        load_imdb(archive, cache_dir=cache)
    assert os.listdir(cache) == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"source": "web"}, "source must be one of"),
        ({"validation_split": 0.0}, "validation_split"),
        ({"validation_split": 1.5}, "validation_split"),
        ({"validation_split": True}, "validation_split"),
        ({"batch_size": 0}, "batch_size"),
    ],
    ids=["source", "split_zero", "split_above_one", "split_bool", "batch_size"],
)
def test_bad_arguments(fixture_folder, kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_imdb(fixture_folder, **kwargs)


def test_directory_source_needs_a_folder():
    with pytest.raises(ValueError, match="data_dir"):
        load_imdb(source="directory")


def test_tensorflow_datasets_source_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=16):
        data = load_imdb(validation_split=0.25, seed=0)  # auto -> tfds
        reference = {}
        for split in ("train", "test"):
            ds = tfds.load("imdb_reviews", split=split, as_supervised=True)
            reference[split] = sorted(
                (t.decode("utf-8"), int(y)) for t, y in tfds.as_numpy(ds)
            )
    assert data.source == "tfds"
    train, validation = pairs(data.train), pairs(data.validation)
    assert data.num_examples["train"] + data.num_examples["validation"] == 16
    assert data.num_examples["test"] == 16
    assert sorted(train + validation) == reference["train"]
    assert sorted(pairs(data.test)) == reference["test"]
    assert {y for _, y in train + validation} <= {0, 1}


def test_keras_source_decodes_integer_sequences(monkeypatch):
    import keras

    word_index = {"the": 1, "film": 2, "great": 3, "awful": 4}
    # keras numbers words from index_from=3 and starts each review with 1.
    x_train = [[1, 4, 5, 6], [1, 4, 5, 7], [1, 6, 2], [1, 7, 7]]
    x_test = [[1, 4, 6], [1, 5, 7]]
    monkeypatch.setattr(
        keras.datasets.imdb,
        "load_data",
        lambda: ((x_train, np.array([1, 0, 1, 0])), (x_test, np.array([1, 0]))),
    )
    monkeypatch.setattr(keras.datasets.imdb, "get_word_index", lambda: word_index)
    data = load_imdb(source="keras", validation_split=0.5, seed=0)
    assert sorted(pairs(data.train) + pairs(data.validation)) == sorted(
        [
            ("the film great", 1),
            ("the film awful", 0),
            ("great [UNK]", 1),
            ("awful awful", 0),
        ]
    )
    assert sorted(pairs(data.test)) == [("film awful", 0), ("the great", 1)]


def test_keras_source_without_network_says_what_to_do(monkeypatch):
    import keras

    def offline():
        raise OSError("URL fetch failure")

    monkeypatch.setattr(keras.datasets.imdb, "load_data", offline)
    with pytest.raises(RuntimeError, match="data_dir="):
        imdb.load_imdb(source="keras")

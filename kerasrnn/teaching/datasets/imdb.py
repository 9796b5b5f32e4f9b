"""The IMDB movie-review sentiment data (Maas et al. 2011) as `tf.data`
pipelines of `(text, label)`, label 1 for a positive review.

Three sources give the same pipeline:

- `source="tfds"`: `tensorflow_datasets`' `imdb_reviews` (downloads once);
- `source="directory"`: a local copy of the original `aclImdb` folder, or the
  `.tar.gz` archive that holds it (`train/{pos,neg}/*.txt`,
  `test/{pos,neg}/*.txt`). An archive is extracted once into a cache folder,
  atomically: into a temporary folder first, checked, then renamed, so a
  crash mid-way leaves nothing that a rerun would trust;
- `source="keras"`: `keras.datasets.imdb`'s integer sequences, decoded back to
  (lower-cased, punctuation-free) words with its word index.

The reviews of every source are read into memory (about 65 MB of text for
the 50,000 reviews), the validation split is carved from the training reviews
by a seeded, class-stratified draw (never from the test reviews): of single
reviews, or of whole blocks of consecutive review ids (`"id_blocks"`, which
holds out whole movies; see `split_validation_by_id_blocks`); the held-out
part is fold `validation_fold` of that draw (folds are disjoint, so that the
members of an ensemble can each hold out a different one). Each split
becomes `Dataset.from_tensor_slices(...).cache()`, the training split
reshuffled every epoch from the same seed, the validation and test splits in
one fixed seeded order, with prefetching at the end.
"""

import dataclasses
import hashlib
import os
import shutil
import tarfile
import tempfile
import zlib

import numpy as np
import tensorflow as tf

from kerasrnn._utils.validation import check_int_at_least

__all__ = [
    "CACHE_ENV",
    "CLASS_NAMES",
    "ID_BLOCK_SIZE",
    "SOURCES",
    "SPLIT_FOLDERS",
    "VALIDATION_SPLITS",
    "IMDBData",
    "decode_keras_sequences",
    "default_cache_dir",
    "find_aclimdb",
    "load_imdb",
    "read_aclimdb",
    "split_validation",
    "split_validation_by_id_blocks",
    "write_sample_aclimdb",
]

SOURCES = ("auto", "tfds", "directory", "keras")
CLASS_NAMES = ("neg", "pos")  # index = label
SPLIT_FOLDERS = ("train/pos", "train/neg", "test/pos", "test/neg")
CACHE_ENV = "KERASRNN_CACHE_DIR"
VALIDATION_SPLITS = ("random", "id_blocks")
# Reviews held out together by the "id_blocks" split (consecutive ids, per
# class): several movies' worth, since a movie has at most 30 reviews.
ID_BLOCK_SIZE = 250


@dataclasses.dataclass(frozen=True)
class IMDBData:
    """The three splits of IMDB and where they came from.

    Attributes:
        train, validation, test: `tf.data.Dataset`s of `(text, label)`,
            `text` a `tf.string` review and `label` an `int64`, 1 = positive
            (batched when `load_imdb` was given a `batch_size`).
        train_texts: A `tf.data.Dataset` of the training reviews alone, in a
            fixed order and batched by 512, for `TextVectorization.adapt`.
        num_examples: `{"train": n, "validation": n, "test": n}`.
        source: `"tfds"`, `"directory"` or `"keras"`.
        location: The folder that was read, or the source's name.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    train_texts: tf.data.Dataset
    num_examples: dict
    source: str
    location: str


def load_imdb(
    data_dir=None,
    source="auto",
    validation_split=0.1,
    seed=0,
    batch_size=None,
    cache_dir=None,
    tfds_data_dir=None,
    validation_split_by="random",
    validation_fold=0,
):
    """Loads IMDB into train / validation / test `tf.data` pipelines.

    Args:
        data_dir: An `aclImdb` folder (or the folder that holds one) or a
            `.tar.gz`/`.tar` archive of it. Default: `None`.
        source: `"directory"`, `"tfds"`, `"keras"`, or `"auto"`, which reads
            `data_dir` when it is given and `tensorflow_datasets` otherwise.
            Default: `"auto"`.
        validation_split: Fraction of the training reviews held out for
            validation, in (0, 1). Default: 0.1.
        seed: Seed of the validation draw and of the shuffling. Default: 0.
        batch_size: Batch the pipelines by this many reviews; `None` leaves
            them unbatched. Default: `None`.
        cache_dir: Where an archive is extracted. Default: the environment
            variable `KERASRNN_CACHE_DIR`, else `~/.cache/kerasrnn`.
        tfds_data_dir: `data_dir` of `tensorflow_datasets`. Default: its own.
        validation_split_by: `"random"` holds out single reviews;
            `"id_blocks"` holds out whole blocks of `ID_BLOCK_SIZE`
            consecutive review ids per class, so mostly whole movies, as the
            test set does (`split_validation_by_id_blocks`). `"id_blocks"`
            needs the review ids of the aclImdb file names, so
            `source="directory"`. Default: `"random"`.
        validation_fold: Which of the disjoint validation splits of the
            same draw to hold out: the draw orders each class's reviews (or
            blocks), and fold `k` is its `k`-th run of `round(validation_split
            * n)`; fold 0 is the first. Different folds give the members of
            an ensemble different validation reviews, so that together they
            train on every training review. Default: 0.

    Returns:
        An `IMDBData`.

    Example:

    >>> data = load_imdb("aclImdb_v1.tar.gz", batch_size=32)  # doctest: +SKIP
    >>> texts, labels = next(iter(data.train))  # doctest: +SKIP

    Reference:
        Maas, Daly, Pham, Huang, Ng & Potts, "Learning Word Vectors for
        Sentiment Analysis", ACL 2011.
    """
    if source not in SOURCES:
        raise ValueError(
            f"source must be one of {SOURCES}. Received: source={source!r}"
        )
    if isinstance(validation_split, bool) or not isinstance(
        validation_split, (int, float)
    ):
        raise ValueError(
            "validation_split must be a float in (0, 1). "
            f"Received: validation_split={validation_split!r}"
        )
    if not 0.0 < validation_split < 1.0:
        raise ValueError(
            "validation_split must be a float in (0, 1). "
            f"Received: validation_split={validation_split!r}"
        )
    if batch_size is not None and (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or batch_size <= 0
    ):
        raise ValueError(
            f"batch_size must be a positive integer or None. Received: batch_size={batch_size!r}"
        )
    if validation_split_by not in VALIDATION_SPLITS:
        raise ValueError(
            f"validation_split_by must be one of {VALIDATION_SPLITS}. "
            f"Received: validation_split_by={validation_split_by!r}"
        )
    validation_fold = check_int_at_least("validation_fold", validation_fold, 0)
    if source == "auto":
        source = "directory" if data_dir is not None else "tfds"
    if validation_split_by == "id_blocks" and source != "directory":
        raise ValueError(
            "validation_split_by='id_blocks' needs the review ids in the aclImdb "
            "file names, so a data_dir (source='directory'). "
            f"Received: source={source!r}"
        )
    if source == "directory":
        if data_dir is None:
            raise ValueError(
                "source='directory' needs a data_dir. Received: data_dir=None"
            )
        location = find_aclimdb(data_dir, cache_dir=cache_dir)
        splits = read_aclimdb(location, with_ids=validation_split_by == "id_blocks")
    elif source == "tfds":
        location = "tensorflow_datasets:imdb_reviews"
        splits = _read_tfds(tfds_data_dir)
    else:
        location = "keras.datasets.imdb"
        splits = _read_keras()

    split = (
        split_validation_by_id_blocks
        if validation_split_by == "id_blocks"
        else split_validation
    )
    (train_texts, train_labels), (val_texts, val_labels) = split(
        *splits["train"],
        validation_split=validation_split,
        seed=seed,
        fold=validation_fold,
    )
    test_texts, test_labels = splits["test"][:2]
    # A fixed, seeded order, so that a prefix (`take(n)`) holds both classes.
    order = np.random.default_rng(seed).permutation(len(test_labels))
    test_texts, test_labels = test_texts[order], test_labels[order]
    return IMDBData(
        train=_pipeline(train_texts, train_labels, batch_size, shuffle_seed=seed),
        validation=_pipeline(val_texts, val_labels, batch_size),
        test=_pipeline(test_texts, test_labels, batch_size),
        train_texts=tf.data.Dataset.from_tensor_slices(train_texts).batch(512),
        num_examples={
            "train": len(train_labels),
            "validation": len(val_labels),
            "test": len(test_labels),
        },
        source=source,
        location=str(location),
    )


def split_validation(texts, labels, validation_split, seed, fold=0):
    """Holds out `validation_split` of each class, drawn with `seed`.

    Each class's reviews are put in a seeded random order and fold `fold` of
    it, the `fold`-th run of `round(validation_split * n)` reviews, is held
    out, so different folds of one seed never share a validation review.

    Returns `((train_texts, train_labels), (val_texts, val_labels))`, each in
    a seeded random order.

    Raises:
        ValueError: `fold` runs past the class's reviews, or a side is empty.
    """
    rng = np.random.default_rng(seed)
    train_index, val_index = [], []
    for label in np.unique(labels):
        index = rng.permutation(np.flatnonzero(labels == label))
        n_val = int(round(validation_split * len(index)))
        held_out = _fold(len(index), n_val, fold, validation_split, "reviews", label)
        val_index.append(index[held_out])
        train_index.append(index[~held_out])
    train, validation = _shuffled_split(texts, labels, train_index, val_index, rng)
    if len(train[1]) == 0 or len(validation[1]) == 0:
        raise ValueError(
            f"validation_split={validation_split!r} of {len(labels)} training "
            f"reviews leaves {len(train[1])} for training and "
            f"{len(validation[1])} for validation; both must be non-empty."
        )
    return train, validation


def _shuffled_split(texts, labels, train_index, val_index, rng):
    """`((train_texts, train_labels), (val_texts, val_labels))` from the
    per-class lists of indices, each split in a random order from `rng`."""
    train_index = rng.permutation(np.concatenate(train_index))
    val_index = rng.permutation(np.concatenate(val_index))
    return (texts[train_index], labels[train_index]), (
        texts[val_index],
        labels[val_index],
    )


def split_validation_by_id_blocks(
    texts, labels, ids, validation_split, seed, block_size=None, fold=0
):
    """Holds out whole blocks of consecutive review ids, per class.

    The reviews of each class, in id order, are cut into blocks of
    `block_size` (default `ID_BLOCK_SIZE`); the blocks are put in a seeded
    random order and fold `fold` of it, the `fold`-th run of
    `round(validation_split * blocks)` blocks, is held out.

    Why: the aclImdb archive numbers each folder's reviews movie by movie
    (two reviews with adjacent ids share about 88 times more rare words than
    two random ones), and a random split puts reviews of the same movies on
    both sides, so validation rewards memorising movies, which the test set
    (movies disjoint from training) does not. A block split holds out mostly
    whole movies. It errs the other way: a held-out movie's reviews of the
    other label stay in training, so it reads below the test set.

    Returns:
        `((train_texts, train_labels), (val_texts, val_labels))`, each in a
        seeded random order.

    Raises:
        ValueError: A class has too few blocks to hold out at least one and
            keep at least one, or `fold` runs past its blocks.
    """
    block_size = ID_BLOCK_SIZE if block_size is None else block_size
    rng = np.random.default_rng(seed)
    train_index, val_index = [], []
    for label in np.unique(labels):
        index = np.flatnonzero(labels == label)
        index = index[np.argsort(ids[index], kind="stable")]
        blocks = np.arange(len(index)) // block_size
        n_blocks = int(blocks[-1]) + 1
        n_val = int(round(validation_split * n_blocks))
        if not 0 < n_val < n_blocks:
            raise ValueError(
                f"validation_split={validation_split!r} of {n_blocks} blocks of "
                f"{block_size} review ids (class {label}, {len(index)} reviews) "
                f"holds out {n_val} blocks; at least one must be held out and "
                "one kept."
            )
        order = rng.permutation(n_blocks)
        held_out_blocks = order[
            _fold(n_blocks, n_val, fold, validation_split, "blocks", label)
        ]
        held_out = np.isin(blocks, held_out_blocks)
        val_index.append(index[held_out])
        train_index.append(index[~held_out])
    return _shuffled_split(texts, labels, train_index, val_index, rng)


def _fold(n, n_val, fold, validation_split, what, label):
    """Boolean mask over `n` drawn items: fold `fold`, items
    `[fold * n_val, (fold + 1) * n_val)`."""
    if (fold + 1) * n_val > n:
        raise ValueError(
            f"validation_fold={fold!r} needs {(fold + 1) * n_val} {what} of class "
            f"{label}, which has {n}: validation_split={validation_split!r} makes "
            f"{n // n_val} folds (0 to {n // n_val - 1})."
        )
    mask = np.zeros(n, bool)
    mask[fold * n_val : (fold + 1) * n_val] = True
    return mask


def _pipeline(texts, labels, batch_size, shuffle_seed=None):
    ds = tf.data.Dataset.from_tensor_slices((texts, labels)).cache()
    if shuffle_seed is not None:
        ds = ds.shuffle(len(labels), seed=shuffle_seed, reshuffle_each_iteration=True)
    if batch_size is not None:
        ds = ds.batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE)


# --- the aclImdb folder and archive ------------------------------------------


def default_cache_dir():
    """`$KERASRNN_CACHE_DIR`, else `~/.cache/kerasrnn`."""
    return os.environ.get(CACHE_ENV) or os.path.join(
        os.path.expanduser("~"), ".cache", "kerasrnn"
    )


def find_aclimdb(data_dir, cache_dir=None):
    """Returns the `aclImdb` folder in `data_dir`, extracting an archive.

    `data_dir` may be the `aclImdb` folder itself, a folder that holds one,
    or a tar archive (optionally gzipped) of either. An archive is extracted
    under `cache_dir` into a folder named after its SHA-256, so a changed
    archive is extracted afresh.

    Raises:
        ValueError: `data_dir` is missing, is not in the aclImdb layout (the
            message names the missing folders), or is a corrupt archive.
    """
    data_dir = os.fspath(data_dir)
    if not os.path.exists(data_dir):
        raise ValueError(f"data_dir does not exist. Received: data_dir={data_dir!r}")
    if os.path.isdir(data_dir):
        root = _layout_root(data_dir)
        _check_layout(root, f"data_dir={data_dir!r}")
        return root
    return _extract_archive(data_dir, cache_dir or default_cache_dir())


def _layout_root(folder):
    """`folder` itself if it holds train/ or test/, else its aclImdb/ child."""
    if any(os.path.isdir(os.path.join(folder, s)) for s in ("train", "test")):
        return folder
    child = os.path.join(folder, "aclImdb")
    return child if os.path.isdir(child) else folder


def _check_layout(root, what):
    missing = [s for s in SPLIT_FOLDERS if not os.path.isdir(os.path.join(root, s))]
    if missing:
        raise ValueError(
            f"{what} is not an aclImdb folder: missing {', '.join(missing)} (the "
            "layout is train/pos, train/neg, test/pos and test/neg, one review "
            f"per .txt file, optionally under aclImdb/). Looked in {root!r}."
        )
    empty = [s for s in SPLIT_FOLDERS if not _review_files(os.path.join(root, s))]
    if empty:
        raise ValueError(
            f"{what} is not an aclImdb folder: no .txt reviews in "
            f"{', '.join(empty)}. Looked in {root!r}."
        )


def _review_files(folder):
    return sorted(
        e.name for e in os.scandir(folder) if e.name.endswith(".txt") and e.is_file()
    )


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _extract_archive(archive, cache_dir):
    what = f"data_dir={archive!r}"
    target = os.path.join(cache_dir, f"aclImdb-{_sha256(archive)[:16]}")
    if os.path.isdir(target):  # only ever created by the rename below
        root = _layout_root(target)
        _check_layout(root, what)
        return root
    try:
        readable = tarfile.is_tarfile(archive)
    except (EOFError, OSError, zlib.error):
        readable = False
    if not readable:
        raise ValueError(
            f"{what} is neither a folder nor a readable tar archive "
            "(expected aclImdb_v1.tar.gz or a folder in the aclImdb layout)."
        )
    os.makedirs(cache_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".aclImdb-partial-", dir=cache_dir)
    try:
        try:
            with tarfile.open(archive) as tar:
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(tmp, filter="data")
                else:  # pragma: no cover - Python without extraction filters
                    _check_members(tar, tmp)
                    tar.extractall(tmp)
        except (tarfile.TarError, EOFError, OSError, zlib.error, ValueError) as error:
            raise ValueError(
                f"{what} could not be extracted, the archive looks corrupt or "
                f"truncated: {error}"
            ) from error
        _check_layout(_layout_root(tmp), what)
        try:
            os.rename(tmp, target)
        except OSError:  # another process finished the same extraction first
            if not os.path.isdir(target):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _layout_root(target)


def _check_members(tar, dest):  # pragma: no cover - old Python only
    dest = os.path.realpath(dest)
    for member in tar.getmembers():
        path = os.path.realpath(os.path.join(dest, member.name))
        if not path.startswith(dest + os.sep) or member.issym() or member.islnk():
            raise ValueError(f"Unsafe path in archive: {member.name!r}")


def read_aclimdb(root, with_ids=False):
    """Reads `root/{train,test}/{neg,pos}/*.txt` in sorted order.

    Args:
        root: The `aclImdb` folder.
        with_ids: Also return each review's id, the `<id>` of its file name
            `<id>_<rating>.txt`. Default: `False`.

    Returns:
        `{"train": (texts, labels), "test": (texts, labels)}`, `texts` a NumPy
        array of `str`, `labels` an `int64` array with 1 for `pos`; with
        `with_ids`, `(texts, labels, ids)`, `ids` an `int64` array.

    Raises:
        ValueError: `with_ids` and a file name that does not start with an
            integer id.
    """
    splits = {}
    for split in ("train", "test"):
        texts, labels, ids = [], [], []
        for label, name in enumerate(CLASS_NAMES):
            folder = os.path.join(root, split, name)
            for filename in _review_files(folder):
                with open(
                    os.path.join(folder, filename), encoding="utf-8", errors="replace"
                ) as f:
                    texts.append(f.read())
                labels.append(label)
                if with_ids:
                    ids.append(_review_id(folder, filename))
        splits[split] = (np.array(texts, dtype=object), np.array(labels, np.int64))
        if with_ids:
            splits[split] += (np.array(ids, np.int64),)
    return splits


def _review_id(folder, filename):
    review_id = filename.split("_", 1)[0]
    if not review_id.isdigit():
        raise ValueError(
            "aclImdb review files are named <id>_<rating>.txt; the review ids "
            f"are needed to split by id blocks. Received: {filename!r} in {folder!r}"
        )
    return int(review_id)


# --- tensorflow_datasets and keras.datasets -----------------------------------


def _read_tfds(tfds_data_dir):
    import tensorflow_datasets as tfds

    try:
        (train, test), info = tfds.load(
            "imdb_reviews",
            split=["train", "test"],
            as_supervised=True,
            with_info=True,
            data_dir=tfds_data_dir,
        )
    except Exception as error:  # download failures come in many types
        raise RuntimeError(
            "tensorflow_datasets could not load imdb_reviews (it needs a "
            f"download the first time): {error}. Pass data_dir= a local aclImdb "
            "folder or aclImdb_v1.tar.gz instead."
        ) from error
    names = info.features["label"].names
    positive = names.index("pos")
    splits = {}
    for split, ds in (("train", train), ("test", test)):
        texts, labels = [], []
        for text, label in tfds.as_numpy(ds):
            texts.append(text.decode("utf-8", errors="replace"))
            labels.append(int(label == positive))
        splits[split] = (np.array(texts, dtype=object), np.array(labels, np.int64))
    return splits


def decode_keras_sequences(
    sequences, word_index, start_char=1, oov_char=2, index_from=3
):
    """Turns `keras.datasets.imdb` integer sequences back into text.

    `keras.datasets.imdb.load_data` numbers the words of `word_index` from
    `index_from`, starts every review with `start_char` and writes
    `oov_char` for a dropped word; the first is removed, the second becomes
    `[UNK]`.
    """
    words = {index + index_from: word for word, index in word_index.items()}
    texts = []
    for sequence in sequences:
        tokens = [
            "[UNK]" if i == oov_char else words.get(int(i), "[UNK]")
            for i in sequence
            if i != start_char
        ]
        texts.append(" ".join(tokens))
    return np.array(texts, dtype=object)


def _read_keras():
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.imdb.load_data()
        word_index = keras.datasets.imdb.get_word_index()
    except Exception as error:  # download failures come in many types
        raise RuntimeError(
            "keras.datasets.imdb could not be loaded (it needs a download the "
            f"first time): {error}. Pass data_dir= a local aclImdb folder or "
            "aclImdb_v1.tar.gz instead."
        ) from error
    return {
        "train": (
            decode_keras_sequences(x_train, word_index),
            np.asarray(y_train, np.int64),
        ),
        "test": (
            decode_keras_sequences(x_test, word_index),
            np.asarray(y_test, np.int64),
        ),
    }


# --- a small synthetic copy, for tests and demos ------------------------------

_POSITIVE_WORDS = ("great", "wonderful", "loved", "brilliant", "superb", "moving")
_NEGATIVE_WORDS = ("awful", "boring", "hated", "terrible", "dull", "waste")
_FILLER_WORDS = (
    "the film plot actor scene story director camera music ending cast "
    "character minute script light dialogue moment audience screen"
).split()


def write_sample_aclimdb(root, reviews_per_class=(8, 8), seed=0, archive=False):
    """Writes a tiny synthetic data set in the aclImdb layout.

    Every review is filler words around a few sentiment words of its class
    ("great", "awful", ...), with punctuation and `<br />` tags as in the
    real reviews, and a unique id, so a small model can learn it in a few
    steps and a test can trace each review back to its file.

    Args:
        root: Folder to create; the reviews go in `root/aclImdb/...`.
        reviews_per_class: `(train, test)` reviews per class and split, or
            `{"train/pos": n, ...}` for unequal counts. Default: `(8, 8)`.
        seed: Seed of the words drawn. Default: 0.
        archive: Also write `root/aclImdb.tar.gz` and return its path.
            Default: `False`.

    Returns:
        The path of `root/aclImdb`, or of the archive when `archive=True`.
    """
    if isinstance(reviews_per_class, dict):
        counts = dict(reviews_per_class)
    else:
        n_train, n_test = reviews_per_class
        counts = {
            f: n_train if f.startswith("train") else n_test for f in SPLIT_FOLDERS
        }
    rng = np.random.default_rng(seed)
    folder = os.path.join(os.fspath(root), "aclImdb")
    review_id = 0
    for split_folder in SPLIT_FOLDERS:
        os.makedirs(os.path.join(folder, split_folder), exist_ok=True)
        words = _POSITIVE_WORDS if split_folder.endswith("pos") else _NEGATIVE_WORDS
        for _ in range(counts.get(split_folder, 0)):
            tokens = list(rng.choice(_FILLER_WORDS, size=int(rng.integers(5, 40))))
            for word in rng.choice(words, size=int(rng.integers(1, 4))):
                tokens.insert(int(rng.integers(0, len(tokens) + 1)), str(word))
            text = f"Review {review_id}: " + " ".join(tokens[:5]) + ".<br /><br />"
            text += " ".join(tokens[5:]) + "!"
            rating = int(
                rng.integers(7, 11)
                if split_folder.endswith("pos")
                else rng.integers(1, 5)
            )
            name = f"{review_id}_{rating}.txt"
            with open(
                os.path.join(folder, split_folder, name), "w", encoding="utf-8"
            ) as f:
                f.write(text)
            review_id += 1
    if not archive:
        return folder
    path = os.path.join(os.fspath(root), "aclImdb.tar.gz")
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname="aclImdb")
    return path

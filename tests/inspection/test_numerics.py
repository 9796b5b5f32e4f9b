"""Tests of kerasrnn.inspection.numerics: NaN/Inf found at the source, named precisely."""

import numpy as np
import pytest

from kerasrnn.inspection import numerics


def _with_bad_value(value, index=(2, 1, 0), shape=(4, 3, 2)):
    x = np.zeros(shape, "float32")
    x[index] = value
    return x


@pytest.mark.parametrize(
    "value, kind",
    [
        (np.nan, "1 NaN and 0 Inf"),
        (np.inf, "0 NaN and 1 Inf"),
        (-np.inf, "0 NaN and 1 Inf"),
    ],
    ids=["nan", "inf", "-inf"],
)
def test_check_finite_names_array_count_index_and_sample(value, kind):
    x = _with_bad_value(value)
    with pytest.raises(ValueError) as info:
        numerics.check_finite(x, name="x_train")
    message = str(info.value)
    assert message.startswith("x_train holds")
    assert kind in message
    assert "index (2, 1, 0)" in message and "sample 2" in message


def test_check_finite_walks_nested_structures_and_names_the_path():
    y = np.ones((4, 1), "float64")
    y[3, 0] = np.nan
    data = ({"tokens": np.arange(12).reshape(4, 3)}, y)
    with pytest.raises(
        ValueError, match=r"train\[1\] holds 1 NaN .* index \(3, 0\), sample 3"
    ):
        numerics.check_finite(data, name="train")


def test_check_finite_counts_every_bad_value_and_reports_the_first():
    x = np.zeros((5, 2), "float32")
    x[1, 1] = np.inf
    x[3, 0] = np.nan
    x[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"2 NaN and 1 Inf .* index \(1, 1\)"):
        numerics.check_finite(x)


def test_check_finite_returns_clean_data_unchanged_and_skips_non_float():
    x = np.linspace(-1, 1, 12, dtype="float32").reshape(2, 3, 2)
    data = (x, np.array(["a", "b"]), np.arange(2), None, [0.5, 1.5])
    assert numerics.check_finite(data) is data


def test_check_finite_accepts_backend_tensors():
    import keras

    x = keras.ops.convert_to_tensor(_with_bad_value(np.nan))
    with pytest.raises(ValueError, match="sample 2"):
        numerics.check_finite(x)


def _dataset(x, y, batch_size):
    tf = pytest.importorskip("tensorflow")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


def test_check_finite_dataset_names_element_component_and_row():
    x = _with_bad_value(np.inf, index=(5, 0, 1), shape=(8, 3, 2))
    y = np.zeros((8,), "int32")
    dataset = _dataset(x, y, batch_size=2)
    with pytest.raises(ValueError) as info:
        numerics.check_finite_dataset(dataset, name="train_ds")
    message = str(info.value)
    # sample 5 is row 1 of batch 2
    assert "train_ds element 2 (batch 2), component [0]" in message
    assert "0 NaN and 1 Inf" in message and "index (1, 0, 1), row 1" in message


def test_check_finite_dataset_counts_clean_elements_and_honours_max_elements():
    x = np.zeros((8, 3, 2), "float32")
    x[7, 0, 0] = np.nan
    dataset = _dataset(x, np.zeros((8,), "float32"), batch_size=2)
    assert numerics.check_finite_dataset(dataset, max_elements=3) == 3
    with pytest.raises(ValueError, match="element 3"):
        numerics.check_finite_dataset(dataset)


def test_check_finite_dataset_accepts_plain_iterables_and_pydatasets():
    batches = [
        (np.zeros((2, 2)), np.zeros(2)),
        (np.array([[0.0, np.nan]]), np.zeros(1)),
    ]
    with pytest.raises(ValueError, match=r"batches element 1 .* index \(0, 1\)"):
        numerics.check_finite_dataset(batches, name="batches")

    import keras

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return len(batches)

        def __getitem__(self, index):
            return batches[index]

    with pytest.raises(ValueError, match="element 1"):
        numerics.check_finite_dataset(Batches())


@pytest.mark.parametrize("max_elements", [0, -1, 1.5, True])
def test_check_finite_dataset_rejects_bad_max_elements(max_elements):
    with pytest.raises(ValueError, match="max_elements"):
        numerics.check_finite_dataset([], max_elements=max_elements)


def test_with_finite_check_passes_clean_data_through_unchanged():
    x = np.random.default_rng(0).standard_normal((6, 3, 2)).astype("float32")
    y = np.arange(6, dtype="int64")
    checked = numerics.with_finite_check(_dataset(x, y, batch_size=4))
    got = list(checked.as_numpy_iterator())
    np.testing.assert_array_equal(np.concatenate([b[0] for b in got]), x)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in got]), y)


def test_with_finite_check_stops_the_pipeline_naming_the_element():
    tf = pytest.importorskip("tensorflow")
    x = _with_bad_value(np.nan, index=(5, 0, 1), shape=(8, 3, 2))
    checked = numerics.with_finite_check(
        _dataset(x, np.zeros(8, "float32"), 2), "train"
    )
    iterator = iter(checked)
    for _ in range(2):
        next(iterator)
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"train element\] \[2\] \[component \[0\] holds NaN or Inf",
    ):
        next(iterator)


def test_with_finite_check_rejects_non_datasets():
    pytest.importorskip("tensorflow")
    with pytest.raises(ValueError, match="dataset"):
        numerics.with_finite_check(np.zeros(3))


def test_a_nan_batch_is_caught_before_fit_reaches_it():
    """The opt-in check, then fit: the error names the batch, not the loss."""
    import keras

    import kerasrnn

    x = np.random.default_rng(1).standard_normal((8, 4, 3)).astype("float32")
    x[6, 2, 1] = np.nan
    y = np.zeros((8, 1), "float32")
    model = keras.Sequential(
        [keras.Input((4, 3)), kerasrnn.GRU(2), keras.layers.Dense(1)]
    )
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="sample 6"):
        model.fit(numerics.check_finite(x, "x"), y, epochs=1, verbose=0)

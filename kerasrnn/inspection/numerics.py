"""Opt-in checks that training data holds no NaN or Inf.

A NaN in the inputs does not stop `model.fit`: it flows through every matrix
product into the loss, the gradients and then every weight, and
`TerminateOnNaN` stops the run one batch later without saying where it came
from. These checks find it at the source and name the array, the batch or
dataset element, and the position of the first bad value.

- `check_finite(data)` scans NumPy arrays (or a nested structure of them,
  such as `(x, y)`) and raises `ValueError`.
- `check_finite_dataset(dataset)` iterates a `tf.data.Dataset` (or any
  iterable of batches) once and raises `ValueError` at the first bad element.
- `with_finite_check(dataset)` checks lazily, inside the `tf.data` pipeline,
  as each element is produced: for data too large to scan beforehand.
  TensorFlow reports a failed check as `tf.errors.InvalidArgumentError`,
  whose message names the element.

Integer, boolean and string data cannot hold NaN or Inf and are skipped.

Example:

>>> x = np.zeros((4, 3, 2), "float32")
>>> x[2, 1, 0] = np.nan
>>> check_finite({"x": x})
Traceback (most recent call last):
ValueError: data['x'] holds 1 NaN and 0 Inf value(s); the first is at index (2, 1, 0), sample 2. ...
"""

import numpy as np

__all__ = [
    "check_finite",
    "check_finite_dataset",
    "with_finite_check",
]


def _paths(structure, prefix=""):
    """Yields `(path, leaf)` for a nested dict/list/tuple, paths like `[0]['x']`."""
    if isinstance(structure, dict):
        for key in sorted(structure, key=str):
            yield from _paths(structure[key], f"{prefix}[{key!r}]")
    elif isinstance(structure, (list, tuple)):
        for i, item in enumerate(structure):
            yield from _paths(item, f"{prefix}[{i}]")
    else:
        yield prefix, structure


def _as_float_array(value):
    """The value as a NumPy array if it is floating point (or complex), else None."""
    if value is None or isinstance(value, (str, bytes)):
        return None
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        return None
    if array.dtype.kind not in "fc":
        return None
    return array


def _describe(label, array, sample_name):
    nan, inf = np.isnan(array), np.isinf(array)
    first = tuple(int(i) for i in np.argwhere(nan | inf)[0])
    where = f"index {first}"
    if len(first) > 1 and sample_name:
        where += f", {sample_name} {first[0]}"
    return (
        f"{label} holds {int(nan.sum())} NaN and {int(inf.sum())} Inf value(s); "
        f"the first is at {where}."
    )


def check_finite(data, name="data"):
    """Raises `ValueError` if `data` holds a NaN or an infinity.

    Args:
        data: A NumPy array, anything `np.asarray` accepts (a backend tensor,
            a list of floats), or a nested dict/list/tuple of them such as
            `(x, y)`. Default: required.
        name: What to call `data` in the error. Default: `"data"`.

    Returns:
        `data`, unchanged, so that the check can wrap an expression.

    Raises:
        ValueError: naming `name`, the path within the structure, the number
            of NaN and Inf values and the index (and sample) of the first.
    """
    for path, leaf in _paths(data):
        array = _as_float_array(leaf)
        if array is not None and not np.isfinite(array).all():
            raise ValueError(
                _describe(f"{name}{path}", array, "sample")
                + " Check the data pipeline (a division by zero, a log of 0, "
                "a missing value read as NaN) before training on it."
            )
    return data


def check_finite_dataset(dataset, name="dataset", max_elements=None):
    """Iterates `dataset` once and raises `ValueError` at the first element
    holding a NaN or an infinity.

    Args:
        dataset: A `tf.data.Dataset`, a `keras.utils.PyDataset` or any iterable
            whose elements are arrays or nested structures of arrays
            (`(x, y)` batches). Default: required.
        name: What to call the dataset in the error. Default: `"dataset"`.
        max_elements: Check only the first `max_elements` elements, or all of
            them when `None`. Default: `None`.

    Returns:
        How many elements were checked.

    Raises:
        ValueError: naming `name`, the element (batch) index, the component
            and the position of the first bad value.
    """
    if max_elements is not None and (
        isinstance(max_elements, bool)
        or not isinstance(max_elements, int)
        or max_elements <= 0
    ):
        raise ValueError(
            "max_elements must be a positive integer or None. "
            f"Received: max_elements={max_elements!r}"
        )
    if hasattr(dataset, "as_numpy_iterator"):
        elements = dataset.as_numpy_iterator()
    elif hasattr(dataset, "__getitem__") and hasattr(dataset, "num_batches"):
        elements = (dataset[i] for i in range(dataset.num_batches))
    else:
        elements = iter(dataset)
    checked = 0
    for index, element in enumerate(elements):
        if max_elements is not None and index >= max_elements:
            break
        for path, leaf in _paths(element):
            array = _as_float_array(leaf)
            if array is not None and not np.isfinite(array).all():
                raise ValueError(
                    _describe(
                        f"{name} element {index} (batch {index}), component "
                        f"{path or '(the element itself)'},",
                        array,
                        "row",
                    )
                    + " Check the data pipeline before training on it."
                )
        checked += 1
    return checked


def with_finite_check(dataset, name="dataset"):
    """Returns `dataset` with a check of every element as it is produced.

    Unlike `check_finite_dataset` this costs no extra pass over the data: the
    check runs inside the `tf.data` pipeline during training. When it fails,
    TensorFlow stops with `tf.errors.InvalidArgumentError` whose message
    reads `<name> element <index> component <path> holds NaN or Inf`.

    Args:
        dataset: A `tf.data.Dataset`. Default: required.
        name: What to call the dataset in the error. Default: `"dataset"`.

    Returns:
        A `tf.data.Dataset` with the same elements.
    """
    import tensorflow as tf

    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(
            "with_finite_check needs a tf.data.Dataset (use check_finite for "
            f"arrays). Received: dataset={type(dataset).__name__}"
        )
    paths = [path for path, _ in _paths(dataset.element_spec)]

    def check(index, element):
        leaves = tf.nest.flatten(element)
        checked = []
        for path, leaf in zip(paths, leaves):
            if isinstance(leaf, tf.Tensor) and leaf.dtype.is_floating:
                finite = tf.reduce_all(tf.math.is_finite(leaf))
                message = (
                    f"{name} element",
                    index,
                    f"component {path or '(the element itself)'} holds NaN or Inf",
                )
                with tf.control_dependencies([tf.debugging.Assert(finite, message)]):
                    leaf = tf.identity(leaf)
            checked.append(leaf)
        return tf.nest.pack_sequence_as(element, checked)

    return dataset.enumerate().map(check)

"""Fixtures shared by the tests of `kerasrnn.teaching.text_classification`: a generated
aclImdb fixture, loaded and split, with a vectoriser adapted to its training
texts."""

import pytest

from kerasrnn.teaching import text_classification as tc


@pytest.fixture
def fixture_data(tmp_path):
    from kerasrnn.teaching.datasets.imdb import load_imdb, write_sample_aclimdb

    folder = write_sample_aclimdb(tmp_path / "data", (40, 12), seed=1)
    data = load_imdb(folder, validation_split=0.25, seed=0)
    vectorizer = tc.make_vectorizer(200)
    vectorizer.adapt(data.train_texts)
    return data, vectorizer

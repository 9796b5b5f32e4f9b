"""Plain helpers shared by the tests of `kerasrnn.teaching.text_classification`: the
float32 tolerances, right-padding of id rows, and a small seeded classifier."""

import numpy as np

from kerasrnn.teaching import text_classification as tc

ATOL = RTOL = 1e-5

VOCAB = 40


def padded(rows, width):
    out = np.zeros((len(rows), width), np.int32)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def small_classifier(cell, **kwargs):
    settings = dict(
        units=5, embedding_dim=6, embedding_dropout=0.2, dropout=0.2, seed=3
    )
    settings.update(kwargs)
    return tc.build_classifier(VOCAB, cell=cell, **settings)

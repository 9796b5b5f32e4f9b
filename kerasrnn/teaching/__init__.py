"""The machinery behind kerasrnn's tutorials and studies, apart from the library.

A model never needs this package: it holds what the tutorials in
`tutorials/` share, so that the scripts stay thin and the tests can call it.
It may import the library (`kerasrnn.layers`, `kerasrnn.callbacks`, ...);
the library never imports it (an import-linter contract checks this).

- `tasks`: synthetic long-dependency data sets (adding problem, copy memory,
  temporal order, last marked value, ...).
- `long_dependency`: trains cells on those tasks with the gradient recorded
  (`tutorials/vanishing_gradients.py`).
- `bptt`: a vanilla RNN with backpropagation through time written by hand in
  NumPy (`tutorials/bptt_from_scratch.py`).
- `walkthrough`: an LSTM and a GRU run one step at a time
  (`tutorials/lstm_step_by_step.py`).
- `studies`: the LSTM-variant comparison of Greff et al.
  (`tutorials/lstm_variants.py`).
- `char_lm`: character-level language-model data and bits per character.
- `datasets`: loaders of real data sets (IMDB).
- `text_classification`: the IMDB sentiment pipeline
  (`tutorials/imdb_sentiment.py`).
- `experiment`: the command-line flags, callbacks and result files every
  tutorial shares.
"""

# The teaching side's promise is its modules, each with its own `__all__`.
__all__ = [
    "bptt",
    "char_lm",
    "datasets",
    "experiment",
    "long_dependency",
    "studies",
    "tasks",
    "text_classification",
    "walkthrough",
]

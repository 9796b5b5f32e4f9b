"""Review sentiment with a kerasrnn recurrent layer: text to token ids, the
model, resumable training, evaluation and export for serving.

The pieces, in the order a run uses them:

1. `make_vectorizer` turns raw reviews into token ids (0 = padding,
   1 = out of vocabulary) with `keras.layers.TextVectorization`, dropping
   punctuation (`standardize_review`) or keeping `!` and `?` as words
   (`standardize_review_keeping_marks`); `HeadTailCrop`
   keeps at most `max_length` of them, the first `head_length` and the last
   `max_length - head_length`, since a review tends to state its verdict at the
   start or at the end.
2. `encode_dataset` maps a `(text, label)` pipeline to `(token_ids, label)`
   batches, grouping reviews of similar length so that a batch is padded (on
   the right) only to its longest review.
3. `build_classifier`: `Embedding(mask_zero=True)` -> token-channel dropout ->
   one or more kerasrnn `SimpleRNN`/`LSTM`/`GRU` layers (optionally
   `Bidirectional`) -> `MaskedPooling` of the outputs over the real tokens
   (max and mean) -> dropout -> `Dense(1, sigmoid)`, the probability that the
   review is positive.
4. `train_classifier` fits with `ModelCheckpoint` (best validation accuracy),
   `EarlyStopping`, `BackupAndRestore` (an interrupted run resumes when the
   same command is run again) and a CSV log of every epoch;
   `train_ensemble` trains several such members, one seed each, in their own
   folders, skipping those an interrupted run already finished, and
   `average_ensemble` joins them into one model that averages their
   probabilities.
5. `evaluate_classifier` scores a pipeline once (accuracy, loss, confusion
   matrix); `export_saved_model` writes a SavedModel whose serving signature
   takes a batch of raw review strings, the text vectorisation inside the
   graph, and `end_to_end_model` a Keras model (`.keras`) of the same.

Optionally, `train_word_vectors` learns skip-gram word vectors from the
training reviews' text alone (`encode_texts` turns it into one stream of
ids), and `build_classifier(initial_embeddings=unit_rows(vectors))` starts
the `Embedding` from them.

`SentimentRun` runs them all, step by step, for `tutorials/imdb_sentiment.py`
(resumable, timed, results written next to the models), with the flags
of `parse_settings`.

Modules: `preprocessing` (1, 2 and `TokenDropout`), `model` (3),
`training` (4 and the metrics of 5), `export` (the rest of 5),
`word_vectors`, `settings` (the run's flags) and `run` (the whole run);
every name in their `__all__` is importable from this package.

Text pipelines are TensorFlow's (`tf.data`, `TextVectorization`), so the
text and export functions need TensorFlow; the layers and `build_classifier`
run on any Keras backend (TensorFlow is imported only where it is used).
"""

from kerasrnn.teaching.text_classification.export import (
    SERVING_INPUT,
    SERVING_OUTPUT,
    end_to_end_model,
    export_saved_model,
    save_keras_model,
    serving_function,
)
from kerasrnn.teaching.text_classification.model import (
    CELLS,
    POOLINGS,
    MaskedPooling,
    build_classifier,
    compile_classifier,
)
from kerasrnn.teaching.text_classification.preprocessing import (
    HeadTailCrop,
    TokenDropout,
    encode_dataset,
    make_vectorizer,
    standardize_review,
    standardize_review_keeping_marks,
)
from kerasrnn.teaching.text_classification.run import (
    SentimentRun,
    build_model,
    gradient_norm_callbacks,
    load_data,
    load_or_adapt_vectorizer,
    load_or_learn_word_vectors,
)
from kerasrnn.teaching.text_classification.settings import (
    RESUMABLE_CHANGES,
    add_arguments,
    check_same_settings,
    parse_settings,
)
from kerasrnn.teaching.text_classification.training import (
    MEMBER_RECORD,
    MONITOR,
    average_ensemble,
    binary_metrics,
    ensemble_in_progress,
    evaluate_classifier,
    member_dir,
    plot_learning_curves,
    predict_dataset,
    predict_ensemble,
    start_afresh,
    train_classifier,
    train_ensemble,
    training_record,
)
from kerasrnn.teaching.text_classification.word_vectors import (
    encode_texts,
    negative_sampling_gradients,
    skipgram_pairs,
    train_word_vectors,
    unit_rows,
)

__all__ = [
    "CELLS",
    "MEMBER_RECORD",
    "MONITOR",
    "POOLINGS",
    "RESUMABLE_CHANGES",
    "SERVING_INPUT",
    "SERVING_OUTPUT",
    "HeadTailCrop",
    "MaskedPooling",
    "SentimentRun",
    "TokenDropout",
    "add_arguments",
    "average_ensemble",
    "binary_metrics",
    "build_classifier",
    "build_model",
    "check_same_settings",
    "compile_classifier",
    "encode_dataset",
    "encode_texts",
    "end_to_end_model",
    "ensemble_in_progress",
    "evaluate_classifier",
    "export_saved_model",
    "gradient_norm_callbacks",
    "load_data",
    "load_or_adapt_vectorizer",
    "load_or_learn_word_vectors",
    "make_vectorizer",
    "member_dir",
    "negative_sampling_gradients",
    "parse_settings",
    "plot_learning_curves",
    "predict_dataset",
    "predict_ensemble",
    "save_keras_model",
    "serving_function",
    "skipgram_pairs",
    "standardize_review",
    "standardize_review_keeping_marks",
    "start_afresh",
    "train_classifier",
    "train_ensemble",
    "train_word_vectors",
    "training_record",
    "unit_rows",
]

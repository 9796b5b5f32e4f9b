"""Data sets for the tutorials, loaded into `tf.data` pipelines."""

from kerasrnn.teaching.datasets.imdb import IMDBData, load_imdb

__all__ = ["IMDBData", "load_imdb"]

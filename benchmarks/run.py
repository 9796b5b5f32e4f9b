"""Times kerasrnn's recurrent layers against `keras.layers` and `torch.nn`.

For every backend (`--backend tensorflow|jax|torch|all`), layer kind and
configuration (timesteps `T`, units `U`), a fresh Python process builds the
same one-layer model with kerasrnn and with the backend's Keras built-in,
and the same step with `torch.nn`'s module beside them, warms them up, then
times a training step (forward, backward, SGD update) and an inference call,
alternating between implementations in rounds so that a change in machine
load hits all of them alike. Each time is the median over all timed steps;
ratios are taken within the process, to the Keras built-in (`× keras`) and
to `torch.nn` (`× torch`). Peak memory is measured in other fresh
processes, the median of three per implementation (`--memory`,
`--memory-processes`). The results go to `results/<backend>-<device>.json`
and a Markdown table `results/<backend>-<device>.md`, one per backend.

    python benchmarks/run.py                    # the full suite on $KERAS_BACKEND
    python benchmarks/run.py --backend all      # one table per backend
    python benchmarks/run.py --quick --backend all   # a smoke run on tiny shapes
    python benchmarks/run.py --backend jax --device gpu

Implementations:
    keras               keras.layers.<Kind>, the reference of `× keras`.
    kerasrnn            kerasrnn.<Kind>() with the default fast_path="auto";
                        the table says which path it took.
    kerasrnn-fast       kerasrnn.<Kind>(fast_path=True), only where "auto"
                        read and the backend has fused kernels for the layer.
    kerasrnn-readable   kerasrnn.<Kind>(fast_path=False): the readable cell
                        in keras.layers.RNN, only where "auto" took the fast
                        path.
    torch               torch.nn.RNN/LSTM/GRU (if torch is installed), same
                        thread count or device; the reference of `× torch`.

The code lives in `benchmarks/bench/` (configs, timing, memory, report,
suite); this script is its entry point and the worker the suite starts.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench.suite import main  # noqa: E402

if __name__ == "__main__":
    main()

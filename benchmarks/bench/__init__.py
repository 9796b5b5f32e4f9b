"""The benchmark suite behind `benchmarks/run.py`, one concern per module:

- `configs`: the layer kinds (and the extra kinds of newer kerasrnn layers),
  shapes, implementations and backends, and the command line;
- `timing`: the worker that times every implementation of one configuration
  side by side in one fresh process;
- `memory`: the worker that measures one implementation's peak training
  memory alone in a fresh process;
- `report`: the machine description, the merge of several processes' rows
  and the Markdown table;
- `suite`: the parent that runs the workers for each backend and writes
  `results/<backend>-<device>.json` and `.md`.
"""

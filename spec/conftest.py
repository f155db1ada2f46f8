"""The spec's conftest: the claims plugin (spec/plugin.py: hooks, fixtures, the claims table) and --claims-compare
(spec/compare.py), loaded as pytest plugins. pytest honours `pytest_plugins` only in a conftest it reads before
configuring (one on the path of a command-line argument: `pytest spec`, `pytest spec/test_x.py`, plain `pytest`)."""
import os

pytest_plugins = ["spec.plugin", "spec.compare"]

if os.environ.get("SPEC_TORCH_THREADS"):  # tools/calibrate.py checks the statistical tests at 1 and 2 threads
    import torch

    torch.set_num_threads(int(os.environ["SPEC_TORCH_THREADS"]))

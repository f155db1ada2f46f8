"""The spec's conftest. The claims plugin (spec/plugin.py) and --claims-compare (spec/compare.py) are loaded by the
root conftest.py (pytest honours `pytest_plugins` only in the top-level conftest)."""
import os

if os.environ.get("SPEC_TORCH_THREADS"):  # tools/calibrate.py checks the statistical tests at 1 and 2 threads
    import torch

    torch.set_num_threads(int(os.environ["SPEC_TORCH_THREADS"]))

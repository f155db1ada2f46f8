"""The spec's conftest: the claims plugin (spec/plugin.py) provides every hook and fixture."""
import os

from spec.compare import *  # noqa: F401,F403
from spec.plugin import *  # noqa: F401,F403

if os.environ.get("SPEC_TORCH_THREADS"):  # tools/calibrate.py checks the statistical tests at 1 and 2 threads
    import torch

    torch.set_num_threads(int(os.environ["SPEC_TORCH_THREADS"]))

"""The spec's conftest: the claims plugin (spec/plugin.py) provides every hook and fixture."""
from spec.compare import *  # noqa: F401,F403
from spec.plugin import *  # noqa: F401,F403

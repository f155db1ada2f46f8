"""The spec's conftest: the claims plugin (spec/plugin.py) provides every hook and fixture."""
from spec.plugin import *  # noqa: F401,F403

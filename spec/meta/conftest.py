"""Meta-tests run the plugin in scratch projects with pytester, in this process."""
import pytest

from spec import backends


@pytest.fixture(scope="session", autouse=True)
def _backends_imported_before_pytester():
    """pytester's in-process runs drop every module first imported inside them; the spec's own later imports then
    make second copies beside the backend cache (fastcore's L no longer pickles, beartype rejects its own config,
    numpy refuses to load twice). Importing both backends first keeps one copy of each module."""
    for name in backends.NAMES:
        try:
            backends.get(name)
        except backends.BackendUnavailable:
            pass

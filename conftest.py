"""The project's root conftest: loads the claims plugin (spec/plugin.py) and --claims-compare (spec/compare.py) for
every run under this directory: `pytest spec`, `pytest benches`, `pytest .`, a single test file. pytest honours
`pytest_plugins` only in the top-level conftest, so this is the one place that declares them."""

pytest_plugins = ["spec.plugin", "spec.compare"]
collect_ignore = ["mutants"]  # tools/mutate.py's copy of impl/ and spec/ (mutmut's working tree)

"""Our own contract about impl as a whole (IMPL-13): what it may depend on."""
import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import impl

ALLOWED = {"torch", "torchvision", "numpy", "pandas", "PIL", "impl"}
LAZY = {"matplotlib", "tqdm"}  # plots and the progress bar only, imported inside the functions that show them
MODULES = sorted(m.name for m in pkgutil.iter_modules(impl.__path__))


def _imports(path: Path):
    "(line, top-level module, at module level?) for every import statement in a file."
    tree = ast.parse(path.read_text(), str(path))
    top = {id(n) for n in tree.body}
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            yield from ((n.lineno, a.name.split(".")[0], id(n) in top) for a in n.names)
        elif isinstance(n, ast.ImportFrom) and n.level == 0:
            yield n.lineno, n.module.split(".")[0], id(n) in top


@pytest.mark.claim("IMPL-13")
@pytest.mark.parametrize("mod", MODULES)
def test_impl_imports_only_its_dependencies(mod):
    path = Path(impl.__path__[0]) / f"{mod}.py"
    bad = [(ln, m) for ln, m, top in _imports(path)
           if m not in ALLOWED | sys.stdlib_module_names and not (m in LAZY and not top)]
    assert not bad, f"IMPL-13: impl/{mod}.py imports outside torch/torchvision/numpy/pandas/PIL/stdlib: {bad}"


@pytest.mark.claim("IMPL-13")
def test_importing_impl_loads_no_fastai_spec_or_fixtures():
    code = ("import sys, importlib\n"
            f"for m in {MODULES!r}: importlib.import_module('impl.' + m)\n"
            "print(' '.join(sorted({k.split('.')[0] for k in sys.modules})))\n"
            "import gc; gc.freeze()")  # a quick exit: no last garbage collection over torch's objects (~1 s)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert "torch" in out and "impl" in out, out  # the probe really imported impl
    leaked = {"fastai", "fastcore", "fasttransform", "spec", "fixtures", "matplotlib"} & set(out)  # torch loads tqdm
    assert not leaked, f"IMPL-13: importing impl pulled in {sorted(leaked)}"

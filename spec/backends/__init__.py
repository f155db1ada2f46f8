"""Backends: one adapter package per implementation, exposing the lesson's API under the same names.

`backends.get("impl")` imports every module of `spec/backends/impl_api/` and serves their public names as
attributes; `get("fastai")` does the same with `fastai_api/`. A name bound to two different objects by two
modules of one package is an error, so each topic module owns its names.
"""
from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

NAMES = ("impl", "fastai")


class BackendUnavailable(RuntimeError):
    pass


class Backend:
    def __init__(self, name: str, modules: list[ModuleType]):
        self.name, self._api = name, {}
        for m in modules:
            for k, v in vars(m).items():
                if k.startswith("_") or isinstance(v, ModuleType):
                    continue  # private names and imported modules are not the adapter's API
                if k in self._api and self._api[k][1] is not v:
                    raise RuntimeError(f"backend {name!r}: {k!r} is defined in both {self._api[k][0]} and {m.__name__}")
                self._api[k] = (m.__name__, v)

    def __getattr__(self, k):
        try:
            return self._api[k][1]
        except KeyError:
            where = f"spec/backends/{self.name}_api/"
            raise AttributeError(f"backend {self.name!r} has no {k!r} (add it to {where})") from None

    def __contains__(self, k):
        return k in self._api

    def __repr__(self):
        return f"Backend({self.name!r}, {len(self._api)} names)"


_cache: dict[str, Backend | BackendUnavailable] = {}


def get(name: str) -> Backend:
    if name not in NAMES:
        raise ValueError(f"unknown backend {name!r}; expected one of {NAMES}")
    if name not in _cache:
        pkg = importlib.import_module(f"{__name__}.{name}_api")
        try:
            mods = [importlib.import_module(f"{pkg.__name__}.{m.name}") for m in pkgutil.iter_modules(pkg.__path__)]
            _cache[name] = Backend(name, mods)
        except ImportError as e:  # the library is missing: the backend's tests are skipped with this reason
            _cache[name] = BackendUnavailable(f"backend {name!r} cannot be imported: {type(e).__name__}: {e}")
    if isinstance(_cache[name], BackendUnavailable):
        raise _cache[name]  # the first failure every time: a retried import fails differently (numpy's reload guard)
    return _cache[name]

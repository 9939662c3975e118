"""The built-in benchmark: real photo patches vs the same kind of photos passed through generators.

See :mod:`fakebench.builtin.build` for the layout, the disjoint-source rule and the caching."""

from .build import BUILTIN_VERSION, MANIFEST, SETTINGS, build_builtin

__all__ = ["BUILTIN_VERSION", "MANIFEST", "SETTINGS", "build_builtin"]

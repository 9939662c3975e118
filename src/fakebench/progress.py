"""One progress-bar helper for every long loop (tqdm when enabled, a no-op otherwise)."""

from __future__ import annotations

from typing import Any


class NullBar:
    def update(self, n: int = 1) -> None: ...

    def set_postfix(self, **kw: Any) -> None: ...

    def set_description(self, desc: str) -> None: ...

    def close(self) -> None: ...


_QUIET = False


def set_quiet(quiet: bool) -> None:
    """``fakebench --quiet``: every progress bar off, whatever the caller asked for."""
    global _QUIET
    _QUIET = bool(quiet)


def progress_bar(total: int, desc: str, enabled: bool = True, initial: int = 0, unit: str = "it") -> Any:
    """A tqdm bar (count, rate and ETA) or, when disabled or quiet, a no-op."""
    if not enabled or _QUIET:
        return NullBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True, leave=False)

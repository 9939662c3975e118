"""One progress-bar helper for every long loop (tqdm when enabled, a no-op otherwise)."""

from __future__ import annotations

from typing import Any


class NullBar:
    def update(self, n: int = 1) -> None: ...

    def set_postfix(self, **kw: Any) -> None: ...

    def set_description(self, desc: str) -> None: ...

    def close(self) -> None: ...


def progress_bar(total: int, desc: str, enabled: bool = True, initial: int = 0, unit: str = "it") -> Any:
    if not enabled:
        return NullBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True, leave=False)

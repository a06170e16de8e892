"""How phases are registered and run: each phase module gives a function from a `Run` to
the phases it measured, registered once as an `Entry` in bench/phases/__init__.py."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.phase import Phase
from bench.server import Server, start_server


@dataclass
class Run:
    """What a phase is given: the run's sizes (`quick`, the `--only` group) and servers."""

    db: str
    prefix: str
    quick: bool = False
    only: str | None = None
    idle: list[int] | None = None
    """`--idle`: how many idle connections the idle phases hold, if given."""
    boards: list[int] | None = None
    """`--boards`: how many boards the many-boards phase holds, if given."""
    _shared: Server | None = field(default=None, repr=False)

    @property
    def server(self) -> Server:
        """The two-worker server the phases share, started when first asked for."""
        if self._shared is None:
            self._shared = start_server(self.db, self.prefix, workers=2)
        return self._shared

    def own_server(self, workers: int, broker: str | None = None) -> Server:
        """A server for one phase alone (on `broker`, else the single Redis); the phase
        stops it."""
        if broker is None:
            return start_server(self.db, self.prefix, workers)
        return start_server(self.db, self.prefix, workers, broker)

    def stop_shared(self) -> None:
        if self._shared is not None:
            self._shared.stop()
            self._shared = None


@dataclass(frozen=True)
class Entry:
    """One phase module in the registry, and which runs include it."""

    run: Callable[[Run], list[Phase]]
    only: tuple[str, ...]
    """The `--only` groups that run it."""
    full: bool = True
    """In the run without `--only`."""
    quick: bool = True
    """In `--quick` runs (which, with `--only`, keep to that group's quick phases)."""
    alone: bool = False
    """Measured with the shared server stopped: the runner stops it first."""

    def chosen(self, quick: bool, only: str | None) -> bool:
        if only is not None:
            return only in self.only and (self.quick or not quick)
        return self.quick if quick else self.full


def run(entries: Sequence[Entry], context: Run) -> list[Phase]:
    """The chosen entries in registry order; the shared server stops before the first
    entry that runs alone, and at the end."""
    phases: list[Phase] = []
    try:
        for entry in entries:
            if entry.chosen(context.quick, context.only):
                if entry.alone:
                    context.stop_shared()
                phases += entry.run(context)
    finally:
        context.stop_shared()
    return phases

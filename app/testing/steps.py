"""Run a Hearth job generator to its end in a test, keeping every step it yielded."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TypeVar

from app.engine.steps import drain as run_steps

Step = TypeVar("Step")
Result = TypeVar("Result")


def drain(
    steps: Generator[Step, None, Result], on_step: Callable[[Step], object] | None = None
) -> tuple[list[Step], Result]:
    """All the steps ``steps`` yields (``on_step`` sees each as it comes) and its return value."""
    seen: list[Step] = []

    def keep(step: Step) -> None:
        seen.append(step)
        if on_step is not None:
            on_step(step)

    return seen, run_steps(steps, keep)

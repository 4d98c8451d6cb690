"""Run a job written as a generator (yielding progress, returning its result) to the end.

The GUI runs these generators through superqt workers; the command line and the tests run them
here, in the calling thread.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TypeVar

Step = TypeVar("Step")
Result = TypeVar("Result")


def drain(
    steps: Generator[Step, None, Result], on_step: Callable[[Step], object] | None = None
) -> Result:
    """``steps``'s return value; ``on_step`` sees each step as it comes."""
    while True:
        try:
            step = next(steps)
        except StopIteration as stop:
            return stop.value
        if on_step is not None:
            on_step(step)

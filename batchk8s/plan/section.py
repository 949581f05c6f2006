"""One section of the offline plan: a title, the data `plan --json` prints and the lines `plan` prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Section:
    title: str
    data: Any
    lines: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """The section's JSON key, camelCase like every other key batchk8s emits: "vmss schedule" -> vmssSchedule."""
        first, *rest = self.title.split()
        return first + "".join(word[:1].upper() + word[1:] for word in rest)

    @property
    def has_problems(self) -> bool:
        """Whether the section prints a PROBLEM line (then `plan` exits 2)."""
        return any(line.lstrip().startswith("PROBLEM ") for line in self.lines)


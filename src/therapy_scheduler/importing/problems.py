"""Problems found in an import, each with the place it comes from.

A problem's `loc` is a path into the import document (`("therapists", 3, "time_zone")`). How that path is
shown depends on the source: `therapists[3].time_zone` for a JSON document, `therapists.csv:5:time_zone`
for the CSV file the record came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from therapy_scheduler.errors import AppError

Loc = tuple[int | str, ...]
MAX_REPORTED = 1000


@dataclass(frozen=True)
class Problem:
    loc: Loc
    message: str
    # Another record the message names as "{other}" (e.g. the session an imported one overlaps).
    other: Loc | None = None


def json_path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass
class SourceMap:
    """Where each record of the document came from: (kind, index) → (file name, line)."""

    rows: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)

    def path(self, loc: Loc) -> str:
        if len(loc) >= 2 and isinstance(loc[0], str) and isinstance(loc[1], int):
            origin = self.rows.get((loc[0], loc[1]))
            if origin is not None:
                rest = json_path(loc[2:])
                return f"{origin[0]}:{origin[1]}" + (f":{rest}" if rest else "")
        return json_path(loc)


def render(problem: Problem, source: SourceMap | None = None) -> str:
    path = source.path if source is not None else json_path
    message = problem.message
    if problem.other is not None:
        message = message.replace("{other}", path(problem.other))
    where = path(problem.loc)
    return f"{where}: {message}" if where else message


class ImportFailed(AppError):
    """The import was refused; `details.problems` lists every problem found (nothing was imported)."""

    status = 400
    code = "IMPORT_INVALID"

    def __init__(self, problems: list[Problem], source: SourceMap | None = None) -> None:
        self.problems = problems
        rendered = [render(p, source) for p in problems[:MAX_REPORTED]]
        super().__init__(
            rendered[0] if rendered else "invalid import",
            details={"problems": rendered, "problem_count": len(problems)},
        )

    def rendered(self, source: SourceMap | None = None) -> list[str]:
        return [render(p, source) for p in self.problems[:MAX_REPORTED]]

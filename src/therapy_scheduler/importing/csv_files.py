"""CSV sources for the import: one file per kind of record, turned into the JSON import document.

* A file holds one kind (`--kind`, or the file name: `therapists.csv`); a directory holds any of
  `organizations.csv`, `locations.csv`, `therapists.csv`, `clients.csv`, `users.csv`,
  `authorizations.csv`, `sessions.csv`, imported together in one transaction.
* The first line names the columns: the field names of the JSON format. Empty cells are left out (the
  field's default applies; for `availability`, `time_off` and `therapist_ids`: keep what is stored).
* Cells holding lists use `;` between items:
  `specialties` "autism; early intervention", `therapist_ids` "<uuid>; <uuid>",
  `availability` "monday 09:00-12:00; monday 13:00-17:00",
  `time_off` "2026-12-24T00:00/2026-12-26T00:00; extra 2027-01-09T09:00/2027-01-09T12:00",
  `services` "97153:400; 97155:24:15; 97153:400:15:10h" (code:approved_units[:unit_minutes[:cap]],
  the weekly cap `<n>u` in units or `<n>h` in hours, e.g. `8u`, `7.5h`),
  and `settings` (organizations) is a JSON object.
* Cells are text; those of a JSON number or boolean are converted first: `is_active` reads
  `true|false|1|0` (any case), the units in `services` whole numbers, `latitude` and `longitude`
  decimal numbers (`40.7128`). A cell that does not read is a
  problem of its own.
* Problems name the file, the line and the column: `therapists.csv:4:time_zone: unknown time zone`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from therapy_scheduler.importing.problems import Problem, SourceMap
from therapy_scheduler.importing.schema import ImportDocument
from therapy_scheduler.kit.params import StrictBool

KINDS = tuple(ImportDocument.model_fields)
MAX_CELL = 100_000


class SourceError(Exception):
    """The source cannot be read at all (missing file, unknown kind...): a one-line reason."""


def _items(cell: str) -> list[str]:
    return [part.strip() for part in cell.split(";") if part.strip()]


def _window(item: str) -> dict[str, str]:
    weekday, _, hours = item.partition(" ")
    start, sep, end = hours.strip().partition("-")
    if not weekday or not sep:
        raise ValueError(f'"{item}" is not "<weekday> HH:MM-HH:MM"')
    return {"weekday": weekday, "start": start.strip(), "end": end.strip()}


def _range(item: str) -> dict[str, str]:
    kind, _, rest = item.partition(" ")
    if not rest:
        kind, rest = "time_off", item
    start, sep, end = rest.strip().partition("/")
    if not sep:
        raise ValueError(f'"{item}" is not "[time_off|extra ]<start>/<end>"')
    return {"kind": kind, "start": start.strip(), "end": end.strip()}


def _service(item: str) -> dict[str, str | int | float]:
    parts = [p.strip() for p in item.split(":")]
    if (
        len(parts) not in (2, 3, 4)
        or not all(_WHOLE.fullmatch(p) for p in parts[1:3])
        or (len(parts) == 4 and not _CAP.fullmatch(parts[3]))
    ):
        raise ValueError(
            f'"{item}" is not "<code>:<approved_units>[:<unit_minutes>[:<weekly cap>u|h]]"'
        )
    out: dict[str, str | int | float] = {"service_code": parts[0], "approved_units": int(parts[1])}
    if len(parts) >= 3:
        out["unit_minutes"] = int(parts[2])
    if len(parts) == 4:
        number, unit = parts[3][:-1], parts[3][-1].lower()
        if unit == "u":
            out["weekly_cap_units"] = int(number)
        else:
            out["weekly_cap_hours"] = float(number)
    return out


_WHOLE = re.compile(r"-?[0-9]+")
_CAP = re.compile(r"-?[0-9]+[uU]|-?[0-9]+(\.[0-9]+)?[hH]")
_BOOLEAN: TypeAdapter[bool] = TypeAdapter(StrictBool)


def _boolean(cell: str) -> bool:
    try:
        return _BOOLEAN.validate_python(cell)
    except ValidationError:
        raise ValueError("must be true, false, 1 or 0") from None


def _json_object(cell: str) -> Any:
    try:
        value = orjson.loads(cell)
    except orjson.JSONDecodeError as exc:
        raise ValueError("is not a JSON object") from exc
    if not isinstance(value, dict):
        raise ValueError("is not a JSON object")
    return value


_NUMBER = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)")


def _number(cell: str) -> float:
    if not _NUMBER.fullmatch(cell):
        raise ValueError(f'"{cell}" is not a number')
    return float(cell)


def _list_of(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    return lambda cell: [parse(item) for item in _items(cell)]


CELLS: dict[str, Callable[[str], Any]] = {
    "specialties": _items,
    "therapist_ids": _items,
    "availability": _list_of(_window),
    "time_off": _list_of(_range),
    "services": _list_of(_service),
    "settings": _json_object,
    "is_active": _boolean,
    "latitude": _number,
    "longitude": _number,
}


def _columns(kind: str) -> set[str]:
    annotation = ImportDocument.model_fields[kind].annotation
    model = annotation.__args__[0]  # type: ignore[union-attr]
    return set(model.model_fields)


def read_kind(
    text: str, kind: str, name: str, source: SourceMap, problems: list[Problem]
) -> list[dict[str, Any]]:
    """The records of one CSV text; problems are added with their place (file:line:column)."""
    reader = csv.reader(text.splitlines(keepends=True))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return []
    except csv.Error as exc:
        raise SourceError(f"{name}:1: {exc}") from exc
    known = _columns(kind)
    for column in header:
        if column not in known:
            problems.append(Problem((f"{name}:1:{column or '(empty)'}",), "unknown column"))
        elif header.count(column) > 1:
            problems.append(Problem((f"{name}:1:{column}",), "column given twice"))
    records: list[dict[str, Any]] = []
    line_end = reader.line_num
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise SourceError(f"{name}:{reader.line_num}: {exc}") from exc
        line, line_end = line_end + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        index = len(records)
        source.rows[(kind, index)] = (name, line)
        if len(row) > len(header):
            problems.append(Problem((kind, index), f"{len(row)} cells but {len(header)} columns"))
        record: dict[str, Any] = {}
        for column, cell in zip(header, row, strict=False):
            value = cell.strip()
            if not value or column not in known:
                continue
            if len(value) > MAX_CELL:
                problems.append(Problem((kind, index, column), "cell too long"))
                continue
            try:
                record[column] = CELLS[column](value) if column in CELLS else value
            except ValueError as exc:
                problems.append(Problem((kind, index, column), str(exc)))
        records.append(record)
    return records


def _kind_of(path: Path, kind: str | None) -> str:
    chosen = kind or path.stem
    if chosen not in KINDS:
        hint = "--kind" if kind else "the file name (or --kind)"
        raise SourceError(f'{path.name}: {hint} must be one of {", ".join(KINDS)}, not "{chosen}"')
    return chosen


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path.name} is not UTF-8 text") from exc


def load_csv(path: Path, kind: str | None) -> tuple[dict[str, Any], SourceMap, list[Problem]]:
    """The import document of a CSV file or a directory of `<kind>.csv` files."""
    source = SourceMap()
    problems: list[Problem] = []
    document: dict[str, Any] = {}
    if path.is_dir():
        if kind is not None:
            raise SourceError("--kind applies to a single CSV file, not a directory")
        files = sorted(path.glob("*.csv"))
        unknown = [f.name for f in files if f.stem not in KINDS]
        if unknown:
            raise SourceError(
                f"{path}: unexpected file(s) {', '.join(unknown)}; "
                f"expected <kind>.csv with kind one of {', '.join(KINDS)}"
            )
        if not files:
            raise SourceError(f"{path}: no <kind>.csv files found")
        for file in files:
            document[file.stem] = read_kind(_text(file), file.stem, file.name, source, problems)
        return document, source, problems
    chosen = _kind_of(path, kind)
    document[chosen] = read_kind(_text(path), chosen, path.name, source, problems)
    return document, source, problems

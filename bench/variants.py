"""A copy of this checkout's `src` with one part of the product turned off, to serve with
`bench/run --src` against the same dataset and harness, alternated with the code as it is (one
sitting): what that part costs a request.

    .venv/bin/python -m bench.variants without_freed_slots /tmp/ts-without-freed
    bench/run --quick --no-pgbench --scenarios cancel --src /tmp/ts-without-freed/src
    bench/run --quick --no-pgbench --scenarios cancel

Variants:
- `without_freed_slots`: `calendar/freed.record_freed` records nothing (no outbox row, nothing to
  settle or match): every freeing change (cancel, hold release and expiry, reschedule, removed time
  off) as if there were no waitlist. The copy's `calendar/freed.py` ends with a redefinition of that
  one function; the rest of the code is this checkout's.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

VARIANTS = {
    "without_freed_slots": (
        "therapy_scheduler/calendar/freed.py",
        '''

async def record_freed(conn: AsyncConnection, **_values: object) -> Recorded:  # noqa: F811
    """bench/variants.py `without_freed_slots`: nothing recorded."""
    return Recorded(uuid.UUID(int=0), last_statement.Kept(False))
''',
    ),
}


def make(variant: str, out: Path) -> Path:
    """Writes the variant's tree to `out/src` (replacing it) and returns that directory."""
    path, appended = VARIANTS[variant]
    src = out / "src"
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    with (src / path).open("a") as module:
        module.write(appended)
    return src


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.variants", description=__doc__)
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("out", type=Path, help="directory to write <out>/src into")
    args = parser.parse_args(argv)
    print(make(args.variant, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

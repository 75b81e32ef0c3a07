"""Load a module of this repository as it was at a git ref, beside the current one, so that an
in-process benchmark can time both in one sitting (alternately, under the same load).

    old = module_at("main", "src/therapy_scheduler/infra/ratelimit.py", "old_ratelimit")

The old module's own imports resolve to the current tree: this works while what it imports from the
project still exists with the same names.
"""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def module_at(ref: str, path: str, name: str) -> types.ModuleType:
    source = subprocess.run(
        ["git", "show", f"{ref}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    module = types.ModuleType(name)
    module.__file__ = f"{ref}:{path}"
    sys.modules[name] = module  # dataclasses look their module up by name
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102 - our own code
    return module

"""Hostile inputs, swept: every class of bad input kikuchi was tried with, and what it answered.

Each module of ``benchmarks/hostile_cases/`` (other than those starting with ``_``)
yields cases (see ``benchmarks/hostile_cases/_case.py``): truncated, mutated and
inconsistent real files, bad patterns, corrupt chunks, full disks,
interrupted runs, misuse of the API. Each case is judged ``ok``,
``warning`` (read, and said what was odd), ``error`` (refused in one clear
line) or ``other`` (a traceback, a crash, a hang, a silent wrong result or
a complete-looking partial output: the defects). The table printed (and,
with ``--markdown``, the one in docs/reliability.md) counts them per class.

Run: ``.venv/bin/python benchmarks/hostile.py [--only SECTION] [--markdown] [--show-other]``
"""

from __future__ import annotations

import argparse
import collections
import importlib
import pkgutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.hostile_cases._case import OUTCOMES, judge  # noqa: E402


def sections() -> list[str]:
    import benchmarks.hostile_cases as package

    return sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", help="run only this section (repeatable)")
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    parser.add_argument("--show-other", action="store_true", help="list every case judged 'other'")
    args = parser.parse_args()
    counts: dict[tuple[str, str], collections.Counter] = {}
    others = []
    t0 = time.perf_counter()
    for name in sections():
        if args.only and name not in args.only:
            continue
        module = importlib.import_module(f"benchmarks.hostile_cases.{name}")
        with tempfile.TemporaryDirectory(prefix=f"hostile-{name}-") as tmp:
            for case in module.cases(Path(tmp)):
                result = judge(case)
                counts.setdefault((name, case.cls), collections.Counter())[result.outcome] += 1
                if result.outcome == "other":
                    others.append(result)
    total = collections.Counter()
    for c in counts.values():
        total.update(c)
    if args.markdown:
        print("| section | class of bad input | cases | " + " | ".join(OUTCOMES) + " |")
        print("|---|---|---|" + "---|" * len(OUTCOMES))
        for (section, cls), c in counts.items():
            print(f"| {section} | {cls} | {sum(c.values())} | " + " | ".join(str(c[o]) for o in OUTCOMES) + " |")
        print(f"| **all** | | **{sum(total.values())}** | " + " | ".join(f"**{total[o]}**" for o in OUTCOMES) + " |")
    else:
        width = max([len(cls) for _, cls in counts] + [10])
        print(f"{'section':<14} {'class':<{width}} {'cases':>6} " + " ".join(f"{o:>8}" for o in OUTCOMES))
        for (section, cls), c in counts.items():
            print(f"{section:<14} {cls:<{width}} {sum(c.values()):>6} " + " ".join(f"{c[o]:>8}" for o in OUTCOMES))
        print(f"{'all':<14} {'':<{width}} {sum(total.values()):>6} " + " ".join(f"{total[o]:>8}" for o in OUTCOMES))
    print(f"\n{sum(total.values())} cases in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    if args.show_other or others:
        for r in others:
            print(f"other: [{r.cls}] {r.label}: {r.detail}", file=sys.stderr)
    return 1 if total["other"] else 0


if __name__ == "__main__":
    sys.exit(main())

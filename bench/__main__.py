"""The one entry to every benchmark.

    python -m bench                       # the suites and their cases
    python -m bench speed                 # every case of a suite, one after another
    python -m bench speed inference       # one case
    python -m bench serving load -- RUN   # a case that needs something of yours
    python -m bench results               # rewrite RESULTS.md from bench/rows.jsonl

Each run appends a row to bench/rows.jsonl and rewrites bench/RESULTS.md. Run on an idle
machine: anything else busy on the CPU moves the figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the scripts import each other so

import results  # noqa: E402
import runner  # noqa: E402
from suites import SUITES  # noqa: E402


def listing() -> str:
    lines = []
    for suite, spec in SUITES.items():
        lines.append(f"{suite}: {spec.about}")
        for name, case in spec.cases.items():
            needs = f" [needs -- {case.needs}]" if case.needs else ""
            lines.append(f"  {name:<16} ~{case.minutes:g} min  {case.about}{needs}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    if not argv or argv[0] in ("-h", "--help", "list"):
        print(__doc__.strip() + "\n\n" + listing())
        return 0
    if argv[0] == "results":
        print(f"wrote {results.write()}")
        return 0
    suite, names = argv[0], argv[1:]
    if suite not in SUITES:
        print(f"error: no suite {suite!r}; the suites are {', '.join(SUITES)}, or results.",
              file=sys.stderr)
        return 2
    unknown = [name for name in names if name not in SUITES[suite].cases]
    if unknown:
        print(f"error: suite {suite} has no case {unknown[0]!r}; its cases are "
              f"{', '.join(SUITES[suite].cases)}.", file=sys.stderr)
        return 2
    codes = [runner.run(suite, name, extra)["exit"] for name in names or SUITES[suite].cases]
    print(f"wrote {results.write()}")
    return max(codes, default=0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

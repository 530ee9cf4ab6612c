"""Run benchmarks: python -m bench [NAME ...] (all of them without a name; --help lists them).

Each writes its figures to bench/results/NAME.json; the README's Benchmarks table records them."""

import importlib
import pkgutil
import sys
from pathlib import Path

known = sorted(m.name.removeprefix("bench_") for m in pkgutil.iter_modules([str(Path(__file__).parent)])
               if m.name.startswith("bench_"))
args = sys.argv[1:]
if any(a in ("-h", "--help") for a in args):
    print(__doc__)
    for name in known:
        doc = (importlib.import_module(f"bench.bench_{name}").__doc__ or "").strip().splitlines()
        print(f"  {name:<10} {doc[0] if doc else ''}")
    sys.exit(0)
unknown = [a for a in args if a not in known]
if unknown:
    # A mistyped name (or an option a benchmark does not take) must not start the others' long runs.
    print(f"python -m bench: unknown benchmark {', '.join(unknown)} (known: {', '.join(known)})", file=sys.stderr)
    sys.exit(2)
for name in args or known:
    print(f"== bench {name}", flush=True)
    importlib.import_module(f"bench.bench_{name}").main()

"""Run every benchmark: python -m bench [NAME ...]"""

import importlib
import pkgutil
import sys
from pathlib import Path

names = sys.argv[1:] or sorted(m.name.removeprefix("bench_") for m in pkgutil.iter_modules([str(Path(__file__).parent)])
                               if m.name.startswith("bench_"))
for name in names:
    print(f"== bench {name}", flush=True)
    importlib.import_module(f"bench.bench_{name}").main()

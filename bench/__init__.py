"""Benchmarks: each bench_<area>.py has main() that measures, prints and records its figures in
bench/results/<area>.json. Ratios against the bare tool are measured in the same run, never as
absolute times in tests (the machines are shared and noisy)."""

"""Print pytest-benchmark JSON as throughput and ratios to the same-run yardsticks.

Usage: python benches/report.py bench.json
"""

from __future__ import annotations

import json
import sys


def main(path: str) -> None:
    benches = json.load(open(path))["benchmarks"]
    groups: dict[str, dict[str, float]] = {}
    for b in benches:
        size = b.get("extra_info", {}).get("bytes")
        if size:
            groups.setdefault(b["group"], {})[b["name"]] = size / b["stats"]["median"]
    for group, rows in sorted(groups.items()):
        memcpy = rows.get("yardstick memcpy (numpy.copyto)")
        # The SHA-256 ceiling is the faster of hashlib one-shot and chunked.
        shas = [v for k, v in rows.items() if k.startswith("yardstick sha256")]
        sha = max(shas) if shas else None
        print(f"## {group}")
        for name, bps in sorted(rows.items()):
            r_mem = f"{bps / memcpy:6.3f}x memcpy" if memcpy else ""
            r_sha = f"{bps / sha:6.3f}x sha256" if sha else ""
            print(f"  {name:<52} {bps / 1e9:8.2f} GB/s  {r_mem}  {r_sha}")


if __name__ == "__main__":
    main(sys.argv[1])

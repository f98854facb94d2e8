"""Export of a large corpus: wall time, peak RSS and Parquet size against the JSONL.

Run by hand (not in CI):  python bench/bench_export.py [--mb 100 200] [--near-dedup]

For each size, writes a synthetic corpus of about that many MiB of JSONL (the committed
records replicated with fresh ids and variant groups, in 64 MiB shards as the store cuts
them) in a temporary directory, then runs ``python -m fuzz export`` on it in a child process
and reports its wall time and peak resident set size (the child's own ``ru_maxrss``, from
``os.wait4``) on one line per size.  Two sizes show whether the RSS stays flat as the corpus grows.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARD_BYTES = 64 * 2**20
EXPORT = ("import sys; from fuzz.cli import _Parser; from fuzz.publish.export import main; "
          "sys.exit(main(sys.argv[1:], _Parser))")


def replica(record: dict, copy: int) -> bytes:
    """``record`` as the ``copy``-th replica: a fresh id and variant group."""
    group = record.get("variant_group") or record["stablehlo_hash"] or record["id"]
    rec = {**record, "id": f"{record['id']}-{copy}", "variant_group": f"{group}-{copy}"}
    return (json.dumps(rec, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def make_corpus(folder: Path, mib: float) -> tuple[int, int]:
    """Replicate ``corpus/`` into ``folder`` up to ``mib`` MiB; return (records, bytes)."""
    lines = (ROOT / "corpus" / "shard-00000.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    target, written, count, shard = int(mib * 2**20), 0, 0, 0
    while written < target:
        with open(folder / f"shard-{shard:05d}.jsonl", "wb") as out:
            size = 0
            while written < target and size < SHARD_BYTES:
                line = replica(records[count % len(records)], count // len(records))
                out.write(line)
                size, written, count = size + len(line), written + len(line), count + 1
        shard += 1
    return count, written


def run_export(corpus: Path, out: Path, near_dedup: bool) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MiB of the child alone, its output) of one export."""
    argv = [sys.executable, "-c", EXPORT, str(corpus), "--out", str(out)]
    start = time.perf_counter()
    proc = subprocess.Popen(argv + (["--near-dedup"] if near_dedup else []), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.exit(f"export failed ({proc.returncode}):\n{output}")
    return wall, usage.ru_maxrss / 1024, output


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, nargs="+", default=[200.0],
                    help="corpus sizes in MiB of JSONL, one export each; default 200")
    ap.add_argument("--near-dedup", action="store_true",
                    help="export with --near-dedup (replicas are exact copies: all but the "
                         "first of each program are dropped)")
    a = ap.parse_args()
    for mib in a.mb:
        with tempfile.TemporaryDirectory() as tmp:
            corpus, out = Path(tmp) / "corpus", Path(tmp) / "out"
            corpus.mkdir()
            records, jsonl = make_corpus(corpus, mib)
            wall, rss, output = run_export(corpus, out, a.near_dedup)
            parquet = sum(p.stat().st_size for p in (out / "data").iterdir())
            removed = re.search(r"near-duplicates removed: (\d+)", output)
            print(f"jsonl {jsonl / 2**20:.0f} MiB, {records} records: export {wall:.1f} s "
                  f"({jsonl / 2**20 / wall:.1f} MiB/s), peak RSS {rss:.0f} MiB, parquet "
                  f"{parquet / 2**20:.1f} MiB ({jsonl / parquet:.1f}x smaller), near-duplicates "
                  f"removed: {removed.group(1) if removed else 'off'}", flush=True)


if __name__ == "__main__":
    main()

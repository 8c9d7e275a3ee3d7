"""What `surveil backup create` and `surveil backup restore` cost at N stored appearances.

Builds bench_retention's synthetic site (N appearances over 30 days on 8 cameras, a crop
file per appearance and a keyframe file per 4, a day-sharded 512-d FAISS index) unless
--reuse, then times: create (catalog dump, hard-linked media and shards, SHA-256 of every
file, manifest), wipe (catalog, storage root), and restore (verify every hash, load the
catalog, copy media and shards back, migrate, reconcile the index with the catalog).
The synthetic site has no track rows (its shards hold appearance ids), so the reconcile
after restore removes every vector: that step is a worst case here, not the usual no-op.

Examples:
    .venv/bin/python benchmarks/bench_backup.py --dir /tmp/bkbench --n 100000
    .venv/bin/python benchmarks/bench_backup.py --dir /tmp/bkbench-pg --n 100000 --pg
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench_retention import _recreate_pg, build, catalog_url

from surveil.config import LoggingSettings, load_settings
from surveil.logs import configure_logging
from surveil.storage.backup import create_backup, read_manifest, verify_backup
from surveil.storage.restore import restore_backup


def main(argv: Sequence[str] | None = None) -> None:
    """Build (or reuse) the site, back it up, wipe it, restore it; print the timings."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, required=True, help="Site folder (storage.root).")
    parser.add_argument("--n", type=int, default=100_000, help="Appearances to build.")
    parser.add_argument("--pg", action="store_true", help="PostgreSQL catalog, not SQLite.")
    parser.add_argument("--reuse", action="store_true", help="Do not rebuild the site.")
    args = parser.parse_args(argv)
    configure_logging(LoggingSettings(level="WARNING"))
    root: Path = args.dir.resolve()
    url = catalog_url(root, args.pg)
    if not args.reuse:
        t = time.perf_counter()
        build(root, args.n, args.pg)
        print(f"built {args.n} appearances in {time.perf_counter() - t:.1f} s")
    settings = load_settings(overrides={"storage.root": str(root), "database.url": url})
    out = root.with_name(root.name + "-backup")
    shutil.rmtree(out, ignore_errors=True)

    t = time.perf_counter()
    made = create_backup(settings, out)
    create_s = time.perf_counter() - t
    print(
        f"create: {create_s:.2f} s, {made['files']} files, {made['bytes'] / 1e6:.1f} MB, "
        f"counts {made['counts']['appearances']} appearances"
    )
    t = time.perf_counter()
    verify_backup(out, read_manifest(out))
    print(f"verify alone (restore's first step): {time.perf_counter() - t:.2f} s")
    shutil.rmtree(root)
    if args.pg:
        _recreate_pg(url)
    t = time.perf_counter()
    done = restore_backup(settings, out)
    restore_s = time.perf_counter() - t
    ok = done["counts"] == done["backup_counts"]
    print(f"restore: {restore_s:.2f} s, {done['media_files']} media files, index {done['index']}")
    print(f"counts match: {ok}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

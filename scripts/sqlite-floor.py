#!/usr/bin/env python3
"""The floor under scenario 5 of scripts/bench.sh: SQLite alone, with sedx's store
layout and settings, taking records in random key order as the store grows.

Two rowid tables keyed by TEXT primary keys (equipment by registration code,
reports by report number), a change-number index on each and the reports'
equipment index, rows of the sizes `sedx gen` writes; WAL, synchronous=FULL,
one transaction per 10,000 records, the page cache and checkpoint interval sedx
uses. No XML, no rules, no second process: what is left is the B-tree work.
Prints the CPU and wall time a record for every chunk.

    python3 scripts/sqlite-floor.py --rows 10000000 --cache-mb 1024
"""
import argparse
import os
import random
import resource
import sqlite3
import tempfile
import time

ap = argparse.ArgumentParser()
ap.add_argument("--rows", type=int, default=10_000_000)
ap.add_argument("--chunk", type=int, default=1_000_000)
ap.add_argument("--cache-mb", type=int, default=1024)
ap.add_argument("--checkpoint-pages", type=int, default=65536)
ap.add_argument("--dir", default=None)
args = ap.parse_args()

d = tempfile.mkdtemp(prefix="sedx-floor.", dir=args.dir)
path = os.path.join(d, "store.sqlite")
c = sqlite3.connect(path, isolation_level=None)
c.execute("PRAGMA journal_mode=WAL")
c.execute("PRAGMA synchronous=FULL")
c.execute(f"PRAGMA cache_size=-{args.cache_mb * 1024}")
c.execute(f"PRAGMA wal_autocheckpoint={args.checkpoint_pages}")
c.executescript("""
CREATE TABLE equipment(registration_code TEXT, category TEXT, factory_serial TEXT, use_certificate TEXT,
  user_unit TEXT, credit_code TEXT, address TEXT, district TEXT, registration_authority TEXT,
  registration_date TEXT, use_status TEXT, inspection_agency TEXT, origin TEXT, source_batch TEXT,
  updated_at TEXT, version INTEGER, PRIMARY KEY(registration_code));
CREATE INDEX equipment_version ON equipment(version);
CREATE TABLE inspection_report(report_number TEXT, registration_code TEXT, kind TEXT, date TEXT,
  conclusion TEXT, next_due TEXT, agency TEXT, approved TEXT, origin TEXT, source_batch TEXT,
  updated_at TEXT, version INTEGER, PRIMARY KEY(report_number));
CREATE INDEX inspection_report_version ON inspection_report(version);
CREATE INDEX inspection_report_equipment ON inspection_report(registration_code);
""")
rnd = random.Random(1)
unit = "上海浦东新区某某电梯维修保养有限公司第三分公司"
address = "浦东新区张江高科技园区科苑路1234号"
agency = "上海市特种设备监督检验技术研究院"
version = 0
done = 0
print(f"{'records':>12}  {'CPU us/record':>14}  {'wall us/record':>15}")
t0, r0 = time.time(), resource.getrusage(resource.RUSAGE_SELF)
while done < args.rows:
    c.execute("BEGIN")
    eq, rep = [], []
    for _ in range(5000):
        code = "%04d%06d%04d%02d%04d" % (rnd.choice((3110, 2100, 4100, 1000)), rnd.randrange(310101, 310151),
                                          rnd.randrange(1980, 2025), rnd.randrange(1, 13), rnd.randrange(10000))
        version += 1
        eq.append((code, "3110", "F%08d" % version, "沪3110（2006）%05d" % version, unit, "91310115MA1K4%05dX" % version,
                   address, "310115", "浦东新区质量技术监督局", "2006-05-29", "in-use", agency,
                   "insp-city", "b", "2026-11-29T00:00:00Z", version))
        version += 1
        rep.append(("JY%d-%08d" % (rnd.randrange(2006, 2026), version), code, "periodic", "2020-01-01",
                    "合格", "2021-01-01", agency, "2020-01-01T17:30:00+08:00", "insp-city", "b",
                    "2026-11-29T00:00:00Z", version))
    c.executemany("INSERT OR IGNORE INTO equipment VALUES(%s)" % ",".join("?" * 16), eq)
    c.executemany("INSERT OR IGNORE INTO inspection_report VALUES(%s)" % ",".join("?" * 12), rep)
    c.execute("COMMIT")
    done += 10000
    if done % args.chunk == 0:
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
        print(f"{done:>12,}  {1e6 * cpu / args.chunk:>14.1f}  {1e6 * (time.time() - t0) / args.chunk:>15.1f}", flush=True)
        t0, r0 = time.time(), r1
c.close()
for f in os.listdir(d):
    os.remove(os.path.join(d, f))
os.rmdir(d)

#!/usr/bin/env python3
"""The sedx benchmark (run it through scripts/bench.sh, which builds and starts sshd).

Four scenarios on `sedx gen` data over a real sshd on loopback; prints a table and
the ratios against standard tools run on the same files in the same run. This is a
benchmark, not a test: it measures and reports, it does not pass or fail.
"""
import argparse
import csv
import datetime
import glob
import json
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

SEDX = os.path.abspath("target/release/sedx")
XSD = os.path.abspath("xsd/batch.xsd")
NS = "{urn:sedx:batch:1}"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def sh(*args, **kw):
    return subprocess.run(args, check=True, **kw)


class Daemon:
    """`sedx run --now` on one node, logging JSON lines to a file."""

    def __init__(self, node, logfile):
        self.logfile = logfile
        self.out = open(logfile, "ab")
        env = dict(os.environ, SEDX_LOG="info")
        self.p = subprocess.Popen(
            [SEDX, "--node", node, "--log-json", "run", "--now"],
            stdout=self.out, stderr=self.out, env=env)

    def stop(self):
        """SIGTERM, wait; returns the peak resident memory in MiB."""
        self.p.send_signal(signal.SIGTERM)
        _, _, usage = os.wait4(self.p.pid, 0)
        self.p.returncode = 0
        self.out.close()
        return usage.ru_maxrss / 1024.0


def events(logfile, message=None):
    out = []
    with open(logfile, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            fields = e.get("fields", {})
            if message is None or fields.get("message") == message:
                fields["_t"] = datetime.datetime.fromisoformat(
                    e["timestamp"].replace("Z", "+00:00")).timestamp()
                out.append(fields)
    return out


def count_in(logfile, message):
    if not os.path.exists(logfile):
        return 0
    needle = '"message":"%s"' % message
    with open(logfile, encoding="utf-8", errors="replace") as f:
        return sum(1 for line in f if needle in line)


def wait_for(logfile, message, n, timeout, what):
    deadline = time.time() + timeout
    while count_in(logfile, message) < n:
        if time.time() > deadline:
            sys.exit(f"bench: timed out waiting for {what} ({count_in(logfile, message)}/{n})")
        time.sleep(0.02)


def fresh_nodes(work, args, name):
    d = os.path.join(work, name)
    sh(SEDX, "demo", "--nodes-only", "--dir", d, "--sshd-port", str(args.port),
       "--host-key", args.host_key, "--authorized-keys", args.authorized_keys,
       "--user", args.user, stdout=subprocess.DEVNULL)
    insp, sup = os.path.join(d, "inspection"), os.path.join(d, "supervision")
    for node in (insp, sup):
        cfg = os.path.join(node, "sedx.toml")
        text = open(cfg, encoding="utf-8").read()
        text = text.replace('window = "02:00-08:00"', 'window = "always"')
        open(cfg, "w", encoding="utf-8").write(text)
    return insp, sup


def gen(out, records, batch, seed=1):
    sh(SEDX, "gen", "--out", out, "--records", str(records), "--batch-size", str(batch),
       "--seed", str(seed), "--non-statutory", "0", "--to", "sup-city",
       stdout=subprocess.DEVNULL)
    return sorted(glob.glob(os.path.join(out, "gen-*.xml")))


def drop(files, outbound):
    """Move files into outbound/ the way a local system should: whole, by rename."""
    for f in files:
        os.rename(f, os.path.join(outbound, os.path.basename(f)))


def full_load(work, args):
    log(f"scenario 1: {args.records:,} records in batches of {args.batch:,}")
    data = os.path.join(work, "load")
    files = gen(data, args.records, args.batch)
    keep = os.path.join(work, "load-copy")
    shutil.copytree(data, keep)  # the same files for the tools in scenario 2
    insp, sup = fresh_nodes(work, args, "load-nodes")
    ilog, slog = os.path.join(work, "load-insp.log"), os.path.join(work, "load-sup.log")
    di, ds = Daemon(insp, ilog), Daemon(sup, slog)
    time.sleep(0.5)
    t0 = time.time()
    drop(files, os.path.join(insp, "outbound"))
    wait_for(ilog, "acknowledged", len(files), args.timeout, "acknowledgments")
    elapsed = events(ilog, "acknowledged")[-1]["_t"] - t0
    rss_i, rss_s = di.stop(), ds.stop()
    sealed, uploaded = events(ilog, "sealed"), events(ilog, "uploaded")
    applied, acked = events(slog, "applied"), events(slog, "acknowledgment sealed")
    bad = [a for a in applied if a.get("status") != "accepted"]
    records = sum(int(a.get("accepted", 0)) + int(a.get("rejected", 0)) for a in applied)
    stages = {
        "seal": sum(e["seal_ms"] for e in sealed) / 1000,
        "ship": sum(e["ship_ms"] for e in uploaded) / 1000,
        "verify": sum(a["verify_ms"] for a in applied) / 1000,
        "expand": sum(a["expand_ms"] for a in applied) / 1000,
        "validate": sum(a["validate_ms"] for a in applied) / 1000,
        "apply": sum(a["apply_ms"] for a in applied) / 1000,
        "acknowledge": sum(a["ack_ms"] for a in acked) / 1000,
    }
    return {
        "files": files, "copy": keep, "records": records, "elapsed": elapsed,
        "rate": records / elapsed, "stages": stages, "rss_sender": rss_i,
        "rss_receiver": rss_s, "not_accepted": len(bad), "batches": len(applied),
        "sup_store": os.path.join(sup, "store.sqlite"),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host-key", required=True)
    ap.add_argument("--authorized-keys", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--drops", type=int, default=200)
    ap.add_argument("--big-mb", type=int, default=1024)
    ap.add_argument("--timeout", type=int, default=1800)
    ap.add_argument("--only", default="1234")
    args = ap.parse_args()
    s1 = full_load(args.work, args)
    print(json.dumps({k: v for k, v in s1.items() if k != "files"}, indent=1))


if __name__ == "__main__":
    main()

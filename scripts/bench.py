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
import re
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
BIG_CACHE_MB = 8


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

    def status(self):
        """The process's own memory figures from /proc (kB): VmHWM (peak resident),
        RssAnon and RssFile (now). Read from /proc rather than wait4, whose peak
        includes what the driver held when it started the process."""
        out = {}
        with open(f"/proc/{self.p.pid}/status") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name in ("VmHWM", "RssAnon", "RssFile"):
                    out[name] = int(value.split()[0])
        return out

    def cpu_now(self):
        """CPU seconds used so far (user + system, all threads)."""
        with open(f"/proc/{self.p.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        """SIGTERM, wait; returns the peak resident memory in MiB (VmHWM) and keeps
        the CPU seconds used in self.cpu."""
        peak = self.status()["VmHWM"] / 1024.0
        self.cpu = self.cpu_now()
        self.p.send_signal(signal.SIGTERM)
        self.p.wait()
        self.out.close()
        return peak


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


def fresh_nodes(work, args, name, pg=False, cache_mb=None, suite="ed25519"):
    d = os.path.join(work, name)
    sh(SEDX, "demo", "--nodes-only", "--dir", d, "--sshd-port", str(args.port),
       "--host-key", args.host_key, "--authorized-keys", args.authorized_keys,
       "--user", args.user, "--suite", suite, stdout=subprocess.DEVNULL)
    insp, sup = os.path.join(d, "inspection"), os.path.join(d, "supervision")
    for node in (insp, sup):
        cfg = os.path.join(node, "sedx.toml")
        text = open(cfg, encoding="utf-8").read()
        text = text.replace('window = "02:00-08:00"', 'window = "always"')
        # Scenario 4 sends one 1 GB batch: four times the default document cap, and
        # a payload larger than the default payload cap.
        text = re.sub(r"(?m)^max_expanded_bytes = \d+$", "max_expanded_bytes = 2147483648", text)
        text = re.sub(r"(?m)^max_payload_bytes = \d+$", "max_payload_bytes = 1073741824", text)
        if cache_mb is not None:
            text = re.sub(r"(?m)^store_cache_mb = \d+$", f"store_cache_mb = {cache_mb}", text)
        if pg:
            # This node's store: a database of its own on the benchmark's server.
            db = re.sub(r"[^a-z0-9_]", "_", f"{name}_{os.path.basename(node)}".lower())
            sh("psql", args.pg_url, "-qc", f'CREATE DATABASE "{db}"', stdout=subprocess.DEVNULL)
            url = args.pg_url.rsplit("/", 1)[0] + "/" + db
            text = re.sub(r'(?m)^store = ".*"$', f'store = "{url}"', text)
            os.remove(os.path.join(node, "store.sqlite"))
        open(cfg, "w", encoding="utf-8").write(text)
    return insp, sup


def running_pair(work, args, name, pg=False, cache_mb=None, suite="ed25519"):
    """Fresh nodes in NAME-nodes/, each run by a daemon logging to NAME-insp.log or
    NAME-sup.log: (insp, sup, insp log, sup log, insp daemon, sup daemon)."""
    insp, sup = fresh_nodes(work, args, name + "-nodes", pg, cache_mb, suite)
    ilog, slog = (os.path.join(work, f"{name}-{side}.log") for side in ("insp", "sup"))
    return insp, sup, ilog, slog, Daemon(insp, ilog), Daemon(sup, slog)


def gen(out, records, batch, seed=1):
    sh(SEDX, "gen", "--out", out, "--records", str(records), "--batch-size", str(batch),
       "--seed", str(seed), "--non-statutory", "0", "--to", "sup-city",
       stdout=subprocess.DEVNULL)
    return sorted(glob.glob(os.path.join(out, "gen-*.xml")))


def drop(files, outbound):
    """Move files into outbound/ the way a local system should: whole, by rename."""
    for f in files:
        os.rename(f, os.path.join(outbound, os.path.basename(f)))


def full_load(work, args, pg=False, suite="ed25519"):
    where = " on PostgreSQL" if pg else (" on an SM2/SM3 channel" if suite == "sm2" else "")
    log(f"scenario 1{where}: {args.records:,} records in batches of {args.batch:,}")
    name = "load-pg" if pg else ("load-sm2" if suite == "sm2" else "load")
    data = os.path.join(work, name)
    files = gen(data, args.records, args.batch)
    keep = os.path.join(work, "load-copy")
    if name == "load":
        shutil.copytree(data, keep)  # the same files for the tools in scenario 2
    insp, sup, ilog, slog, di, ds = running_pair(work, args, name, pg, suite=suite)
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
        "cpu_sender": di.cpu, "cpu_receiver": ds.cpu,
        "sup_store": os.path.join(sup, "store.sqlite"),
    }


def tool_pipeline(work, args, s1):
    """The same files through the standard tools, one step after another."""
    log("scenario 2: the same files through gzip, sha256sum, ssh-keygen, sftp, xmllint, sqlite3")
    nodes = os.path.join(work, "load-nodes")
    insp_keys = os.path.join(nodes, "inspection", "keys")
    signers = os.path.join(nodes, "supervision", "keys", "allowed_signers")
    src = os.path.join(work, "tools-out")
    dst = os.path.join(work, "tools-in")
    os.makedirs(src)
    os.makedirs(dst)
    known = os.path.join(work, "known_hosts")
    with open(args.host_key) as f:
        open(known, "w").write("[127.0.0.1]:%d %s" % (args.port, f.read()))
    files = sorted(glob.glob(os.path.join(s1["copy"], "gen-*.xml")))
    t = {k: 0.0 for k in ["gzip", "sha256sum", "ssh-keygen -Y sign", "sftp put",
                          "sha256sum -c", "ssh-keygen -Y verify", "gunzip",
                          "xmllint --stream --schema", "sqlite3 .import"]}

    def timed(stage, *cmd, **kw):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, **kw)
        t[stage] += time.perf_counter() - start

    batch = []
    for f in files:
        gz = os.path.join(src, os.path.basename(f) + ".gz")
        with open(gz, "wb") as out:
            timed("gzip", "gzip", "-c", f, stdout=out)
        with open(gz + ".sha256", "wb") as out:
            timed("sha256sum", "sha256sum", os.path.basename(gz), stdout=out, cwd=src)
        timed("ssh-keygen -Y sign", "ssh-keygen", "-q", "-Y", "sign", "-f",
              os.path.join(insp_keys, "signing_ed25519"), "-n", "sedx-batch", gz,
              stderr=subprocess.DEVNULL)
        for suffix in ("", ".sig", ".sha256"):
            batch.append("put %s%s %s/" % (gz, suffix, dst))
    script = os.path.join(work, "sftp-batch")
    open(script, "w").write("\n".join(batch) + "\n")
    timed("sftp put", "sftp", "-q", "-b", script, "-i", os.path.join(insp_keys, "login_ed25519"),
          "-o", "UserKnownHostsFile=" + known, "-o", "StrictHostKeyChecking=yes",
          "-o", "BatchMode=yes", "-P", str(args.port), "%s@127.0.0.1" % args.user,
          stdout=subprocess.DEVNULL)
    for f in files:
        gz = os.path.join(dst, os.path.basename(f) + ".gz")
        timed("sha256sum -c", "sha256sum", "--quiet", "-c", gz + ".sha256", cwd=dst)
        with open(gz, "rb") as data:
            timed("ssh-keygen -Y verify", "ssh-keygen", "-Y", "verify", "-f", signers,
                  "-I", "insp-city", "-n", "sedx-batch", "-s", gz + ".sig", stdin=data,
                  stdout=subprocess.DEVNULL)
        xml = gz[:-3]
        with open(xml, "wb") as out:
            timed("gunzip", "gzip", "-dc", gz, stdout=out)
        timed("xmllint --stream --schema", "xmllint", "--stream", "--noout", "--schema", XSD,
              xml, stderr=subprocess.DEVNULL)
    # The same rows as CSV (made from sedx's store, not timed), imported by sqlite3.
    db = os.path.join(work, "tools.sqlite")
    imports = []
    src_db = sqlite3.connect(s1["sup_store"])
    for table in ("equipment", "inspection_report"):
        info = src_db.execute("PRAGMA table_info(%s)" % table).fetchall()
        cols = [r[1] for r in info if r[1] not in ("origin", "source_batch", "updated_at", "version")]
        key = [r[1] for r in info if r[5]][0]
        path = os.path.join(work, table + ".csv")
        with open(path, "w", newline="", encoding="utf-8") as out:
            w = csv.writer(out)
            for row in src_db.execute("SELECT %s FROM %s" % (", ".join(cols), table)):
                w.writerow(["" if v is None else v for v in row])
        sqlite3.connect(db).execute("CREATE TABLE %s(%s, PRIMARY KEY(%s))"
                                    % (table, ", ".join(c + " TEXT" for c in cols), key))
        imports.append(".import --csv %s %s" % (path, table))
    timed("sqlite3 .import", "sqlite3", db, *imports)
    total = sum(t.values())
    return {"stages": t, "total": total}


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def drops_one_by_one(files, insp, ilog, slog, acked_before=0):
    """Drop each file after the previous one's acknowledgment is back: latency
    percentiles from the drop to the receiver's store and to the acknowledgment."""
    dropped = {}
    for i, f in enumerate(files):
        name = os.path.basename(f)
        dropped[name] = time.time()
        drop([f], os.path.join(insp, "outbound"))
        wait_for(ilog, "acknowledged", acked_before + i + 1, 60, "the acknowledgment of " + name)
    set_of = {os.path.basename(e["file"]): e["set"] for e in events(ilog, "sealed")}
    applied = {e["set"]: e for e in events(slog, "applied")}
    acked = {e["batch"]: e["_t"] for e in events(ilog, "acknowledged")}
    to_store, to_ack = [], []
    for name, t0 in dropped.items():
        a = applied[set_of[name]]
        to_store.append((a["_t"] - t0) * 1000)
        to_ack.append((acked[a["batch"]] - t0) * 1000)
    return {"store_p50": pct(to_store, 50), "store_p99": pct(to_store, 99),
            "ack_p50": pct(to_ack, 50), "ack_p99": pct(to_ack, 99), "drops": len(dropped)}


def delta(work, args, pg=False):
    log(f"scenario 3{' on PostgreSQL' if pg else ''}: {args.drops} drops of 10 records while the window is open")
    data = os.path.join(work, "delta-pg" if pg else "delta")
    files = gen(data, args.drops * 10, 10, seed=3)[: args.drops]
    insp, sup, ilog, slog, di, ds = running_pair(work, args, "delta-pg" if pg else "delta", pg)
    time.sleep(1)
    out = drops_one_by_one(files, insp, ilog, slog)
    di.stop()
    ds.stop()
    return out


def big_batch(work, args):
    log(f"scenario 4: one batch of about {args.big_mb:,} MB of XML")
    data = os.path.join(work, "big")
    records = int(args.big_mb * 1_000_000 / 417)
    files = gen(data, records, records, seed=4)
    big = max(files, key=os.path.getsize)
    size = os.path.getsize(big)
    # sedx's own memory: the store's page cache (store_cache_mb, a setting on
    # top of it) is kept small here.
    insp, sup, ilog, slog, di, ds = running_pair(work, args, "big", cache_mb=BIG_CACHE_MB)
    time.sleep(0.5)
    t0 = time.time()
    drop([big], os.path.join(insp, "outbound"))
    wait_for(ilog, "acknowledged", 1, args.timeout, "the acknowledgment of the big batch")
    elapsed = events(ilog, "acknowledged")[-1]["_t"] - t0
    applied = events(slog, "applied")[-1]
    return {"bytes": size, "records": int(applied["accepted"]) + int(applied["rejected"]),
            "elapsed": elapsed, "rss_sender": di.stop(), "rss_receiver": ds.stop()}


def key_order(files):
    """How the equipment keys of FILES arrive: the share that land on the right
    edge of the key index (above every key before them). In order: 100%; in the
    order real registrations arrive (random over district, category and month): a
    few percent."""
    pat = re.compile(rb"<equipment><registrationCode>([^<]+)<")
    top, edge, n = b"", 0, 0
    for f in files:
        with open(f, "rb") as fh:
            for k in pat.findall(fh.read()):
                n += 1
                if k > top:
                    top, edge = k, edge + 1
    return 100.0 * edge / max(n, 1)


def grow(work, args):
    """Scenario 5: one pair whose stores grow to args.grow records, fed in chunks
    of args.chunk; the rate, CPU and apply cost of every chunk, then the delta
    latencies with the full store."""
    log(f"scenario 5: {args.grow:,} records in chunks of {args.chunk:,} into one growing store")
    data = os.path.join(work, "grow")
    files = gen(data, args.grow, args.batch, seed=5)
    order = key_order(files[:20])
    insp, sup, ilog, slog, di, ds = running_pair(work, args, "grow", cache_mb=args.grow_cache_mb)
    time.sleep(0.5)
    chunks, done_files, in_store = [], 0, 0
    per_chunk = max(1, args.chunk // args.batch)
    while done_files < len(files):
        part = files[done_files:done_files + per_chunk]
        if len(files) - done_files - len(part) < per_chunk // 2:
            part = files[done_files:]  # a short remainder goes with the last chunk
        cpu0 = di.cpu_now() + ds.cpu_now()
        applied0 = len(events(slog, "applied"))
        t0 = time.time()
        drop(part, os.path.join(insp, "outbound"))
        done_files += len(part)
        wait_for(ilog, "acknowledged", done_files, args.timeout, "acknowledgments")
        elapsed = events(ilog, "acknowledged")[-1]["_t"] - t0
        cpu = di.cpu_now() + ds.cpu_now() - cpu0
        applied = events(slog, "applied")[applied0:]
        sealed = events(ilog, "sealed")[-len(part):]
        records = sum(int(a.get("accepted", 0)) + int(a.get("rejected", 0)) for a in applied)
        in_store += records
        chunks.append({
            "in_store": in_store, "records": records, "rate": records / elapsed,
            "cpu_us": 1e6 * cpu / records,
            "apply_us": 1e6 * sum(a["apply_ms"] for a in applied) / 1000 / records,
            "seal_us": 1e6 * sum(e["seal_ms"] for e in sealed) / 1000 / records,
            "rss": (di.status()["VmHWM"] / 1024, ds.status()["VmHWM"] / 1024),
        })
        c = chunks[-1]
        log(f"  {in_store:>12,} records: {c['rate']:8,.0f} records/s, {c['cpu_us']:.0f} us CPU a record")
    # Deltas with the full store: each drop after the previous acknowledgment.
    dfiles = gen(os.path.join(work, "grow-delta"), args.drops * 10, 10, seed=55)[: max(1, args.drops // 4)]
    lat = drops_one_by_one(dfiles, insp, ilog, slog, done_files)
    sizes = {n: os.path.getsize(os.path.join(n, "store.sqlite")) for n in (insp, sup)}
    rss = (di.stop(), ds.stop())
    # The floor: SQLite alone, the same rows in the same order of growth.
    log("scenario 5: SQLite alone on the same number of rows (scripts/sqlite-floor.py)")
    out = subprocess.run([sys.executable, "scripts/sqlite-floor.py", "--rows", str(args.grow),
                          "--chunk", str(args.chunk), "--cache-mb", str(args.grow_cache_mb),
                          "--dir", work], capture_output=True, text=True, check=True).stdout
    floor = []
    for line in out.splitlines()[1:]:
        parts = line.replace(",", "").split()
        if len(parts) == 3:
            floor.append((int(parts[0]), float(parts[1]), float(parts[2])))
    return {"chunks": chunks, "order": order, "delta": lat, "rss": rss, "floor": floor,
            "store_bytes": sizes[sup], "register_bytes": sizes[insp]}


def delta_lines(p, d):
    """The latency lines of scenario 3 (and 3p)."""
    p(f"   drop to receiver's store      p50 {d['store_p50']:6.0f} ms   p99 {d['store_p99']:6.0f} ms   (target p99 < 500 ms)")
    p(f"   drop to acknowledgment back   p50 {d['ack_p50']:6.0f} ms   p99 {d['ack_p99']:6.0f} ms   (target p99 < 1000 ms)")


def machine():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, {platform.system()} {platform.release()}"


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
    ap.add_argument("--big-mb", type=int, default=1000)
    ap.add_argument("--timeout", type=int, default=3600)
    ap.add_argument("--grow", type=int, default=10_000_000, help="scenario 5: records in the grown store")
    ap.add_argument("--grow-cache-mb", type=int, default=1024, help="scenario 5: store_cache_mb of both nodes")
    ap.add_argument("--chunk", type=int, default=1_000_000, help="scenario 5: records a chunk")
    ap.add_argument("--only", default="12345", help="scenarios to run (2 needs 1)")
    ap.add_argument("--pg-url", default="", help="a PostgreSQL server: scenarios 1 and 3 again on it")
    ap.add_argument("--sm2", type=int, default=1, help="scenario 1 again on an SM2/SM3 channel (0: not)")
    args = ap.parse_args()
    out = []
    p = out.append
    p(f"sedx benchmark, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    p(f"machine: {machine()}")
    p(f"sedx: {subprocess.run([SEDX, '--version'], capture_output=True, text=True).stdout.strip()}")
    p("")
    if "1" in args.only:
        s1 = full_load(args.work, args)
        p(f"1. Full load: {s1['records']:,} records in {s1['batches']} batches of {args.batch:,}, "
          f"drop to last acknowledgment")
        p(f"   end to end            {s1['elapsed']:8.1f} s   {s1['rate']:10,.0f} records/s")
        p("   per stage (time spent in the stage, summed over batches; stages overlap):")
        for stage, secs in s1["stages"].items():
            rate = s1["records"] / secs if secs > 0 else float("inf")
            p(f"     {stage:<20} {secs:8.2f} s   {rate:10,.0f} records/s")
        p(f"   peak memory           sender {s1['rss_sender']:.0f} MiB, receiver {s1['rss_receiver']:.0f} MiB "
          f"(with the store's page cache, store_cache_mb = 128 by default)")
        p(f"   CPU time              sender {s1['cpu_sender']:.1f} s, receiver {s1['cpu_receiver']:.1f} s "
          f"({1e6 * (s1['cpu_sender'] + s1['cpu_receiver']) / s1['records']:.0f} us a record, both processes; "
          f"target 25 us, 70,000 records/s)")
        if s1["not_accepted"]:
            p(f"   note: {s1['not_accepted']} batch(es) not wholly accepted")
        p("")
        if "2" in args.only:
            s2 = tool_pipeline(args.work, args, s1)
            p("2. The same files through the standard tools, in sequence")
            for stage, secs in s2["stages"].items():
                p(f"     {stage:<26} {secs:8.2f} s")
            p(f"   tools total            {s2['total']:8.1f} s")
            p(f"   sedx / tools           {s1['elapsed'] / s2['total']:8.2f}   (target 0.60 or less)")
            # The work the issue keeps, each step at the standard tool's speed:
            # XSD on both sides, a store on both sides (the receiver's and the
            # sender's register), one decompression.
            st, n = s2["stages"], s1["records"]
            floor = 1e6 * (2 * st["xmllint --stream --schema"] + 2 * st["sqlite3 .import"] + st["gunzip"]) / n
            p(f"   floor by the tools     {floor:8.1f} us a record: xmllint on both sides, sqlite3 .import on both "
              f"sides, gunzip (sedx: {1e6 * (s1['cpu_sender'] + s1['cpu_receiver']) / n:.0f} us; target 25 us)")
            p("")
    if args.sm2 and "1" in args.only:
        s1s = full_load(args.work, args, suite="sm2")
        p(f"1s. Full load on an SM2/SM3 channel (SM2 signatures with SM3, SM3 markers; issue 16): "
          f"{s1s['records']:,} records")
        p(f"   end to end            {s1s['elapsed']:8.1f} s   {s1s['rate']:10,.0f} records/s")
        for stage in ("seal", "verify", "acknowledge"):
            secs = s1s["stages"][stage]
            rate = s1s["records"] / secs if secs > 0 else float("inf")
            p(f"     {stage:<20} {secs:8.2f} s   {rate:10,.0f} records/s")
        cpu_s = s1s["cpu_sender"] + s1s["cpu_receiver"]
        p(f"   CPU time              sender {s1s['cpu_sender']:.1f} s, receiver {s1s['cpu_receiver']:.1f} s "
          f"({1e6 * cpu_s / s1s['records']:.0f} us a record, both processes)")
        if "1" in args.only:
            cpu_e = s1["cpu_sender"] + s1["cpu_receiver"]
            p(f"   SM2 / Ed25519         wall {s1s['elapsed'] / s1['elapsed']:.2f}, CPU {cpu_s / cpu_e:.2f}; "
              f"seal {s1s['stages']['seal'] / s1['stages']['seal']:.2f}, verify "
              f"{s1s['stages']['verify'] / max(s1['stages']['verify'], 1e-9):.2f}")
        if s1s["not_accepted"]:
            p(f"   note: {s1s['not_accepted']} batch(es) not wholly accepted")
        p("")
    if "3" in args.only:
        s3 = delta(args.work, args)
        p(f"3. Delta: {s3['drops']} drops of 10 records, one after another")
        delta_lines(p, s3)
        p("")
    if args.pg_url and "1" in args.only:
        s1p = full_load(args.work, args, pg=True)
        p(f"1p. Full load with both stores on PostgreSQL (same machine, loopback): {s1p['records']:,} records")
        p(f"   end to end            {s1p['elapsed']:8.1f} s   {s1p['rate']:10,.0f} records/s")
        for stage in ("seal", "apply"):
            secs = s1p["stages"][stage]
            rate = s1p["records"] / secs if secs > 0 else float("inf")
            p(f"     {stage:<20} {secs:8.2f} s   {rate:10,.0f} records/s")
        p(f"   peak memory           sender {s1p['rss_sender']:.0f} MiB, receiver {s1p['rss_receiver']:.0f} MiB (sedx only)")
        p(f"   CPU time              sender {s1p['cpu_sender']:.1f} s, receiver {s1p['cpu_receiver']:.1f} s (sedx only; the server's own is not counted)")
        if s1p["not_accepted"]:
            p(f"   note: {s1p['not_accepted']} batch(es) not wholly accepted")
        p("")
    if args.pg_url and "3" in args.only:
        s3p = delta(args.work, args, pg=True)
        p(f"3p. Delta on PostgreSQL: {s3p['drops']} drops of 10 records")
        delta_lines(p, s3p)
        p("")
    if "4" in args.only:
        s4 = big_batch(args.work, args)
        p(f"4. One batch of {s4['bytes'] / 1e6:,.0f} MB of XML ({s4['records']:,} records), "
          f"drop to acknowledgment {s4['elapsed']:.0f} s")
        p(f"   peak memory           sender {s4['rss_sender']:.0f} MiB, receiver {s4['rss_receiver']:.0f} MiB   (target < 64 MiB; "
          f"store_cache_mb = {BIG_CACHE_MB}, the page cache comes on top)")
        p("")
    if "5" in args.only:
        s5 = grow(args.work, args)
        first = s5["chunks"][0]
        p(f"5. Growing store: {s5['chunks'][-1]['in_store']:,} records fed in chunks of {args.chunk:,} "
          f"into one pair, store_cache_mb = {args.grow_cache_mb}\n"
          f"   ({s5['order']:.2f}% of equipment keys arrive above every key before them: random order)")
        p("   records in store    records/s   CPU us/record   apply us/record   seal us/record   peak MiB")
        for c in s5["chunks"]:
            p(f"   {c['in_store']:>15,}  {c['rate']:11,.0f}   {c['cpu_us']:13.0f}   {c['apply_us']:15.0f}"
              f"   {c['seal_us']:14.0f}   {c['rss'][0]:.0f} / {c['rss'][1]:.0f}")
        last = s5["chunks"][-1]
        p(f"   last chunk / first    {last['rate'] / first['rate']:8.2f}   (target 0.80 or more)")
        d = s5["delta"]
        p(f"   then {d['drops']} drops of 10: to store p99 {d['store_p99']:.0f} ms, to acknowledgment "
          f"p99 {d['ack_p99']:.0f} ms   (targets 500 ms / 1000 ms)")
        if s5["floor"]:
            f0, f1 = s5["floor"][0], s5["floor"][-1]
            p(f"   SQLite alone on the same number of rows (scripts/sqlite-floor.py, same layout and settings):")
            p(f"     {f0[0]:,} rows: {f0[2]:.1f} us wall a row; {f1[0]:,} rows: {f1[2]:.1f} us; "
              f"last / first {f0[2] / f1[2]:.2f} (its own floor for the 0.80 target)")
        p(f"   store {s5['store_bytes'] / 2**30:.1f} GiB (receiver), {s5['register_bytes'] / 2**30:.1f} GiB (sender's register); "
          f"peak memory {s5['rss'][0]:.0f} / {s5['rss'][1]:.0f} MiB")
        p("")
    print("\n".join(out))


if __name__ == "__main__":
    main()

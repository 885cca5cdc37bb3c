#!/usr/bin/env python3
"""Calibrate kefu's confidence thresholds on labelled queries.

Runs the real binary (index, then serve on a free loopback port) through the
eval harness in ../shared/eval, asks every query with `explain=true`, and
collects the evidence kefu decides confidence on (query coverage, match
coverage, margin; see src/search/confidence.rs). It then searches threshold
grids and prints the best rules:
  - `high`: match_coverage >= a and query_coverage >= b and margin >= m,
    keeping rules whose `high` answers are right >= 95% of the time and that
    call at most 5% of unanswerable questions `high`, ranked by how many
    correct answers they mark `high`;
  - `none`: match_coverage < c, keeping rules that call at most 3% of
    answerable questions `none`, ranked by unanswerable questions caught.
The current thresholds are reported on every set given.

Usage (from the project root, after `cargo build --release`):
  python3 scripts/calibrate.py --kb kb --queries tests/queries/kb-queries.jsonl \\
      --unanswerable tests/queries/kb-unanswerable.jsonl --check ../shared/eval/atec-s500
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "shared", "eval"))
import run_eval  # noqa: E402  (the shared harness: KB writer, HTTP client)

CURRENT = {"a": 0.30, "b": 0.35, "m": 0.10, "c": 0.20}


def collect(binary, kb_src, queries, unanswerable, bench=None):
    """Evidence rows: {kind: 'a'|'u', ok, qc, mc, margin}."""
    work = tempfile.mkdtemp(prefix="kefu-cal-")
    kb = os.path.join(work, "kb")
    if bench:
        run_eval.write_kb(run_eval.read_jsonl(os.path.join(bench, "kb.jsonl")), kb)
    else:
        shutil.copytree(kb_src, kb)
    subprocess.run([binary, "index", "--kb", kb, "--index", os.path.join(work, "index")],
                   check=True, capture_output=True)
    port = run_eval.free_port()
    proc = subprocess.Popen([binary, "serve", "--kb", kb, "--index", os.path.join(work, "index"),
                             "--data", os.path.join(work, "data"), "--addr", f"127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    rows = []
    try:
        client = run_eval.Client(port)
        run_eval.wait_ready(client, proc, 120)
        for kind, items in (("a", queries), ("u", unanswerable)):
            for q in items:
                params = {"q": q["query"], "limit": 10, "explain": "true"}
                product = q.get("product") or (f"shard-{q['shard']}" if q.get("shard") is not None else None)
                if product:
                    params["product"] = product
                if q.get("platform"):
                    params["platform"] = q["platform"]
                status, body = client.get("/v1/search", params)
                if status != 200:
                    raise SystemExit(f"HTTP {status}: {body[:200]!r}")
                data = json.loads(body)
                ev = data.get("explain") or {}
                top = data["hits"][0]["id"] if data["hits"] else None
                rows.append({"kind": kind, "ok": kind == "a" and top in set(q["gold"]),
                             "qc": ev.get("query_coverage", 0.0), "mc": ev.get("match_coverage", 0.0),
                             "margin": ev.get("margin", 0.0)})
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    return rows


def rates(rows, a, b, m, c):
    ans = [r for r in rows if r["kind"] == "a"]
    un = [r for r in rows if r["kind"] == "u"]
    high = lambda r: r["mc"] >= a and r["qc"] >= b and r["margin"] >= m  # noqa: E731
    none = lambda r: r["mc"] < c  # noqa: E731
    marked = [r for r in ans if high(r)]
    correct = sum(r["ok"] for r in ans)
    return {
        "high_precision": sum(r["ok"] for r in marked) / max(len(marked), 1),
        "correct_marked_high": sum(1 for r in marked if r["ok"]) / max(correct, 1),
        "answerable_none": sum(map(none, ans)) / max(len(ans), 1),
        "unanswerable_high": sum(map(high, un)) / max(len(un), 1) if un else None,
        "unanswerable_none": sum(map(none, un)) / max(len(un), 1) if un else None,
    }


def show(name, r):
    print(f"  {name}: " + ", ".join(f"{k}={v:.3f}" for k, v in r.items() if v is not None))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--unanswerable")
    ap.add_argument("--check", action="append", default=[], help="benchmark folder to report on (not tuned)")
    ap.add_argument("--bin", default="target/release/kefu")
    args = ap.parse_args()
    binary = os.path.abspath(args.bin)
    rows = collect(binary, args.kb, run_eval.read_jsonl(args.queries),
                   run_eval.read_jsonl(args.unanswerable) if args.unanswerable else [])
    steps = [x / 20 for x in range(0, 17)]
    highs = []
    for a in steps:
        for b in steps:
            for m in (0.0, 0.05, 0.1, 0.15, 0.2):
                r = rates(rows, a, b, m, 0.0)
                if r["high_precision"] >= 0.95 and (r["unanswerable_high"] or 0) <= 0.05:
                    highs.append((r["correct_marked_high"], a, b, m))
    highs.sort(reverse=True)
    print("best `high` rules (correct marked high, a=match cov, b=query cov, m=margin):")
    for rec, a, b, m in highs[:5]:
        print(f"  {rec:.3f}  a={a:.2f} b={b:.2f} m={m:.2f}")
    nones = []
    for c in steps:
        r = rates(rows, 2, 2, 2, c)
        if r["answerable_none"] <= 0.03:
            nones.append((r["unanswerable_none"] or 0, c))
    nones.sort(reverse=True)
    print("best `none` rules (unanswerable caught, c=match cov):")
    for caught, c in nones[:3]:
        print(f"  {caught:.3f}  c={c:.2f}")
    print(f"current thresholds {CURRENT}:")
    show("labelled set", rates(rows, **CURRENT))
    for bench in args.check:
        queries = run_eval.read_jsonl(os.path.join(bench, "queries-dev.jsonl"))
        show(os.path.basename(bench.rstrip("/")), rates(collect(binary, None, queries, [], bench=bench), **CURRENT))


if __name__ == "__main__":
    main()

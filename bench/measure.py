"""Runs orgaudit's benchmarks and prints a Markdown table (see BENCHMARKS.md).

For each size it measures, RUNS times each (median wall time, peak memory from GNU time):
(a) parse-only baseline: typed serde structs from the JSON file (bench/parse-baseline.rs);
(b) `orgaudit audit` end to end, built-in pack, JSON output written to a file;
(c) the same users as CSV, end to end, JSON output;
(d) rule evaluation alone, user-rule evaluations per second on one core (bench/eval-bench.rs);
(e) the HTML report, end to end.
"""
import os
import platform
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release")
DATA = os.path.join(ROOT, "bench-data")
SIZES = {"100k": 100_000, "1m": 1_000_000}
RUNS = int(os.environ.get("RUNS", "3"))
AUDIT = ["audit", "--now", "2026-11-29T00:00:00Z", "-q",
         "--set", "external-email-domain.allowed_domains=[acme.example]"]


def generate(size, fmt):
    path = os.path.join(DATA, f"users-{size}.{fmt}")
    if not os.path.exists(path):
        os.makedirs(DATA, exist_ok=True)
        with open(path + ".tmp", "wb") as out:
            subprocess.run([os.path.join(BIN, "examples", "gen-report"), "--users",
                            str(SIZES[size]), "--seed", "7", "--format", fmt], stdout=out, check=True)
        os.rename(path + ".tmp", path)
    return path


def timed(cmd):
    """(seconds, peak KiB, stdout) of one run under GNU time."""
    r = subprocess.run(["/usr/bin/time", "-f", "%e %M"] + cmd, capture_output=True, text=True)
    if r.returncode not in (0, 1):
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr}")
    secs, kib = r.stderr.strip().splitlines()[-1].split()
    return float(secs), int(kib), r.stdout


def measure(cmd):
    runs = [timed(cmd) for _ in range(RUNS)]
    return statistics.median(t for t, _, _ in runs), max(k for _, k, _ in runs), runs[-1][2]


def rule_files():
    """(f) loading rules: 10k and 100k generated rules through `rules validate`; the ratio shows
    whether loading is linear (10x the rules, about 10x the time)."""
    times = {}
    for n in (10_000, 100_000):
        # A folder of files of 1,000 rules each (a file is at most 16 MiB).
        path = os.path.join(DATA, f"rules-{n}")
        if not os.path.exists(path):
            os.makedirs(path + ".tmp", exist_ok=True)
            for start in range(0, n, 1000):
                with open(os.path.join(path + ".tmp", f"r{start:06}.yaml"), "w") as f:
                    for i in range(start, start + 1000):
                        f.write(f"- id: r-{i}\n  title: Rule {i}\n  severity: low\n  scope: user\n"
                                f"  params: {{days: {i % 365}}}\n"
                                f"  when: {{all: [{{field: active, equals: true}}, "
                                f"{{field: created_at, older_than_days: {{param: days}}}}]}}\n"
                                f"  message: '{{{{ user.email }}}} {i}'\n")
            os.rename(path + ".tmp", path)
        times[n], _, _ = measure([os.path.join(BIN, "orgaudit"), "rules", "validate", "--no-builtin", path])
    print(f"| rules | (f) load and check 10k rules | {times[10_000]:.2f} s | | | |")
    print(f"| rules | (f) load and check 100k rules | {times[100_000]:.2f} s | "
          f"{times[100_000] / times[10_000]:.1f}x the 10k time (linear: about 10x) | | |")


def main():
    sizes = sys.argv[1:] or list(SIZES)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {cpu}; runs per figure: {RUNS} (median)\n")
    print("| users | measurement | time | vs parse (a) | peak memory | vs file size |")
    print("|---|---|---:|---:|---:|---:|")
    for size in sizes:
        js, csv = generate(size, "json"), generate(size, "csv")
        mb = os.path.getsize(js) / 1e6
        out = os.path.join(DATA, "out")
        base_t, base_k, _ = measure([os.path.join(BIN, "examples", "parse-baseline"), js])
        rows = [("(a) parse only (serde, typed structs)", base_t, base_k, os.path.getsize(js))]
        orgaudit = os.path.join(BIN, "orgaudit")
        t, k, _ = measure([orgaudit] + AUDIT + ["-i", js, "-f", "json", "-o", out + ".json"])
        rows.append(("(b) audit JSON -> JSON", t, k, os.path.getsize(js)))
        json_t = t
        t, k, _ = measure([orgaudit] + AUDIT + ["-i", csv, "-f", "json", "-o", out + "-csv.json"])
        rows.append((f"(c) audit CSV -> JSON ({t / json_t:.2f}x JSON)", t, k, os.path.getsize(csv)))
        t, k, _ = measure([orgaudit] + AUDIT + ["-i", js, "-f", "html", "-o", out + ".html"])
        rows.append((f"(e) audit JSON -> HTML ({t / json_t:.2f}x audit)", t, k, os.path.getsize(js)))
        for name, t, k, size_bytes in rows:
            print(f"| {size} ({mb:.0f} MB JSON) | {name} | {t:.2f} s | {t / base_t:.2f}x | "
                  f"{k / 1024:.0f} MiB | {k * 1024 / size_bytes:.2f}x |")
        _, _, text = measure([os.path.join(BIN, "examples", "eval-bench"), js])
        m = dict(re.findall(r"(\w+)=([\d.]+)", text))
        print(f"| {size} | (d) rule evaluation alone | {float(m['seconds']):.3f} s | "
              f"{float(m['per_second']) / 1e6:.1f} M user-rule evaluations/s (one core) | | |")
        findings = subprocess.run(["python3", "-c", "import json,sys;print(json.load(open(sys.argv[1]))['summary']['findings'])", out + ".json"],
                                  capture_output=True, text=True).stdout.strip()
        print(f"| {size} | findings written | {findings} | | {os.path.getsize(out + '.json') / 1e6:.0f} MB of JSON | |")
    rule_files()


if __name__ == "__main__":
    main()

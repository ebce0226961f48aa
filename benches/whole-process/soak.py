#!/usr/bin/env python3
"""Memory over time: one agent scraping an nginx-served fleet on loopback addresses,
remote-writing to a VictoriaMetrics single-node, its RSS sampled every --every seconds
for --duration seconds after every target is up.

    benches/whole-process/soak.py --targets 10000 --series 100 --interval 15 --duration 3600

Prints one line per sample (seconds since up, RSS in MiB, CPU seconds so far) and at the
end the RSS at the start and end of the second half, its minimum and maximum, and the
growth over the second half. Needs Debian's nginx-light and victoria-metrics packages.
Every process is started on 127.x.y.z addresses with ports picked here and stopped by
PID.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def rss(pid):
    return bench.status_bytes(pid, "VmRSS")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", type=int, default=10000)
    ap.add_argument("--series", type=int, default=100)
    ap.add_argument("--interval", type=int, default=15)
    ap.add_argument("--duration", type=int, default=3600)
    ap.add_argument("--every", type=int, default=30)
    ap.add_argument("--trawl", default="target/release/trawl")
    ap.add_argument("--json", help="write the samples here too")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="trawl-soak-")
    port = bench.free_port()
    fleet = [bench.addr(i, port) for i in range(args.targets)]
    nginx = bench.start_nginx(work, fleet)
    vm_port = bench.free_port()
    vm = subprocess.Popen(
        ["victoria-metrics", f"-storageDataPath={work}/vm", f"-httpListenAddr=127.0.0.1:{vm_port}",
         "-retentionPeriod=100y", "-loggerLevel=ERROR", "-search.maxUniqueTimeseries=100000000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    p = None
    samples = []
    try:
        for _ in range(100):
            try:
                bench.get(f"http://127.0.0.1:{vm_port}/health")
                break
            except Exception:
                time.sleep(0.1)
        body = os.path.join(work, "www", "metrics")
        with open(body, "w") as f:
            f.write("# HELP bench_metric A benchmark gauge.\n# TYPE bench_metric gauge\n")
            for i in range(args.series):
                f.write(f'bench_metric{{path="/api/v1/item/{i}",method="GET",code="200"}} {i * 1.5}\n')
        subprocess.run(["gzip", "-k", "-f", "-6", body], check=True)
        sd = os.path.join(work, "targets.json")
        bench.write_sd(sd, fleet)
        cfg = os.path.join(work, "trawl.yml")
        with open(cfg, "w") as f:
            f.write(f"global:\n  scrape_interval: {args.interval}s\n  scrape_timeout: {min(args.interval, 10)}s\n"
                    f"scrape_configs:\n  - job_name: bench\n    file_sd_configs:\n      - files: ['{sd}']\n"
                    f"remote_write:\n  - url: http://127.0.0.1:{vm_port}/api/v1/write\n")
        web = bench.free_port()
        log = open(os.path.join(work, "trawl.log"), "w")
        p = subprocess.Popen([os.path.abspath(args.trawl), f"--config.file={cfg}",
                              f"--storage.path={work}/data", f"--web.listen-address=127.0.0.1:{web}",
                              "--log.level=warn"], stdout=log, stderr=log)
        t0 = time.time()
        while True:
            ts = bench.targets(web)
            if ts is not None and len(ts) >= len(fleet) and all(t.get("health") == "up" for t in ts):
                break
            if time.time() - t0 > 300 or p.poll() is not None:
                sys.exit("targets not up; see " + log.name)
            time.sleep(1)
        up = time.time()
        while time.time() - up < args.duration:
            s = (time.time() - up, rss(p.pid), bench.cpu_seconds(p.pid))
            samples.append(s)
            print(f"{s[0]:7.0f} s  {s[1] / 2**20:7.1f} MiB  {s[2]:8.1f} CPU s", flush=True)
            time.sleep(args.every)
    finally:
        if p:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
        nginx.send_signal(signal.SIGTERM)
        nginx.wait(timeout=10)
        vm.send_signal(signal.SIGTERM)
        vm.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    half = [s for s in samples if s[0] >= args.duration / 2]
    series = args.targets * (args.series + 5)
    if half:
        lo = min(s[1] for s in half)
        hi = max(s[1] for s in half)
        print(f"\nN={args.targets} S={args.series} interval={args.interval}s, {series} series, "
              f"{args.duration} s")
        print(f"second half: RSS {half[0][1] / 2**20:.1f} → {half[-1][1] / 2**20:.1f} MiB "
              f"(min {lo / 2**20:.1f}, max {hi / 2**20:.1f}; {hi / series:.0f} B per series at most); "
              f"growth {(half[-1][1] - half[0][1]) / 2**20:+.1f} MiB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(samples, f)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Whole process: how long a DNS change takes to show as a target, trawl beside
Prometheus (agent mode), against a real BIND 9.

A job discovers `_bench._tcp.<zone>` (SRV) with a `refresh_interval` of --refresh
seconds. Each round adds one SRV record with `nsupdate` at a random moment and polls
every agent's `/api/v1/targets` every 10 ms until the new target shows; the delay from
the update to the target is one sample. The bound trawl promises is one refresh plus
200 ms (a change waits at most one refresh; then discovery, coalescing and the pools).

Prometheus reads only /etc/resolv.conf and asks port 53, so the whole run happens in a
network and mount namespace of its own (`unshare -mn`, loopback only, a resolv.conf
mounted over the real one naming BIND on 127.0.0.1:53): the script re-runs itself there.

    benches/whole-process/dns_latency.py --trawl target/release/trawl --rounds 20

Needs root (for the namespace) and Debian's bind9, bind9-dnsutils, nginx-light and
prometheus packages. Every process is started on loopback and stopped by PID.
"""

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the fleet helpers)

ZONE = "bench.test"


def start_named(work, port=53):
    d = os.path.join(work, "named")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "zone"), "w") as f:
        f.write(f"$TTL 1\n@ IN SOA ns.{ZONE}. admin.{ZONE}. 1 60 60 3600 1\n"
                f"@ IN NS ns.{ZONE}.\nns IN A 127.0.0.1\n")
    conf = os.path.join(d, "named.conf")
    with open(conf, "w") as f:
        f.write(f"""options {{
  directory "{d}";
  listen-on port {port} {{ 127.0.0.1; }};
  listen-on-v6 {{ none; }};
  pid-file "{d}/named.pid";
  session-keyfile "{d}/session.key";
  managed-keys-directory "{d}";
  recursion no;
  dnssec-validation no;
  notify no;
  allow-query {{ any; }};
}};
controls {{ }};
zone "{ZONE}" {{ type primary; file "{d}/zone"; allow-update {{ 127.0.0.1; }}; }};
""")
    p = subprocess.Popen(["named", "-g", "-c", conf], stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(d, "named.log"), "w"))
    for _ in range(200):
        r = subprocess.run(["dig", "+short", "-p", str(port), "@127.0.0.1", f"ns.{ZONE}", "A"],
                           capture_output=True, text=True)
        if r.stdout.strip() == "127.0.0.1":
            return p
        time.sleep(0.05)
    p.kill()
    sys.exit("named did not answer")


def nsupdate(port, command):
    script = f"server 127.0.0.1 {port}\nzone {ZONE}\n{command}\nsend\n"
    subprocess.run(["nsupdate"], input=script, text=True, check=True)


def in_namespace(args):
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    work = tempfile.mkdtemp(prefix="trawl-dns-latency-")
    resolv = os.path.join(work, "resolv.conf")
    with open(resolv, "w") as f:
        f.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    subprocess.run(["mount", "--bind", resolv, "/etc/resolv.conf"], check=True)
    procs = []
    try:
        named = start_named(work)
        procs.append(named)
        port = bench.free_port()
        addrs = [f"127.3.0.{i + 1}:{port}" for i in range(args.rounds + 1)]
        os.makedirs(os.path.join(work, "www"), exist_ok=True)
        with open(os.path.join(work, "www", "metrics"), "w") as f:
            f.write("# TYPE up_bench gauge\nup_bench 1\n")
        procs.append(bench.start_nginx(work, addrs))
        nsupdate(53, f"update add _bench._tcp.{ZONE} 1 SRV 0 0 {port} 127.3.0.1.")
        cfg = os.path.join(work, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write(f"global:\n  scrape_interval: 15s\nscrape_configs:\n"
                    f"  - job_name: dns\n    dns_sd_configs:\n"
                    f"      - names: [_bench._tcp.{ZONE}]\n        refresh_interval: {args.refresh}s\n")
        agents = {}
        for name in args.agents.split(","):
            web = bench.free_port()
            cmd = bench.agent_cmd(name, args, work, cfg, web)
            procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                          stderr=open(os.path.join(work, f"{name}.log"), "w")))
            agents[name] = web
        # Every agent shows the first target before the rounds start.
        for name, web in agents.items():
            end = time.time() + 60
            while not any(t["labels"].get("instance") == addrs[0] for t in bench.targets(web) or []):
                if time.time() > end:
                    sys.exit(f"{name} never showed the first target")
                time.sleep(0.05)
        rng = random.Random(args.seed)
        delays = {name: [] for name in agents}
        for i in range(1, args.rounds + 1):
            time.sleep(rng.uniform(0, args.refresh))
            want = addrs[i]
            host = want.rsplit(":", 1)[0]
            t0 = time.time()
            nsupdate(53, f"update add _bench._tcp.{ZONE} 1 SRV 0 0 {port} {host}.")
            waiting = set(agents)
            while waiting:
                for name in sorted(waiting):
                    ts = bench.targets(agents[name]) or []
                    if any(t["labels"].get("instance") == want for t in ts):
                        delays[name].append(time.time() - t0)
                        waiting.discard(name)
                if time.time() - t0 > 4 * args.refresh + 30:
                    sys.exit(f"round {i}: {sorted(waiting)} never showed {want}")
                time.sleep(0.01)
        bound = args.refresh + 0.2
        print(f"refresh_interval {args.refresh}s, {args.rounds} changes, bound for trawl "
              f"{bound:.1f}s (one refresh + 200 ms)")
        print("| agent | median | p90 | max | max − refresh |")
        print("|---|---|---|---|---|")
        for name, d in delays.items():
            d = sorted(d)
            p90 = d[min(len(d) - 1, int(0.9 * len(d)))]
            print(f"| {name} | {statistics.median(d):.3f} s | {p90:.3f} s | {max(d):.3f} s | "
                  f"{max(d) - args.refresh:+.3f} s |")
    finally:
        for p in procs:
            p.send_signal(15)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trawl", default="target/release/trawl")
    ap.add_argument("--agents", default="trawl,prometheus")
    ap.add_argument("--refresh", type=int, default=5, help="refresh_interval, seconds")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rw-url", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if os.environ.get("TRAWL_BENCH_IN_NAMESPACE") != "1":
        env = dict(os.environ, TRAWL_BENCH_IN_NAMESPACE="1")
        args_trawl = os.path.abspath(args.trawl)
        argv = [a if a != args.trawl else args_trawl for a in sys.argv[1:]]
        if "--trawl" not in sys.argv:
            argv += ["--trawl", args_trawl]
        sys.exit(subprocess.run(["unshare", "-mn", "--", sys.executable, os.path.abspath(__file__)] + argv,
                                env=env).returncode)
    in_namespace(args)


if __name__ == "__main__":
    main()

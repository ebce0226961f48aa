#!/usr/bin/env python3
"""Whole process: how long a discovery change takes to show as a target, trawl beside
vmagent, both discovering from a fake on loopback:

* `--mechanism kubernetes`: `role: pod` from the fake API server (`kube_fake`, the
  `trawl_tests::kube` server as a process), --pods pods with --ports ports each across
  --namespaces namespaces; a round relabels one random pod (label `version`);
* `--mechanism consul`: the whole catalog of the fake Consul agent (`consul_fake`, the
  `trawl_tests::consul` server as a process), --services services with --per instances
  each; a round changes the metadata `version` of one random service among the first
  100 (kept in a job of their own, `probe`, so a poll reads 1,000 targets, not all),
  one not changed in the last 35 s (the watch of a service that just changed starts
  again only a refresh interval, 30 s, after its last one, as in 3.x), and the first
  round waits until 35 s after the start, when every watch is a blocking query in
  flight;
* `--mechanism zookeeper`: serverset members in a real ZooKeeper (`zk_real`, Debian's
  ZooKeeper started on loopback with --members members); a round changes the status of
  one random member among the first 100 (kept in a job of their own, `probe`). Debian's
  Prometheus 2.42 runs serverset discovery (vmagent has none): run it with
  `--agents trawl,prometheus`.

Target addresses are 127.1.x.y: nothing listens there, scrapes are refused by loopback.
Each agent copies `version` into a target label. After both show every target (the time
from start is reported too), each round, after a quiet spell longer than the update
throttle (5 s), makes one change and polls each agent's `/api/v1/targets` (one thread
per agent, every 2 ms) until the changed targets carry the new version; the delay from
the change to the target is one sample. trawl's goal: under 200 ms.

    benches/whole-process/sd_latency.py --mechanism kubernetes --trawl target/release/trawl \
        --fake target/release/kube_fake --rounds 30
    benches/whole-process/sd_latency.py --mechanism consul --fake target/release/consul_fake
    benches/whole-process/sd_latency.py --mechanism zookeeper --fake target/release/zk_real \
        --agents trawl,prometheus

Needs Debian's victoria-metrics package for vmagent (--agents trawl to run alone).
Every process is started on loopback and stopped by PID.
"""

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (free ports, the agents' command lines, CPU and memory)


def shows(port, version, ports, pool):
    """True once all `ports` changed targets carry `version` (unique to the round),
    looked for in the raw answer: parsing megabytes of JSON per poll would swamp the
    delay measured."""
    try:
        query = f"&scrapePool={pool}" if pool else ""
        body = bench.get(f"http://127.0.0.1:{port}/api/v1/targets?state=active{query}")
    except Exception:
        return False
    return body.count(f'"version":"{version}"'.encode()) >= ports


def watch_for(port, version, ports, pool, t0, out, name):
    end = t0 + 120
    while time.time() < end:
        if shows(port, version, ports, pool):
            out[name] = time.time() - t0
            return
        time.sleep(0.002)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trawl", default="target/release/trawl")
    ap.add_argument("--mechanism", default="kubernetes", choices=["kubernetes", "consul", "zookeeper"])
    ap.add_argument("--fake", default=None)
    ap.add_argument("--agents", default="trawl,vmagent")
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--ports", type=int, default=3)
    ap.add_argument("--namespaces", type=int, default=50)
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--per", type=int, default=10)
    ap.add_argument("--members", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--gap", type=float, default=5.5)
    ap.add_argument("--rw-url", default=None)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="trawl-sd-latency-")
    procs = []
    k8s = args.mechanism == "kubernetes"
    zk = args.mechanism == "zookeeper"
    if k8s:
        fake_cmd = [args.fake or "target/release/kube_fake", "--pods", str(args.pods),
                    "--ports", str(args.ports), "--namespaces", str(args.namespaces)]
    elif zk:
        fake_cmd = [args.fake or "target/release/zk_real", "--members", str(args.members)]
    else:
        fake_cmd = [args.fake or "target/release/consul_fake", "--services", str(args.services),
                    "--per", str(args.per)]
    # Targets one change touches, the units a change picks from, the command.
    if k8s:
        per_change, units = args.ports, args.pods
    elif zk:
        per_change, units = 1, args.members
    else:
        per_change, units = args.per, args.services
    verb = "relabel" if k8s else "version"
    try:
        fake = subprocess.Popen(fake_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(fake)
        line = fake.stdout.readline().split()
        if line[:1] != ["listening"]:
            sys.exit(f"{fake_cmd[0]}: {line}")
        url = line[1]
        cfg = os.path.join(work, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1h\n  scrape_timeout: 10s\nscrape_configs:\n")
            if zk:
                # One provider (the blocks are identical), two jobs: the probe members
                # (the first 100) and the rest.
                for job, action in [("probe", "keep"), ("members", "drop")]:
                    f.write(f"  - job_name: {job}\n"
                            f"    serverset_sd_configs: [{{servers: ['{url}'], paths: [/bench/web]}}]\n"
                            "    relabel_configs:\n"
                            f"      - {{source_labels: [__meta_serverset_path], regex: '.*/member_00000000[0-9][0-9]', action: {action}}}\n"
                            "      - {source_labels: [__meta_serverset_status], target_label: version}\n")
            elif k8s:
                f.write("  - job_name: pods\n"
                        f"    kubernetes_sd_configs: [{{role: pod, api_server: '{url}'}}]\n"
                        "    relabel_configs:\n"
                        "      - {source_labels: [__meta_kubernetes_pod_label_version], target_label: version}\n")
            else:
                # One provider (the blocks are identical), two jobs: the probe services
                # (svc-0 to svc-99) and the rest.
                for job, action in [("probe", "keep"), ("services", "drop")]:
                    f.write(f"  - job_name: {job}\n"
                            f"    consul_sd_configs: [{{server: '{url}'}}]\n"
                            "    relabel_configs:\n"
                            "      - {source_labels: [__meta_consul_service], regex: consul, action: drop}\n"
                            f"      - {{source_labels: [__meta_consul_service], regex: 'svc-[0-9]{{1,2}}', action: {action}}}\n"
                            "      - {source_labels: [__meta_consul_service_metadata_version], target_label: version}\n")
        agents = {}
        want = units * per_change
        started = {}
        for name in args.agents.split(","):
            web = bench.free_port()
            cmd = bench.agent_cmd(name, args, work, cfg, web)
            started[name] = time.time()
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                 stderr=open(os.path.join(work, f"{name}.log"), "w"))
            procs.append(p)
            agents[name] = (web, p)
        synced = {}
        for name, (web, _) in agents.items():
            end = time.time() + 120
            while len(bench.targets(web) or []) < want:
                if time.time() > end:
                    sys.exit(f"{name} never showed {want} targets")
                time.sleep(0.05)
            synced[name] = time.time() - started[name]
        rng = random.Random(args.seed)
        pool = None if k8s else "probe"
        changed_at = {}
        if not k8s and not zk:
            first = min(started.values()) + 35
            time.sleep(max(0.0, first - time.time()))
        delays = {name: [] for name in agents}
        for r in range(1, args.rounds + 1):
            # After a quiet spell: a change within 5 s of the last delivery waits for
            # the update throttle (Prometheus's updatert), in trawl and Prometheus alike.
            time.sleep(rng.uniform(args.gap, args.gap + 1.5))
            if k8s:
                i = rng.randrange(units)
            elif zk:
                i = rng.randrange(min(100, units))
            else:
                i = rng.choice([s for s in range(min(100, units))
                                if time.time() - changed_at.get(s, 0) > 35])
                changed_at[i] = time.time()
            version = f"r{r}"
            t0 = time.time()
            fake.stdin.write(f"{verb} {i} {version}\n")
            fake.stdin.flush()
            fake.stdout.readline()
            # One poller per agent, so a slow answer of one never delays the other.
            seen = {}
            threads = [threading.Thread(target=watch_for,
                                        args=(agents[n][0], version, per_change, pool, t0, seen, n))
                       for n in agents]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for name in agents:
                if name not in seen:
                    sys.exit(f"round {r}: {name} never showed change {i} at {version}")
                delays[name].append(seen[name])
        if k8s:
            print(f"{args.pods} pods x {args.ports} ports in {args.namespaces} namespaces, "
                  f"{args.rounds} relabels, polled every 2 ms")
        elif zk:
            print(f"{args.members} serverset members in a real ZooKeeper, {args.rounds} "
                  "changes of one member's status, polled every 2 ms")
        else:
            print(f"{args.services} services x {args.per} instances, {args.rounds} changes "
                  "of one service's metadata, polled every 2 ms")
        print("| agent | all targets after start | change → target median | p90 | max | peak RSS |")
        print("|---|---|---|---|---|---|")
        for name, d in delays.items():
            d = sorted(d)
            p90 = d[min(len(d) - 1, int(0.9 * len(d)))]
            pid = agents[name][1].pid
            print(f"| {name} | {synced[name]:.2f} s | {1000 * statistics.median(d):.0f} ms | "
                  f"{1000 * p90:.0f} ms | {1000 * max(d):.0f} ms | "
                  f"{bench.peak_rss(pid) / 2**20:.0f} MiB |")
    finally:
        for p in procs:
            p.send_signal(15)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Whole-process benchmark: trawl, vmagent and Prometheus agent mode, one after another,
on the same fleet of nginx-served targets on loopback addresses.

For each agent it reports CPU seconds per million samples scraped, peak RSS per active
series, and the delay from a file_sd change (a new target renamed into place) until the
new target shows in the agent's /api/v1/targets.

    benches/whole-process/bench.py --targets 1000 --series 100 --trawl target/release/trawl
    benches/whole-process/bench.py --targets 1000 --series 100 --remote-write

With --remote-write, a VictoriaMetrics single-node receives every agent's samples over
remote write (each agent's series carry an external label bench_agent=<agent>); the
table then also says how many series of each agent reached it.

Needs Debian's nginx-light, prometheus and victoria-metrics packages. Every process is
started on 127.x.y.z addresses with ports picked here and stopped by PID.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def addr(i, port):
    # 127.1.0.1, 127.1.0.2, ... (Linux routes all of 127/8 to lo).
    return f"127.1.{i // 250}.{i % 250 + 1}:{port}"


def cpu_split(pid):
    """(user, system) CPU seconds of a process, its threads included."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(rest[11]) / tick, int(rest[12]) / tick


def cpu_seconds(pid):
    return sum(cpu_split(pid))


def status_bytes(pid, field):
    """A `kB` field of /proc/PID/status (`VmHWM`, `VmRSS`), in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def peak_rss(pid):
    return status_bytes(pid, "VmHWM")


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def targets(port):
    try:
        v = json.loads(get(f"http://127.0.0.1:{port}/api/v1/targets?state=active"))
    except Exception:
        return None
    return v.get("data", {}).get("activeTargets", [])


def write_sd(path, addrs):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump([{"targets": addrs}], f)
    os.rename(tmp, path)


# Descriptors per nginx process: this machine's hard limit is often 20 000, which
# cannot hold a listening socket and a kept-alive connection for each of 10 000 targets
# (short of slots, nginx answers 500 or closes idle keep-alive connections, and every
# agent then pays a TCP handshake per scrape: such a run measures nginx). The fleet is
# split over processes of at most this many addresses.
NGINX_SHARD = 4000


class Nginx:
    """nginx processes serving one fleet from `work/www`, one access log for all."""

    def __init__(self, procs):
        self.procs = procs

    def send_signal(self, sig):
        for p in self.procs:
            p.send_signal(sig)

    def wait(self, timeout=None):
        for p in self.procs:
            p.wait(timeout=timeout)

    def kill(self):
        for p in self.procs:
            p.kill()


def start_nginx(work, addrs):
    www = os.path.join(work, "www")
    os.makedirs(www, exist_ok=True)
    procs = []
    for i in range(0, len(addrs), NGINX_SHARD):
        shard = addrs[i:i + NGINX_SHARD]
        procs.append(start_nginx_shard(work, i // NGINX_SHARD, shard))
    return Nginx(procs)


def start_nginx_shard(work, n, addrs):
    www = os.path.join(work, "www")
    listens = "".join(f"    listen {a};\n" for a in addrs)
    # Every shard appends whole buffered lines to the same access log (O_APPEND).
    conf = f"""worker_processes 1;
pid {work}/nginx-{n}.pid;
error_log {work}/nginx-error.log;
worker_rlimit_nofile 65536;
events {{ worker_connections 16384; }}
http {{
  log_format stamp '$msec $server_addr';
  access_log {work}/access.log stamp buffer=256k flush=1s;
  gzip_static on;
  client_body_temp_path {work}/body-{n};
  types {{ }}
  default_type "text/plain; version=0.0.4";
  keepalive_timeout 75s;
  keepalive_requests 1000000;
  server {{
{listens}    root {www};
    location / {{ }}
  }}
}}
"""
    path = os.path.join(work, f"nginx-{n}.conf")
    with open(path, "w") as f:
        f.write(conf)
    p = subprocess.Popen(
        ["nginx", "-c", path, "-p", work, "-g", "daemon off; master_process off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    host, port = addrs[-1].rsplit(":", 1)
    for _ in range(200):
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return p
        except OSError:
            time.sleep(0.05)
    p.kill()
    sys.exit("nginx did not start")


def agent_cmd(name, args, work, cfg, port):
    data = os.path.join(work, f"data-{name}")
    shutil.rmtree(data, ignore_errors=True)
    if name.startswith("trawl"):
        extra = ["--scrape.first-at-once"] if args.first_at_once else []
        return [args.trawl, *extra, f"--config.file={cfg}", f"--storage.path={data}",
                f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    if name == "vmagent":
        # Without a receiver, vmagent keeps what it scraped in its on-disk queue (the
        # URL is unreachable), its own storage.
        url = args.rw_url or "http://127.0.0.1:1/api/v1/write"
        return ["vmagent", f"-promscrape.config={cfg}", f"-remoteWrite.tmpDataPath={data}",
                f"-remoteWrite.url={url}",
                f"-httpListenAddr=127.0.0.1:{port}", "-loggerLevel=ERROR"]
    return ["prometheus", "--enable-feature=agent", f"--config.file={cfg}",
            f"--storage.agent.path={data}", f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=error"]


def run_one(name, args, work, fleet, sd_path, extra_addr):
    cfg = os.path.join(work, f"{name}.yml")
    interval = args.interval
    with open(cfg, "w") as f:
        f.write(f"global:\n  scrape_interval: {interval}s\n  scrape_timeout: {interval}s\n"
                f"  external_labels: {{bench_agent: {name}}}\n"
                f"scrape_configs:\n  - job_name: bench\n    file_sd_configs:\n"
                f"      - files: ['{sd_path}']\n")
        if args.rw_url and name not in ("vmagent", "trawl-wal"):
            f.write(f"remote_write:\n  - url: {args.rw_url}\n")
    write_sd(sd_path, fleet)
    port = free_port()
    log = open(os.path.join(work, f"{name}.log"), "w")
    p = subprocess.Popen(agent_cmd(name, args, work, cfg, port), stdout=log, stderr=log)
    try:
        # Up: every target listed (and scraped once).
        t0 = time.time()
        while True:
            ts = targets(port)
            if ts is not None and len(ts) >= len(fleet) and all(t.get("health") == "up" for t in ts):
                break
            if time.time() - t0 > 180 or p.poll() is not None:
                up = sum(1 for t in (ts or []) if t.get("health") == "up")
                for t in (ts or []):
                    if t.get("health") != "up":
                        print(f"{name}: {t.get('scrapeUrl')} {t.get('health')}: {t.get('lastError')}",
                              file=sys.stderr)
                        break
                raise SystemExit(f"{name}: {up}/{len(fleet)} targets up after {time.time() - t0:.0f}s; see {log.name}")
            time.sleep(0.2)
        time.sleep(args.warmup)
        (u0, s0), w0 = cpu_split(p.pid), time.time()
        time.sleep(args.duration)
        (u1, s1), w1 = cpu_split(p.pid), time.time()
        c0, c1 = u0 + s0, u1 + s1
        ts = targets(port) or []
        up = sum(1 for t in ts if t.get("health") == "up")
        rss = peak_rss(p.pid)
        # Discovery delay: one target more, renamed into place.
        want = addr(extra_addr, args.port)
        start = time.time()
        write_sd(sd_path, fleet + [want])
        delay = None
        while time.time() - start < 120:
            ts = targets(port) or []
            if any(want in t.get("scrapeUrl", "") or t.get("labels", {}).get("instance") == want for t in ts):
                delay = time.time() - start
                break
            time.sleep(0.005)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
        log.close()
    series = len(fleet) * (args.series + 5)  # each target's series and its 5 report series
    delivered = None
    if args.rw_url and name != "trawl-wal":
        # Series of this agent at the receiver, once what was queued has arrived.
        base = args.rw_url.rsplit("/api/", 1)[0]
        q = urllib.parse.quote(f'count({{bench_agent="{name}"}})')
        for _ in range(60):
            try:
                get(f"{base}/internal/force_flush")
                # Counting a million series takes VictoriaMetrics more than get's 5 s.
                v = json.loads(get(f"{base}/api/v1/query?query={q}", timeout=120))
                r = v["data"]["result"]
                delivered = int(float(r[0]["value"][1])) if r else 0
            except Exception:
                delivered = None
            if delivered is not None and delivered >= series:
                break
            time.sleep(1)
    samples = series * (w1 - w0) / interval
    lat = lateness(os.path.join(work, "access.log"), w0, w1, interval)
    return {
        "agent": name,
        "body": args.body,
        "lateness_ms": lat,
        "targets_up": up,
        "cpu_s_per_million_samples": (c1 - c0) / (samples / 1e6),
        # The kernel's part (system time): receiving the bodies, sending requests and
        # remote-write bodies, writing files. Much of it is the same work for every
        # agent, a floor no user-space saving moves.
        "sys_s_per_million_samples": (s1 - s0) / (samples / 1e6),
        "peak_rss_bytes": rss,
        "rss_bytes_per_active_series": rss / series,
        "discovery_delay_s": delay,
        "samples_per_s": samples / (w1 - w0),
        "series_at_receiver": delivered,
    }


def lateness(log, t0, t1, interval):
    """Scrape-start lateness from nginx's access log: for each target, every request's
    offset from the target's phase (the earliest offset seen in the window, modulo the
    interval), in milliseconds; p50, p99 and max over all targets. A constant delay
    common to every scrape of a target is not seen: this is the jitter against the
    agent's own best, the same measure for every agent."""
    by = {}
    try:
        with open(log) as f:
            for line in f:
                parts = line.split()
                if len(parts) != 2:
                    continue
                t = float(parts[0])
                if t0 <= t <= t1:
                    by.setdefault(parts[1], []).append(t)
    except OSError:
        return None
    late = []
    for ts in by.values():
        ref = ts[0]
        d = [((t - ref + interval / 2) % interval) - interval / 2 for t in ts]
        m = min(d)
        late.extend((x - m) * 1000 for x in d)
    if not late:
        return None
    late.sort()
    q = lambda p: late[min(len(late) - 1, int(p * len(late)))]
    return {"p50": q(0.5), "p99": q(0.99), "max": late[-1], "n": len(late)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", type=int, default=1000)
    ap.add_argument("--series", type=int, default=100)
    ap.add_argument("--interval", type=int, default=1, help="scrape interval, seconds")
    ap.add_argument("--warmup", type=int, default=15)
    ap.add_argument("--duration", type=int, default=60)
    ap.add_argument("--agents", default=None,
                    help="comma-separated, of trawl, trawl-wal (trawl without remote write), "
                    "vmagent, prometheus; default all (trawl-wal only with --remote-write)")
    ap.add_argument("--bodies", default="gzip,plain",
                    help="gzip (nginx serves a pre-compressed body to agents asking for it, "
                    "as exporters do), plain, or both, each a row of its own")
    ap.add_argument("--first-at-once", action="store_true",
                    help="run trawl with --scrape.first-at-once")
    ap.add_argument("--trawl", default="target/release/trawl")
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--remote-write", action="store_true",
                    help="send every agent's samples to a VictoriaMetrics started here")
    args = ap.parse_args()
    if args.agents is None:
        args.agents = "trawl,trawl-wal,vmagent,prometheus" if args.remote_write else "trawl,vmagent,prometheus"
    args.rw_url = None
    args.trawl = os.path.abspath(args.trawl)
    work = tempfile.mkdtemp(prefix="trawl-bench-")
    args.port = free_port()
    fleet = [addr(i, args.port) for i in range(args.targets)]
    extra = args.targets
    nginx = start_nginx(work, fleet + [addr(extra, args.port)])
    vm = None
    if args.remote_write:
        vm_port = free_port()
        vm = subprocess.Popen(
            ["victoria-metrics", f"-storageDataPath={work}/vm", f"-httpListenAddr=127.0.0.1:{vm_port}",
             "-retentionPeriod=100y", "-loggerLevel=ERROR", "-search.latencyOffset=0s",
             "-search.maxUniqueTimeseries=100000000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                get(f"http://127.0.0.1:{vm_port}/health")
                break
            except Exception:
                time.sleep(0.1)
        args.rw_url = f"http://127.0.0.1:{vm_port}/api/v1/write"
    results = []
    try:
        body = os.path.join(work, "www", "metrics")
        with open(body, "w") as f:
            f.write("# HELP bench_metric A benchmark gauge.\n# TYPE bench_metric gauge\n")
            for i in range(args.series):
                f.write(f'bench_metric{{path="/api/v1/item/{i}",method="GET",code="200"}} {i * 1.5}\n')
        sd = os.path.join(work, "targets.json")
        for kind in args.bodies.split(","):
            args.body = kind
            if kind == "gzip":
                subprocess.run(["gzip", "-k", "-f", "-6", body], check=True)
            else:
                try:
                    os.unlink(body + ".gz")
                except FileNotFoundError:
                    pass
            for name in args.agents.split(","):
                r = run_one(name, args, work, fleet, sd, extra)
                results.append(r)
                print(json.dumps(r), flush=True)
    finally:
        nginx.send_signal(signal.SIGTERM)
        nginx.wait(timeout=10)
        # See NGINX_SHARD.
        try:
            with open(os.path.join(work, "nginx-error.log")) as f:
                errors = f.read()
            if "worker_connections are not enough" in errors or "Too many open files" in errors:
                print("WARNING: nginx ran out of connections or descriptors; the figures "
                      "include reconnections or failed scrapes", file=sys.stderr)
        except FileNotFoundError:
            pass
        if vm:
            vm.send_signal(signal.SIGTERM)
            vm.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    rw = " remote_write" if args.rw_url else ""
    print(f"\nN={args.targets} S={args.series} interval={args.interval}s duration={args.duration}s{rw}")
    print("| body | agent | targets up | CPU s / M samples (system) | peak RSS | RSS / active series | "
          "lateness p50 / p99 / max | discovery delay | series at receiver |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        d = "none in 120 s" if r["discovery_delay_s"] is None else f"{r['discovery_delay_s'] * 1000:.0f} ms"
        at = "-" if r["series_at_receiver"] is None else str(r["series_at_receiver"])
        lat = r["lateness_ms"]
        ls = "-" if lat is None else f"{lat['p50']:.1f} / {lat['p99']:.1f} / {lat['max']:.0f} ms"
        print(f"| {r['body']} | {r['agent']} | {r['targets_up']} | {r['cpu_s_per_million_samples']:.3f} ({r['sys_s_per_million_samples']:.3f}) | "
              f"{r['peak_rss_bytes'] / 2**20:.1f} MiB | {r['rss_bytes_per_active_series']:.0f} B | {ls} | {d} | {at} |")
    print("\nRatios within this invocation (trawl ÷ peer):")
    print("| body | trawl | ÷ vmagent CPU, RSS | ÷ Prometheus agent CPU, RSS |")
    print("|---|---|---|---|")
    for kind in args.bodies.split(","):
        rows = {r["agent"]: r for r in results if r["body"] == kind}
        for t in ("trawl", "trawl-wal"):
            if t not in rows:
                continue
            cells = []
            for peer in ("vmagent", "prometheus"):
                if peer in rows:
                    c = rows[t]["cpu_s_per_million_samples"] / rows[peer]["cpu_s_per_million_samples"]
                    m = rows[t]["rss_bytes_per_active_series"] / rows[peer]["rss_bytes_per_active_series"]
                    cells.append(f"{c:.2f}, {m:.2f}")
                else:
                    cells.append("-")
            print(f"| {kind} | {t} | {cells[0]} | {cells[1]} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()

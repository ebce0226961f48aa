"""Checks the fake Consul agent with a real Consul client (py-consul from PyPI).

Run by tests/tests/consul_fake.rs as `python3 client_check.py PORT`. It prints one line
per step; where the test must change the catalog while a blocking query waits, it prints
a line ending in `?` and reads one line from standard input before going on.
"""

import json
import sys
import threading
import time

import consul

port = int(sys.argv[1])
c = consul.Consul(host="127.0.0.1", port=port)


def say(*words):
    print(*words, flush=True)


def ask(*words):
    say(*words, "?")
    sys.stdin.readline()


say("dc", c.agent.self()["Config"]["Datacenter"])

idx, services = c.catalog.services()
say("services", json.dumps(services, sort_keys=True))

# A blocking query with nothing changing ends when its wait does, with the same index.
t0 = time.time()
idx2, _ = c.catalog.services(index=idx, wait="1s")
say("timeout", idx2 == idx, round(time.time() - t0) >= 1)

# One that the test answers by registering a service while it waits.
result = {}


def blocked():
    t = time.time()
    i, s = c.catalog.services(index=idx, wait="30s")
    result["catalog"] = (int(i) > int(idx), "api" in s, time.time() - t)


th = threading.Thread(target=blocked)
th.start()
ask("register api")
th.join()
newer, has_api, took = result["catalog"]
say("woken", newer, has_api, took < 10)

hidx, nodes = c.health.service("web", tag="prod")
say(
    "health",
    json.dumps(
        [
            (n["Node"]["Node"], n["Service"]["ID"], n["Service"]["Port"],
             [ch["Status"] for ch in n["Checks"]])
            for n in nodes
        ]
    ),
)
_, nodes = c.health.service("web", node_meta={"rack": "r1"}, filter_expr='Service.Port == 8081')
say("filtered", json.dumps([n["Service"]["ID"] for n in nodes]))

# The service's index moves when a check changes; the catalog's does not.
def blocked_health():
    i, n = c.health.service("web", index=hidx, wait="30s")
    result["health"] = (int(i) > int(hidx), [ch["Status"] for e in n for ch in e["Checks"]])


th = threading.Thread(target=blocked_health)
th.start()
ask("fail a check")
th.join()
newer, statuses = result["health"]
say("health woken", newer, "critical" in statuses)

_, only_passing = c.health.service("web", passing=True)
say("passing", json.dumps(sorted(n["Service"]["ID"] for n in only_passing)))

ask("require token")
try:
    c.catalog.services()
    say("acl", "open")
except consul.ACLPermissionDenied:
    say("acl", "denied")
secured = consul.Consul(host="127.0.0.1", port=port, token="s3cret")
_, s = secured.catalog.services()
say("token", "web" in s)

try:
    secured.catalog.services(dc="elsewhere")
    say("other dc", "answered")
except consul.ConsulException as e:
    say("other dc", "No path to datacenter" in str(e))

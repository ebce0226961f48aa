"""Checks the fake Hetzner Cloud API (trawl_tests::hetzner) with hcloud-python, Hetzner's
own client: servers.get_all pages through meta.pagination with a label selector and
builds its Server objects (public and private networks, server type, datacenter, image,
labels); networks.get_all lists the networks; a wrong token is refused with the API's
error code. Usage: hetzner_client_check.py <base URL> <token>."""
import sys

from hcloud import APIException, Client

base, token = sys.argv[1], sys.argv[2]
c = Client(token=token, api_endpoint=base + "/v1")
for s in c.servers.get_all(label_selector="env=prod"):
    priv = ",".join(f"{p.network.id}={p.ip}" for p in s.private_net)
    ipv4 = s.public_net.ipv4.ip if s.public_net.ipv4 else None
    print(s.id, s.name, s.status, ipv4, s.public_net.ipv6.ip, priv,
          s.server_type.name, s.server_type.cores, s.datacenter.location.name,
          s.image.name, sorted(s.labels.items()))
print("networks", [(n.id, n.name) for n in c.networks.get_all()])
try:
    Client(token="wrong", api_endpoint=base + "/v1").servers.get_all()
    print("accepted a wrong token")
except APIException as e:
    print("refused:", e.code, e.message)

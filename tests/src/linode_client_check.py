"""Checks the fake Linode API (trawl_tests::linode) with linode_api4, Linode's own Python
client: its PaginatedList pages through every instance (page and page_size), a region
filter goes as X-Filter, the IP and IPv6 range listings decode into its models, events
filtered by creation time come newest first, and a wrong token is refused with the
API's reason. Usage: linode_client_check.py <base URL> <token> <since>."""
import sys

from linode_api4 import Event, Instance, LinodeClient
from linode_api4.errors import ApiError

base, token, since = sys.argv[1], sys.argv[2], sys.argv[3]
client = LinodeClient(token, base_url=base + "/v4")

for i in client.linode.instances():
    print(i.id, i.label, i.region.id, i.status, [str(a) for a in i.ipv4], i.ipv6, i.tags)
print("eu-west", [i.label for i in client.linode.instances(Instance.region == "eu-west")])
for ip in client.networking.ips():
    print("ip", ip.address, ip.public, ip.rdns, ip.linode_id)
for r in client.networking.ipv6_ranges():
    print("range", r.range, r.prefix, r.route_target)
print("events", [(e.action, e.entity.id) for e in client.account.events(Event.created >= since)])
try:
    list(LinodeClient("wrong", base_url=base + "/v4").linode.instances())
    print("accepted a wrong token")
except ApiError as e:
    print("refused:", e.status, e.errors)

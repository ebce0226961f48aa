"""Checks the fake IONOS Cloud API (trawl_tests::ionos) with ionoscloud, IONOS's own SDK:
ServersApi.datacenters_servers_get at depth 3 deserialises every server with its NICs
(names and IPs) and volumes into the SDK's models; an empty datacenter has no items; a
wrong password is refused with the API's status. Usage: ionos_client_check.py <base URL>."""
import sys

import ionoscloud

base = sys.argv[1]


def api(user, password):
    cfg = ionoscloud.Configuration(host=base + "/cloudapi/v6", username=user, password=password)
    return ionoscloud.ServersApi(ionoscloud.ApiClient(cfg))


servers = api("user@example.com", "secret").datacenters_servers_get("dc1", depth=3)
for s in servers.items:
    nics = [(n.properties.name, n.properties.ips) for n in s.entities.nics.items]
    print(s.id, s.properties.name, s.properties.vm_state, s.metadata.state, nics,
          s.entities.volumes.items[0].properties.image)
print("empty", api("user@example.com", "secret").datacenters_servers_get("dc2", depth=3).items)
try:
    api("user@example.com", "wrong").datacenters_servers_get("dc1", depth=3)
    print("accepted a wrong password")
except ionoscloud.ApiException as e:
    print("refused:", e.status)

"""Checks the fake Scaleway API (trawl_tests::scaleway) with Scaleway's own Python SDK:
InstanceV1API pages through the servers (X-Total-Count, per_page) with a tag filter
and decodes each into its models, IpamV1API finds a private NIC's address by resource
id, BaremetalV1API lists servers, offers and images, and a wrong secret key is refused
with the API's error. Usage: scaleway_client_check.py <base URL> <secret key>."""
import sys

from scaleway import Client
from scaleway.baremetal.v1 import BaremetalV1API
from scaleway.instance.v1 import InstanceV1API
from scaleway.ipam.v1 import IpamV1API
from scaleway_core.api import ScalewayException

base, key = sys.argv[1], sys.argv[2]


def client(secret):
    return Client(access_key="SCWABCDEFGHIJ0123456", secret_key=secret,
                  default_project_id="cb334986-b054-4725-9d5a-30850fdc6015",
                  default_region="fr-par", default_zone="fr-par-1", api_url=base)


instance = InstanceV1API(client(key))
for s in instance.list_servers_all(zone="fr-par-1", per_page=2, tags=["web"]):
    print(s.name, s.state, s.zone, s.tags, [(ip.address, ip.family) for ip in s.public_ips],
          s.image.arch if s.image else None)
nic = [s for s in instance.list_servers_all(zone="fr-par-1") if s.private_nics]
ipam = IpamV1API(client(key))
for s in nic:
    ids = [n.id for n in s.private_nics]
    ips = ipam.list_i_ps_all(region="fr-par", resource_ids=ids, resource_types=["instance_private_nic"])
    print("nic", s.name, [(ip.address, ip.resource.id) for ip in ips])
metal = BaremetalV1API(client(key))
print("metal", [(m.name, m.status, [ip.address for ip in m.ips]) for m in metal.list_servers_all(zone="fr-par-1")],
      [o.name for o in metal.list_offers_all(zone="fr-par-1")], [o.name for o in metal.list_os_all(zone="fr-par-1")])
try:
    InstanceV1API(client("00000000-0000-0000-0000-000000000000")).list_servers(zone="fr-par-1")
    print("accepted a wrong key")
except ScalewayException as e:
    print("refused:", e.status_code, e.response.json()["type"])

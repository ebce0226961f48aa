"""Checks the fake DigitalOcean API (trawl_tests::digitalocean) with python-digitalocean,
a real client of the API: its Manager lists every droplet, following the answers'
links.pages.next from page to page, and builds its Droplet objects from them (networks
read into public, private and IPv6 addresses); a wrong token is refused with the API's
message. Usage: digitalocean_client_check.py <base URL> <token>."""
import os
import sys

base, token = sys.argv[1], sys.argv[2]
os.environ["DIGITALOCEAN_END_POINT"] = base + "/v2/"

import digitalocean  # noqa: E402

m = digitalocean.Manager(token=token)
droplets = m.get_all_droplets(params={"per_page": 2})
for d in droplets:
    print(d.id, d.name, d.ip_address, d.private_ip_address, d.ip_v6_address, d.status,
          d.region["slug"], ",".join(d.tags))
try:
    digitalocean.Manager(token="wrong").get_all_droplets()
    print("accepted a wrong token")
except digitalocean.DataReadError as e:
    print("refused:", e)

"""Checks the fake Lightsail (trawl_tests::lightsail) with AWS's own SDK for Python:
boto3's Lightsail client (its request shapes and response parser come from botocore's
service model) pages through get_instances with its paginator, then calls an operation
the fake does not serve. Prints what it read, one line per instance, for the Rust test
to compare."""
import sys

import boto3
import botocore.exceptions

c = boto3.client(
    "lightsail",
    region_name="us-east-1",
    endpoint_url=sys.argv[1],
    aws_access_key_id="AKIDCHECK",
    aws_secret_access_key="check",
)
pages = 0
for page in c.get_paginator("get_instances").paginate():
    pages += 1
    for i in page["instances"]:
        tags = ",".join("%s=%s" % (t["key"], t["value"]) for t in i.get("tags", []))
        print(i["name"], i.get("privateIpAddress"), i.get("publicIpAddress"),
              i["state"]["name"], i["location"]["availabilityZone"], tags, flush=True)
print("pages", pages, flush=True)
try:
    c.get_bundles()
except botocore.exceptions.ClientError as e:
    print("error", e.response["Error"]["Code"], flush=True)

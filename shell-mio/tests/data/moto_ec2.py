#!/usr/bin/env python3
"""Drives EC2 instances in a moto server with boto3 (AWS's own SDK for Python), for the
EC2 discovery tests.

    moto_ec2.py PORT run KEY=VALUE...   runs one instance tagged with the pairs; prints its id
    moto_ec2.py PORT terminate ID       terminates an instance
    moto_ec2.py PORT stop ID            stops an instance

The region is us-east-1; moto checks no credentials.
"""
import sys

import boto3

PORT, CMD, *ARGS = sys.argv[1:]
ec2 = boto3.client(
    "ec2",
    region_name="us-east-1",
    endpoint_url="http://127.0.0.1:%s" % PORT,
    aws_access_key_id="AKIDMOTO",
    aws_secret_access_key="moto",
)
if CMD == "run":
    tags = [{"Key": k, "Value": v} for k, v in (a.split("=", 1) for a in ARGS)]
    r = ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.small",
        Placement={"AvailabilityZone": "us-east-1b"},
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )
    print(r["Instances"][0]["InstanceId"])
elif CMD == "terminate":
    ec2.terminate_instances(InstanceIds=ARGS)
elif CMD == "stop":
    ec2.stop_instances(InstanceIds=ARGS)
else:
    sys.exit("unknown command " + CMD)

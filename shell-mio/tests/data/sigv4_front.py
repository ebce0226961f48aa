#!/usr/bin/env python3
"""A receiver front that checks AWS Signature Version 4 as AWS checks it, with botocore
(the AWS SDK for Python's own signer, an implementation independent of trawl's): each
POST is signed again from its method, URL, the headers it names as signed, its body and
its X-Amz-Date, with the credentials given here; a request whose Authorization header
differs is answered 403 (as Amazon Managed Service for Prometheus answers), one that
matches is forwarded to the real receiver and its answer passed back.

A GET (an AWS Query-protocol call such as EC2's DescribeInstances) is checked the same
way and forwarded as it came, path, query and headers, to the upstream (moto, which
routes by the Authorization header's scope and checks no signature itself); one whose
signature differs is answered 401 AuthFailure as EC2 answers it.

    sigv4_front.py PORT UPSTREAM_PORT ACCESS_KEY SECRET_KEY REGION SERVICE LOG [pass]

With "pass", a POST is forwarded to the same path (an AWS JSON-protocol call such as
Lightsail's GetInstances) and a refused one is answered 400 as AWS's JSON APIs answer
it; without it, to the receiver's /api/v1/write (remote write).

Every request appends one line to LOG: "ok", "bad <reason>", or "upstream <status>
<body>"
when the receiver refused what the front forwarded.
"""
import datetime
import http.client
import http.server
import sys
from unittest import mock

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

PORT, UPSTREAM, AK, SK, REGION, SERVICE, LOG = sys.argv[1:8]
PASS = sys.argv[8:9] == ["pass"]


def log(line):
    with open(LOG, "a") as f:
        f.write(line + "\n")


def expected(method, host, path, headers, body):
    """The Authorization header botocore computes for the same request."""
    auth = headers.get("Authorization", "")
    if "SignedHeaders=" not in auth:
        return None
    signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
    # AWS requires every x-amz-* header signed (and checks Content-Type where signed).
    for n in headers:
        low = n.lower()
        if (low.startswith("x-amz-") or low == "content-type") and low not in signed:
            raise ValueError("header %s sent but not signed" % n)
    kept = {n: v for n, v in headers.items() if n.lower() in signed and n.lower() != "host"}
    kept.pop("X-Amz-Date", None)
    kept.pop("X-Amz-Security-Token", None)
    req = AWSRequest(method=method, url="http://" + host + path, headers=kept, data=body)
    stamp = datetime.datetime.strptime(headers.get("X-Amz-Date", ""), "%Y%m%dT%H%M%SZ")
    creds = Credentials(AK, SK, headers.get("X-Amz-Security-Token"))
    with mock.patch("botocore.auth.get_current_datetime", return_value=stamp):
        SigV4Auth(creds, SERVICE, REGION).add_auth(req)
    return req.headers["Authorization"]


class Front(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k: v for k, v in self.headers.items()}
        try:
            want = expected("POST", self.headers.get("Host", ""), self.path, headers, body)
        except Exception as e:  # a malformed header: refused, as AWS refuses it
            want = None
            log("bad " + repr(e))
        got = headers.get("Authorization")
        if want is None or got != want:
            log("bad signature")
            msg = b'{"message":"The request signature we calculated does not match"}'
            if PASS:
                msg = (b'{"__type":"InvalidSignatureException","message":"The request '
                       b'signature we calculated does not match the signature you provided."}')
            self.send_response(400 if PASS else 403)
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)
            return
        up = http.client.HTTPConnection("127.0.0.1", int(UPSTREAM), timeout=30)
        fwd = {k: v for k, v in headers.items() if k.lower() not in ("host", "authorization")}
        # The workspace path is the front's own (as AMP's): the receiver takes /api/v1/write.
        up.request("POST", self.path if PASS else "/api/v1/write", body=body, headers=fwd)
        r = up.getresponse()
        data = r.read()
        log("ok" if r.status < 300 else "upstream %d %s" % (r.status, data[:200]))
        self.send_response(r.status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        headers = {k: v for k, v in self.headers.items()}
        try:
            want = expected("GET", self.headers.get("Host", ""), self.path, headers, b"")
        except Exception as e:  # a malformed header: refused, as AWS refuses it
            want = None
            log("bad " + repr(e))
        if want is None or headers.get("Authorization") != want:
            log("bad signature")
            msg = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
                   b'<Code>AuthFailure</Code><Message>AWS was not able to validate the '
                   b'provided access credentials</Message></Error></Errors>'
                   b'<RequestID>front-1</RequestID></Response>')
            self.send_response(401)
            self.send_header("Content-Type", "text/xml;charset=UTF-8")
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)
            return
        up = http.client.HTTPConnection("127.0.0.1", int(UPSTREAM), timeout=30)
        fwd = {k: v for k, v in headers.items() if k.lower() != "host"}
        up.request("GET", self.path, headers=fwd)
        r = up.getresponse()
        data = r.read()
        log("ok" if r.status < 300 else "upstream %d %s" % (r.status, data[:200]))
        self.send_response(r.status)
        self.send_header("Content-Type", r.getheader("Content-Type", "text/xml"))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(PORT)), Front).serve_forever()

"""Checks the fake Eureka (trawl_tests::eureka) with a real Eureka client, py-eureka-client
(PyPI): registers an instance, renews its lease, lists the registry and one
application, then cancels the instance and lists again. Prints what it read, one line
per step, for the Rust test to compare."""
import asyncio
import sys

from py_eureka_client import eureka_client as e


async def main(url):
    inst = e.Instance(
        instanceId="web-1",
        app="web",
        hostName="127.0.0.2",
        ipAddr="127.0.0.2",
        port=e.PortWrapper(port=8080, enabled=True),
        vipAddress="web",
        status="UP",
        metadata={"team": "edge"},
    )
    await e.register(url, inst)
    await e.send_heartbeat(url, "WEB", "web-1", 0)
    apps = await e.get_applications(url)
    for app in apps.applications:
        for i in app.instances:
            print("listed", app.name, i.instanceId, i.hostName, i.port.port, i.port.enabled,
                  i.status, i.metadata.get("team"), flush=True)
    one = await e.get_application(url, "web")
    print("application", one.name, len(one.instances), flush=True)
    await e.cancel(url, "WEB", "web-1")
    apps = await e.get_applications(url)
    print("after cancel", sum(len(a.instances) for a in apps.applications), flush=True)


asyncio.run(main(sys.argv[1]))

"""The Docker SDK for Python (docker-py, Debian's python3-docker) against berth: networks, volumes, published
ports, exec and logs, as a Python program drives Docker. Argument: the daemon's socket path, then a free port."""
import sys, urllib.request, time
import docker

sock, port = sys.argv[1], int(sys.argv[2])
c = docker.DockerClient(base_url=f"unix://{sock}", version="auto")
assert c.ping()

net = c.networks.create("pynet", driver="bridge", labels={"sdk": "yes"})
vol = c.volumes.create("pyvol", labels={"sdk": "yes"})
srv = c.containers.run(
    "busybox", ["httpd", "-f", "-p", "80", "-h", "/etc"], detach=True, name="pysrv", network="pynet",
    volumes={"pyvol": {"bind": "/data", "mode": "rw"}}, ports={"80/tcp": ("127.0.0.1", port)},
)
srv.reload()
assert srv.status == "running", srv.status
assert srv.ports["80/tcp"][0]["HostPort"] == str(port), srv.ports
ip = srv.attrs["NetworkSettings"]["Networks"]["pynet"]["IPAddress"]
assert ip, srv.attrs["NetworkSettings"]

# From the host through the published port (bounded retries while httpd starts).
body = None
for _ in range(50):
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/passwd", timeout=2).read()
        break
    except OSError:
        time.sleep(0.05)
assert body and body.startswith(b"root:"), body

# Name resolution on the user network, and a volume shared between containers.
out = c.containers.run("busybox", ["wget", "-qO-", "http://pysrv/passwd"], network="pynet", remove=True)
assert out.startswith(b"root:"), out
rc, out = srv.exec_run(["sh", "-c", "echo kept > /data/f; cat /data/f"])
assert rc == 0 and out == b"kept\n", (rc, out)
out = c.containers.run("busybox", ["cat", "/data/f"], volumes={"pyvol": {"bind": "/data"}}, remove=True)
assert out == b"kept\n", out

# Listing and filtering.
assert [n.name for n in c.networks.list(filters={"label": "sdk=yes"})] == ["pynet"]
assert [v.name for v in c.volumes.list(filters={"label": "sdk=yes"})] == ["pyvol"]
net.reload()
assert srv.id in net.attrs["Containers"], net.attrs["Containers"]

# Connect and disconnect a live container.
other = c.networks.create("pyother")
other.connect(srv, aliases=["web"])
srv.reload()
assert "pyother" in srv.attrs["NetworkSettings"]["Networks"]
other.disconnect(srv)
srv.reload()
assert "pyother" not in srv.attrs["NetworkSettings"]["Networks"]

srv.remove(force=True)
vol.remove()
net.remove()
other.remove()
assert not c.networks.list(names=["pynet"])
print("ok")

"""Names under .ferry.test resolve to 127.0.0.1 in the SDK scripts, as a hosts entry would.

The vendors' SDKs take an IP endpoint as a reason to fall back to path-style (oss2) or to AWS
signatures (esdk-obs-python), so their bucket-domain (CNAME) and virtual-hosted modes need a
host name. Nothing else may be resolved: the scripts reach the store on loopback only.
"""

import socket

SUFFIX = ".ferry.test"
_resolve = socket.getaddrinfo


def _loopback_only(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if name is not None and name.endswith(SUFFIX):
        name = "127.0.0.1"
    if name not in ("127.0.0.1", "localhost"):
        raise OSError("the SDK tests resolve loopback names only, not %r" % (host,))
    return _resolve(name, *args, **kwargs)


socket.getaddrinfo = _loopback_only


def with_host(endpoint, name):
    """`http://127.0.0.1:<port>` with the host replaced by `name` (keeping the port)."""
    scheme, rest = endpoint.split("://", 1)
    port = rest.rstrip("/").rsplit(":", 1)[1]
    return "%s://%s:%s" % (scheme, name, port)


def parts_of(path, part_size):
    """The file's bytes in parts of `part_size`."""
    with open(path, "rb") as f:
        while True:
            data = f.read(part_size)
            if not data:
                return
            yield data

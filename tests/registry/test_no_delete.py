"""With deletion disabled (`--no-delete`), deletes are refused the way distribution
refuses them (405 UNSUPPORTED) and the content stays."""
from __future__ import annotations

from refimpl.httpd import BackgroundServer
from refimpl.registry.server import Registry
from refimpl.registry.store import Store

from .conftest import Client
from .content import image


def test_deletes_are_unsupported_and_change_nothing(workdir):
    server = BackgroundServer(Registry(Store(workdir / "root"), delete=False), ["127.0.0.1:0"],
                              error_hook=Registry.error_hook).start()
    try:
        client = Client(server.urls[0])
        img = image()
        digest = client.push_image("ds/nodelete", "v1", img)
        layer = next(iter(img["blobs"]))
        for path in (f"/v2/ds/nodelete/manifests/{digest}", f"/v2/ds/nodelete/blobs/{layer}"):
            r = client.request("DELETE", path)
            assert (r.status, r.codes) == (405, ["UNSUPPORTED"])
        assert client.request("GET", f"/v2/ds/nodelete/manifests/{digest}").status == 200
        assert client.request("GET", f"/v2/ds/nodelete/blobs/{layer}").status == 200
    finally:
        server.stop()

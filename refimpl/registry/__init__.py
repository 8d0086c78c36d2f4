"""The registry side of refimpl: the OCI distribution server (refimpl-registry).

server.py  routes and HTTP (the application on refimpl.httpd), main()
store.py   blobs, uploads, manifests and tags as files under --root
auth.py    htpasswd, Basic auth, the bearer-token service
manifests.py, grammar.py, errors.py  pure pieces: manifest checks, names/tags/digests, error codes
"""

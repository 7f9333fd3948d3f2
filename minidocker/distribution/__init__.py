"""Distribution: moving images to and from a registry (docker pull, push, login).

Layer: distribution, above the images (docker's distribution/ and registry/
packages).  It speaks the Registry HTTP API v2 (the OCI distribution spec) and
stores what it pulls through image.store; names are read by image.reference.
Reading order:

    client.py        the HTTP client: HTTPS or HTTP, the auth challenge, tokens, errors
    credentials.py   docker login / logout and the stored credentials (0600)
    progress.py      the per-layer progress lines docker prints
    metadata.py      repo digests, and where each layer's gzip form already is
    pull.py          docker pull: manifest, index, config, layers (resumed, locked, verified)
    push.py          docker push: layers (skipped, mounted or uploaded), config, manifest
    registry.py, auth.py   the old module names, re-exporting the above (compat)
"""

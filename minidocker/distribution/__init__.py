"""Distribution: moving images to and from a registry (docker pull, push, login).

Layer: distribution, above the images.  It speaks the Docker Registry HTTP API v2
(the OCI distribution spec) and stores what it pulls through image.store.

    client.py        HTTP(S) to a registry, the WWW-Authenticate challenge, tokens
    pull.py          docker pull: manifest (or index), config, layers, verified
    push.py          docker push: layers, config, manifest; cross-repository mounts
    credentials.py   docker login / logout, and the stored credentials (0600)
    metadata.py      repo digests, and which layers a registry already has compressed
    progress.py      the per-layer progress lines
"""

"""Distribution: moving images to and from a registry (docker pull, push, login).

Layer: distribution, above the images.  It speaks the Docker Registry HTTP API v2
(the OCI distribution spec) and stores what it pulls through image.store.

    registry.py      pull and push
    auth.py          login, logout and the stored credentials
"""

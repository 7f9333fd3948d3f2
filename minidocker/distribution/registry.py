"""The names the CLI called before distribution/ was split (compat).

Layer: distribution.  The work is in client.py (HTTP, the auth challenge), pull.py,
push.py, credentials.py (login) and metadata.py (repo digests); this module only
re-exports their public names, so `from minidocker.distribution import registry`
keeps working.  New code imports the module it needs.
"""
from minidocker.distribution.client import (ACCEPT, DOCKER_CONFIG, DOCKER_LAYER, DOCKER_LIST,
                                            DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Client,
                                            RegistryError, allows_http, insecure_registries)
from minidocker.distribution.credentials import login
from minidocker.distribution.metadata import repo_digests
from minidocker.distribution.pull import pull, pulls_on_run
from minidocker.distribution.push import push

__all__ = ["ACCEPT", "DOCKER_CONFIG", "DOCKER_LAYER", "DOCKER_LIST", "DOCKER_MANIFEST", "OCI_INDEX",
           "OCI_MANIFEST", "Client", "RegistryError", "allows_http", "insecure_registries", "login",
           "repo_digests", "pull", "pulls_on_run", "push"]

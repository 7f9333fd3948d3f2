"""Registry credentials under their old module name (compat).

Layer: distribution.  Stored credentials, login and logout are in credentials.py;
the WWW-Authenticate challenge is parsed in client.py.  This module only re-exports
them, so `from minidocker.distribution import auth` keeps working.
"""
from minidocker.distribution.client import basic, parse_challenge
from minidocker.distribution.credentials import HUB, config_file, credentials, erase, server_key, store

__all__ = ["basic", "parse_challenge", "HUB", "config_file", "credentials", "erase", "server_key", "store"]

"""Registry commands: pull, push, login, logout.

Layer: CLI (the `docker` client).  The work is in minidocker.distribution (docker's
distribution code: the registry HTTP API and its token auth, and the credentials
file); this module reads the flags and the password as docker-login(1) does.

The distribution modules are imported inside each command: the registry client
brings http.client, ssl and urllib (about 50 ms), which no other command needs.
"""
import os
import sys

from minidocker.cli.commands import command, fail, flag


@command("pull", "Download an image from a registry",
         flag("-q", "--quiet", action="store_true"),
         flag("--platform", help="os/arch[/variant] to pick from a multi-platform image"),
         flag("name"),
         also=("image pull",))
def cmd_pull(a):
    from minidocker.distribution import pull
    pull.pull(a.name, platform=a.platform, quiet=a.quiet)


@command("push", "Upload an image to a registry",
         flag("-q", "--quiet", action="store_true"), flag("name"),
         also=("image push",))
def cmd_push(a):
    from minidocker.distribution import push
    push.push(a.name, quiet=a.quiet)


@command("login", "Log in to a registry",
         flag("-u", "--username"),
         flag("-p", "--password"),
         flag("--password-stdin", action="store_true"),
         flag("server", nargs="?"))
def cmd_login(a):
    import getpass          # lazy: only an interactive login asks for a password
    from minidocker.distribution import credentials
    user, password = a.username, a.password
    if a.password_stdin:
        if password:
            fail("--password and --password-stdin are mutually exclusive", 1)
        if not user:
            fail("Must provide --username with --password-stdin", 1)
        password = sys.stdin.read().rstrip("\r\n")
    elif password:
        sys.stderr.write("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n")
    if not user or not password:
        if not os.isatty(0):
            fail("Error: Cannot perform an interactive login from a non TTY device", 1)
        user = user or input("Username: ").strip()
        password = password or getpass.getpass("Password: ")
    if not user or not password:
        fail("Error: Username and password are required", 1)
    path = credentials.login(a.server, user, password)
    sys.stderr.write(f"WARNING! Your password will be stored unencrypted in {path}.\n\n")
    print("Login Succeeded")


@command("logout", "Log out from a registry", flag("server", nargs="?"))
def cmd_logout(a):
    from minidocker.distribution import credentials
    shown = a.server or credentials.HUB
    if credentials.logout(a.server):
        print(f"Removing login credentials for {shown}")
    else:
        print(f"Not logged in to {shown}")

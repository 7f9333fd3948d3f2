"""Users inside a container: docker's -u resolved in the container's /etc files.

Layer: runtime (what runc's libcontainer/user package does).  "", "uid",
"uid:gid", "name" or "name:group" become ids looked up in the container's own
/etc/passwd and /etc/group (passwd(5), group(5)), never the host's: the same
name may be another uid in the image.
"""
from minidocker.errors import MinidockerError

def resolve_user(user: str, root: str = "/"):
    """docker's -u: "", "uid", "uid:gid", "name" or "name:group", looked up in the
    container's /etc/passwd and /etc/group.  Returns (uid, gid, groups, home)."""
    name, _, group = (user or "0").partition(":")
    passwd = read_db(root + "/etc/passwd")
    entry = next((e for e in passwd if e[0] == name or e[2] == name), None)
    if entry:
        uid, gid, home = int(entry[2]), int(entry[3]), entry[5] or "/"
    elif name.isdigit():
        uid, gid, home = int(name), 0, "/"
    else:
        raise MinidockerError(f"unable to find user {name}: no matching entries in passwd file")
    groups_db = read_db(root + "/etc/group")
    if group:
        match = next((g for g in groups_db if g[0] == group or g[2] == group), None)
        if match:
            gid = int(match[2])
        elif group.isdigit():
            gid = int(group)
        else:
            raise MinidockerError(f"unable to find group {group}: no matching entries in group file")
    username = entry[0] if entry else None
    extra = sorted({int(g[2]) for g in groups_db
                    if len(g) > 3 and username and username in g[3].split(",")} - {gid})
    return uid, gid, [gid] + extra, home


def read_db(path):
    """The entries of an /etc/passwd or /etc/group file as lists of fields (passwd(5),
    group(5)).  A file in a foreign encoding still reads: it is the image's, not ours."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n").split(":") for line in f
                    if line.strip() and not line.startswith("#") and line.count(":") >= 2]
    except OSError:
        return []

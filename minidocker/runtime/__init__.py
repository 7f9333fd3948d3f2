"""The runtime: what runc does.

Layer: runtime, just above the kernel.  Given a spec (a dict in the shape of the
OCI runtime spec: process, root, hostname, namespaces, mounts), it makes the
namespaces, mounts the root, confines the process and execs it.  It knows nothing
of images, names or the engine's records; the engine hands it a spec.

    runc.py          create a container's PID 1, and exec into a running one
    namespaces.py    the kernel's namespaces: list, compare, open and join them
    userns.py        user namespaces: id maps, shifted layer copies
    confine.py       capabilities, masked and read-only paths
    cgroups/         limits and accounting, cgroup v1 and v2 apart
"""

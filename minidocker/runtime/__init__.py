"""The runtime: what runc does.

Layer: runtime, just above the kernel.  Given a spec (a dict in the shape of the
OCI runtime spec: process, root, hostname, namespaces, mounts), it makes the
namespaces, mounts the root, confines the process and execs it.  It knows nothing
of images, names or the engine's records; the engine hands it a spec.

    runc.py          create a container's PID 1 (after the monitor's go-ahead), exec into one
    rootfs.py        the overlay root, /proc, /dev, /sys, pivot_root
    namespaces.py    the kernel's namespaces: list, compare, open and join them
    userns.py        user namespaces: id maps, shifted layer copies
    users.py         -u: a user and its groups from the container's /etc files
    confine.py       capabilities, masked and read-only paths
    seccomp.py       the seccomp filter: docker's profile compiled to classic BPF
    seccomp_profile.py, seccomp_default.json, seccomp_tables.py   the profile, its format, syscall numbers
    procs.py         processes by identity: start times, pidfds, exit statuses
    bundle.py        a container's directory and its state.json, with one owner
    cgroups/         limits and accounting: __init__ (the interface), v1.py, v2.py, utils.py
"""

"""The engine: what dockerd and containerd keep and decide about containers.

Layer: engine, above the monitor (shim) and the images.  A container is a record
on disk (its config, its state, its log); the engine turns a `create` into that
record, a `start` into a runtime spec and a monitor process, and reads it back for
`ps`, `inspect`, `logs` and `stats`.

    containers.py    records: create, update, rm, prune, logs, rmi's policy
    lifecycle.py     start, stop, kill, wait, exec
    spec.py          the runtime spec from a container's config (dockerd's oci_linux.go)
    namespaces.py    docker's --pid/--network/--ipc/--uts/--userns/--cgroupns modes
    snapshots.py     a container's overlay root, `diff`, `commit`, `history`
    stats.py         usage read from the cgroup, `stats`, and a sampler for plots
    names.py         random names, docker style; finding a container by name or id
"""

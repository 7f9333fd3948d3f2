"""Resource limits: the flags of run/create/update, `update` and `stats`.

Layer: CLI (the `docker` client).  The flags have docker's names and units
(docker-run(1), "Specify hard limits on memory available to containers", and
docker-update(1)); the engine stores them under HostConfig's keys and the
runtime's cgroups module writes them to the kernel.

The engine modules are imported inside the commands: each costs 10-40 ms to
import, and `minidocker ps` should not pay for `stats`' cgroup readers.
"""
import sys

from minidocker.cli.commands import PROG, command, fail, flag
from minidocker.cli.output import each
from minidocker.errors import InvalidArgument

# Flag -> HostConfig key, as `docker run --help` names them (cgroups writes them to the kernel).
LIMIT_FLAGS = {"memory": "Memory", "memory_swap": "MemorySwap", "cpus": "NanoCpus",
               "cpu_shares": "CpuShares", "cpuset_cpus": "CpusetCpus", "pids_limit": "PidsLimit",
               "blkio_weight": "BlkioWeight", "device_read_bps": "BlkioDeviceReadBps",
               "device_write_bps": "BlkioDeviceWriteBps"}


def limit_flags(p):
    p.add_argument("-m", "--memory", help="Memory limit (512m, 1g)")
    p.add_argument("--memory-swap", help="Memory plus swap; -1: unlimited swap")
    p.add_argument("--cpus", help="Number of CPUs (1.5)")
    p.add_argument("-c", "--cpu-shares", help="CPU shares (relative weight, default 1024)")
    p.add_argument("--cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)")
    p.add_argument("--pids-limit", help="Tune container pids limit (-1 for unlimited)")
    p.add_argument("--blkio-weight", help="Block IO (relative weight), between 10 and 1000")
    p.add_argument("--device-read-bps", action="append", default=[], metavar="PATH:RATE",
                   help="Limit read rate from a device (/dev/vda:1mb)")
    p.add_argument("--device-write-bps", action="append", default=[], metavar="PATH:RATE",
                   help="Limit write rate to a device (/dev/vda:1mb)")


def limits(a) -> dict:
    """The limit flags given, as HostConfig keys and values (docker's units parsed)."""
    from minidocker.runtime import cgroups
    parse = {"memory": cgroups.parse_size, "cpus": cgroups.parse_cpus, "cpuset_cpus": str,
             "memory_swap": lambda v: -1 if str(v).strip() == "-1" else cgroups.parse_size(v),
             "device_read_bps": _rates, "device_write_bps": _rates,
             "pids_limit": lambda v: _integer(v) or -1}      # 0 and -1: no limit
    out = {}
    for attr, key in LIMIT_FLAGS.items():
        value = getattr(a, attr, None)
        if value is None or value == []:
            continue
        try:
            out[key] = parse.get(attr, _integer)(value)
        except InvalidArgument as e:
            flag_name = "--" + attr.replace("_", "-")
            raise InvalidArgument(f'invalid argument "{value if isinstance(value, str) else value[-1]}"'
                                  f' for "{flag_name}" flag: {e}') from None
    return out


def _integer(text) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidArgument(f"not an integer: {text!r}") from None


def _rates(items) -> list:
    """["/dev/vda:1mb"] -> [{"Path": "/dev/vda", "Rate": 1048576}] (docker's ThrottleDevice)."""
    from minidocker.runtime import cgroups
    rules = []
    for item in items:
        path, sep, rate = item.rpartition(":")
        if not sep or not path.startswith("/dev/"):
            raise InvalidArgument(f"bad format: {item} (want /dev/DEVICE:RATE, like /dev/vda:1mb)")
        rules.append({"Path": path, "Rate": cgroups.parse_size(rate)})
    return rules


def limit_args(a) -> dict:
    """limits(a), or docker's message for a flag it cannot parse (exit 125)."""
    try:
        return limits(a)
    except InvalidArgument as e:
        fail(f"{PROG}: {e}\nSee '{PROG} {a.command_name} --help'.", 125)


@command("update", "Update configuration (limits) of one or more containers",
         limit_flags, flag("containers", nargs="+"))
def cmd_update(a):
    from minidocker.engine import containers
    new = limit_args(a)
    if not new:
        fail("You must provide one or more flags when using this command.", 1)
    return each(a.containers, lambda r: containers.update(r, new))


@command("stats", "Display a live stream of container(s) resource usage statistics",
         flag("-a", "--all", action="store_true"),
         flag("--no-stream", action="store_true"),
         flag("--no-trunc", action="store_true"),
         flag("containers", nargs="*"))
def cmd_stats(a):
    from minidocker.engine import containers, stats
    chosen = [containers.get(ref) for ref in a.containers] if a.containers else None
    readers = {}                      # files stay open between refreshes
    while True:
        shown = chosen if chosen is not None else containers.list_containers(all=a.all)
        text = stats.table(shown, 1.0, a.no_trunc, readers)
        if a.no_stream:
            print(text)
            return 0
        sys.stdout.write("\033[2J\033[H" + text + "\n")   # clear the screen, as docker does
        sys.stdout.flush()

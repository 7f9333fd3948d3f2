"""How docker prints times and sizes, so our tables read like its tables.

Layer: base (the go-units and text/template corner of the docker CLI, used by every layer).

The rules follow the go-units package docker uses: HumanDuration for
"Up 3 seconds" / "2 minutes ago", and HumanSize (decimal units, three
significant digits) for "2.14MB".
"""
import datetime


def parse_time(stamp: str) -> datetime.datetime:
    """Read an RFC 3339 time with up to nanoseconds (Python keeps microseconds)."""
    stamp = stamp.rstrip("Z")
    if "." in stamp:
        head, frac = stamp.split(".")
        stamp = f"{head}.{frac[:6]:0<6}"
    return datetime.datetime.fromisoformat(stamp).replace(tzinfo=datetime.timezone.utc)


def now() -> str:
    """RFC 3339 with nanoseconds, as docker writes times (Go's time.RFC3339Nano)."""
    t = datetime.datetime.now(datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}000Z"


def since(stamp: str) -> float:
    return (datetime.datetime.now(datetime.timezone.utc) - parse_time(stamp)).total_seconds()


def human_duration(seconds: float) -> str:
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = round(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(seconds / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def human_size(size: float, binary: bool = False, digits: int | None = None) -> str:
    """go-units HumanSize ("2.14MB": powers of 1000, 3 digits), or with binary its
    BytesSize ("1.5MiB": powers of 1024, 4 digits) as `docker stats` prints memory.
    digits: the CLI asks HumanSizeWithPrecision for 4 where it prints a build context."""
    base, default = (1024, 4) if binary else (1000, 3)
    digits = digits or default
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"] if binary else ["B", "kB", "MB", "GB", "TB", "PB"]
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return f"{size:.{digits}g}{units[i]}"


def table(rows, headers) -> str:
    """Columns padded to their widest cell plus three spaces, as docker's tabwriter does."""
    rows = [list(map(str, r)) for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]
    lines = []
    for r in [list(headers)] + rows:
        cells = [c.ljust(w) for c, w in zip(r[:-1], widths)] + [r[-1]]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines)


def go_template(template: str, obj) -> str:
    """The part of Go's text/template that `docker inspect -f` is used with:
    field paths ({{.State.Pid}}), {{json .Config}} and {{index .Config.Labels "k"}}.
    Values print as Go prints them: true, [a b], map[k:v], <no value>."""
    import json
    import re
    import shlex

    def lookup(path, value):
        for part in path.strip(".").split("."):
            if part:
                value = value.get(part) if isinstance(value, dict) else None
        return value

    def evaluate(expr):
        words = shlex.split(expr.strip())
        if not words:
            return ""
        if words[0] == "json" and len(words) == 2:
            return json.dumps(lookup(words[1], obj))
        if words[0] == "index" and len(words) == 3:
            return go_value((lookup(words[1], obj) or {}).get(words[2]))
        if words[0].startswith("."):
            return go_value(lookup(words[0], obj))
        raise ValueError(f"template: unsupported action {{{{{expr}}}}}")
    return re.sub(r"{{(.*?)}}", lambda m: evaluate(m.group(1)), template)


def go_value(value) -> str:
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(go_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_value(v)}" for k, v in sorted(value.items())) + "]"
    return str(value)

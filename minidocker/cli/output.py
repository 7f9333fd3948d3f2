"""How the CLI prints what the engine returns: status words, ages, `inspect` output.

Layer: CLI (the `docker` client).  The tables and units themselves are in
minidocker.fmt (shared with the chapters); this module holds the few rules that
belong to docker's commands: the STATUS column of `docker ps` ("Up 3 seconds",
"Exited (0) 2 minutes ago") and `docker inspect`'s JSON list or `-f` template
(docker-inspect(1)).
"""
import json
import sys

from minidocker import fmt
from minidocker.errors import MinidockerError


def ago(stamp) -> str:
    """An RFC 3339 time as docker's CREATED column shows it: "2 minutes ago"; "N/A"
    for an image whose config has no (or no readable) time, as docker shows it."""
    try:
        return fmt.human_duration(fmt.since(stamp)) + " ago"
    except (TypeError, ValueError, AttributeError):
        return "N/A"


def status(state: dict) -> str:
    """The STATUS column of `docker ps`."""
    if state["Status"] == "running":
        return "Up " + fmt.human_duration(fmt.since(state["StartedAt"]))
    if state["Status"] == "exited":
        return f"Exited ({state['ExitCode']}) {ago(state['FinishedAt'])}"
    return state["Status"].capitalize()


def print_inspected(found: list, template: str | None) -> None:
    """docker inspect: a JSON list, or with -f a Go template applied to each object."""
    if not template:
        print(json.dumps(found, indent=4))
        return
    for obj in found:
        try:
            print(fmt.go_template(template, obj))
        except (ValueError, LookupError, TypeError, AttributeError) as e:
            # A template the small evaluator cannot run ({{range}}, index on a list...):
            # docker's words for a template error, on one line.
            text = str(e) if str(e).startswith("template:") else f"template: {template}: {e}"
            raise MinidockerError(text) from None


def each(refs, action) -> int:
    """docker stop/kill/rm/update: act on each container, print its name or the error, go on.
    The exit code is 1 when any failed, as docker's."""
    code = 0
    for ref in refs:
        try:
            action(ref)
            print(ref)
        except MinidockerError as e:
            sys.stderr.write(f"Error response from daemon: {e}\n")
            code = 1
    return code

"""What a build tells its caller: the progress lines, a failed step, the result.

Layer: build (the output of docker's classic builder, which the CLI prints as it
comes: "Step 2/4 : RUN ...", " ---> Running in ...", the RUN's own output, then
" ---> <image id>"; see docs.docker.com/reference/cli/docker/buildx/build with
DOCKER_BUILDKIT=0).  The chapters and tests compare this text: keep it as is.
"""
from minidocker.errors import MinidockerError


class BuildFailed(MinidockerError):
    """A step failed; `code` is the failed RUN's exit code (docker build exits with it)."""

    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code


class Step:
    """One instruction of a build: did it come from the cache, how long did it take."""

    def __init__(self, number, instruction, line):
        self.number, self.instruction, self.line = number, instruction, line
        self.cached, self.seconds, self.image_id = False, 0.0, None

    def __repr__(self):
        return (f"<Step {self.number} {'cached' if self.cached else 'ran'} "
                f"{self.seconds * 1000:.0f} ms: {self.instruction}>")


class Result:
    """What build() returns: the image id, the steps, the tags it set."""

    def __init__(self, image_id, steps, tags):
        self.image_id, self.steps, self.tags = image_id, steps, tags

    @property
    def short_id(self):
        return self.image_id.split(":")[1][:12]

    def __repr__(self):
        return f"<Result {self.short_id} {self.tags}>"


class Progress:
    """The build's output stream: our lines, and a RUN's bytes as they come.
    quiet (-q): nothing but the image id at the end (printed by the builder)."""

    def __init__(self, out, quiet):
        self.out, self.quiet = out, quiet

    def say(self, text):
        if not self.quiet:
            self.out.write(text + "\n")
            self.out.flush()

    def raw(self, data: bytes):
        """A RUN's output, byte for byte where `out` has a binary buffer (a terminal)."""
        if self.quiet:
            return
        if hasattr(self.out, "buffer"):
            self.out.flush()
            self.out.buffer.write(data)
            self.out.buffer.flush()
        else:
            self.out.write(data.decode("utf-8", "replace"))
            self.out.flush()

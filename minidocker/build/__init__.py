"""Build: what docker's classic builder does (`docker build` before BuildKit).

Layer: build, above the engine and the images (it makes containers for RUN and
stores an image per step).  Read in this order:

    dockerfile.py    the Dockerfile's lines -> Instructions (flags, JSON or shell form)
    words.py         quotes, escapes and $variables, as a shell reads them
    context.py       the build context, .dockerignore, the size the CLI reports
    tree.py          an image's files read from its layer dirs, as overlayfs would show them
    builder.py       the driver: stages, steps, progress, committing an image per step
    instructions.py  FROM, ARG, ENV, CMD, WORKDIR and the other config instructions
    run.py           RUN: a build container whose changes become a layer
    copy.py          COPY and ADD: files into a layer, --chown, local tars
    layerdir.py      the scratch dir laid out as a layer that COPY, ADD, WORKDIR write
    cache.py         the cache key of a step, and the images that have one
    progress.py      what a build prints and returns (Step, Result, BuildFailed)
"""

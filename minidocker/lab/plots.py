"""Pictures of usage: a Sampler's time series as matplotlib charts, and a live dashboard.

Layer: lab (what the chapters share; above the CLI).  The numbers come from
stats.Sampler, which reads the kernel's cgroup counters; this module only
draws them.  A limit is drawn as a dashed line in the colour of its
container, so a curve that flattens against its dashed line is the kernel
enforcing that limit.

matplotlib and ipywidgets are imported inside the functions: the engine must
run on a bare python3 (the cgroup v2 guest has no pip packages).
Dashboard: a slider per limit calls containers.update() (what `minidocker
update` does) on a running container while its plot keeps moving; the plot
is drawn into a PNG in a thread, with matplotlib's object API (no pyplot
state), and shown in an ipywidgets.Image.
"""
import io
import os
import threading

from minidocker.engine import containers, stats
from minidocker.errors import MinidockerError
from minidocker.runtime import cgroups

MiB = 1 << 20

# Panel -> (y label, the series drawn, its limit series, how to scale both).
PANELS = {
    "memory": ("memory (MiB)", "memory", "memory_limit", 1 / MiB),
    "cpu": ("CPU (% of one CPU)", "cpu", "cpus_limit", 1),
    "pids": ("processes", "pids", "pids_limit", 1),
    "io": ("written to disk (MiB)", "io_write", None, 1 / MiB),
}


def _list(samplers):
    return list(samplers) if isinstance(samplers, (list, tuple)) else [samplers]


def draw(fig, samplers, what=("memory", "cpu", "pids", "io"), title=None, labels=None):
    """Draw one panel per name in `what` on a matplotlib Figure, one line per sampler."""
    samplers = _list(samplers)
    labels = labels or [s.name for s in samplers]
    axes = fig.subplots(len(what), 1, sharex=True, squeeze=False)[:, 0]
    colors = [f"C{i}" for i in range(10)]
    for ax, panel in zip(axes, what):
        ylabel, key, limit_key, scale = PANELS[panel]
        for s, label, color in zip(samplers, labels, colors):
            data = s.snapshot()
            t = data["t"]
            y = [v * scale for v in data[key]]
            if panel == "memory" and len(samplers) == 1:
                # What the usage is made of: anonymous memory (heap, stacks) and page cache.
                anon = [v * scale for v in data["anon"]]
                top = [a + f * scale for a, f in zip(anon, data["file"])]
                ax.fill_between(t, 0, anon, color=color, alpha=0.35, lw=0, label="anon (heap)")
                ax.fill_between(t, anon, top, color=color, alpha=0.12, lw=0, label="file cache")
            ax.plot(t, y, color=color, label=label)
            if limit_key:
                factor = 100 if panel == "cpu" else scale
                lim = [None if v is None else v * factor for v in data[limit_key]]
                if any(v is not None for v in lim):
                    ax.step(t, [float("nan") if v is None else v for v in lim], where="post",
                            color=color, ls="--", lw=1, label=f"{label} limit")
            if s.ended and t:
                how = f"exit {s.exit_code}" + (", OOM-killed" if s.oom_killed else "")
                ax.plot([t[-1]], [y[-1]], marker="x", ms=9, mew=2, color="red" if s.oom_killed else color)
                if panel == what[0]:
                    ax.annotate(how, (t[-1], y[-1]), textcoords="offset points", xytext=(-8, 6),
                                ha="right", fontsize=8, color="red" if s.oom_killed else color)
        ax.set_ylabel(ylabel)
        ax.margins(y=0.1)                 # room above a curve that sits on its limit
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    axes[-1].set_xlabel("seconds")
    if title:
        axes[0].set_title(title)
    return fig


def plot(samplers, what=("memory", "cpu", "pids", "io"), title=None, labels=None, width=7.5):
    """A Figure of samplers' series (a Sampler or a list), for a notebook cell to show."""
    import matplotlib.pyplot as plt
    what = (what,) if isinstance(what, str) else tuple(what)
    fig = plt.figure(figsize=(width, 1.2 + 2.1 * len(what)), layout="constrained")
    plt.close(fig)                    # returned, shown once by the cell; pyplot keeps no copy
    return draw(fig, samplers, what, title, labels)


def png(samplers, what=("memory", "cpu"), title=None, width=7.5) -> bytes:
    """The same chart as PNG bytes, drawn without pyplot (safe in a thread)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, 1.2 + 2.1 * len(what)), layout="constrained")
    FigureCanvasAgg(fig)
    draw(fig, samplers, what, title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return buf.getvalue()


# --- the dashboard ------------------------------------------------------------------

def _knobs():
    ncpu = os.cpu_count() or 1
    # name -> (label, min, max, step, integer?, HostConfig from the value, value from HostConfig)
    return {
        "cpus": ("--cpus", 0.1, float(ncpu), 0.1, False,
                 lambda v: {"NanoCpus": cgroups.parse_cpus(round(v, 2))},
                 lambda hc: (hc.get("NanoCpus") or ncpu * 10**9) / 1e9),
        "memory": ("--memory (MiB)", 8, 512, 8, True,
                   lambda v: {"Memory": int(v) * MiB, "MemorySwap": -1},
                   lambda hc: (hc.get("Memory") or 512 * MiB) // MiB),
        "pids": ("--pids-limit", 1, 200, 1, True,
                 lambda v: {"PidsLimit": int(v)},
                 lambda hc: hc.get("PidsLimit") if (hc.get("PidsLimit") or 0) > 0 else 200),
    }


class Dashboard:
    """A running container's usage plot with a slider per limit.

        d = Dashboard(c, knobs=("cpus",))     # show it: the last line of a cell, or display(d)
        d.set(cpus=0.5)                        # what moving the slider does
        d.stop()

    Moving a slider calls containers.update(): the cgroup file changes at once,
    and the curve follows within a sampling interval.  The plot redraws every
    `refresh` seconds in a thread while the container runs (refresh=None: only
    on redraw()).
    """

    def __init__(self, container, knobs=("cpus",), what=("cpu", "memory"), interval=0.2,
                 refresh=1.0):
        import ipywidgets as widgets
        self.container = container if hasattr(container, "id") else containers.get(container)
        self.what = tuple(what)
        self.sampler = stats.Sampler(self.container, interval).start()
        self.image = widgets.Image(format="png")
        self.message = widgets.Label()
        self.sliders = {}
        hc = self.container.config["HostConfig"]
        table = _knobs()
        for name in knobs:
            label, low, high, step, integer, _, current = table[name]
            cls = widgets.IntSlider if integer else widgets.FloatSlider
            slider = cls(value=min(max(current(hc), low), high), min=low, max=high, step=step,
                         description=label, continuous_update=False,
                         style={"description_width": "initial"})
            slider.observe(lambda change, n=name: self._changed(n, change["new"]), names="value")
            self.sliders[name] = slider
        self.widget = widgets.VBox([widgets.HBox(list(self.sliders.values())), self.image, self.message])
        self._stop = threading.Event()
        self._thread = None
        if refresh:
            self._thread = threading.Thread(target=self._loop, args=(refresh,), daemon=True)
            self._thread.start()

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)

    def _changed(self, name, value):
        limits = _knobs()[name][5](value)
        try:
            containers.update(self.container.id, limits)
            self.message.value = f"minidocker update {_flags(limits)} {self.container.name}: done"
        except MinidockerError as e:
            self.message.value = f"minidocker update: {e}"

    def set(self, **values):
        """Move sliders by name (cpus=, memory=, pids=), as a person would."""
        for name, value in values.items():
            self.sliders[name].value = value

    def redraw(self):
        self.image.value = png(self.sampler, self.what, title=self.container.name)

    def figure(self):
        """The series so far as a Figure (for a static copy in the notebook)."""
        return plot(self.sampler, self.what, title=self.container.name)

    def _loop(self, refresh):
        while not self._stop.wait(refresh):
            self.redraw()
            if self.sampler.ended:
                break

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sampler.stop()
        self.redraw()


def _flags(limits: dict) -> str:
    words = []
    for key, value in limits.items():
        if key == "NanoCpus":
            words.append(f"--cpus {value / 1e9:g}")
        elif key == "Memory":
            words.append(f"--memory {value // MiB}m")
        elif key == "PidsLimit":
            words.append(f"--pids-limit {value}")
    return " ".join(words)

"""Python client for loquatd, the Loquat daemon (JSON-RPC 2.0 over stdin/stdout).

    import loquat
    with loquat.Daemon() as d:        # path argument, $LOQUAT_DAEMON, $LOQUATD, or loquatd on PATH
        d.load("model-dir", name="base")
        q = d.quantize("base", "nf4")                 # progress as a tqdm bar when tqdm is installed
        loquat.reports.to_dataframe(q)                # the per-layer ledger as a pandas DataFrame
        loquat.plot.layer_errors(q)                   # a matplotlib Figure

``Daemon`` has one typed method per RPC (snake_case keywords); ``Client`` is the lower-level
base class (``call``/``request`` with raw params). ``loquat.reports`` needs pandas and
``loquat.plot`` matplotlib: ``pip install 'loquat[notebook]'``.
"""

from . import plot, reports
from .client import Client, DaemonExited, DaemonNotFound, LoquatError, find_daemon
from .daemon import Daemon

__version__ = "0.2.0"
__all__ = ["Client", "Daemon", "DaemonExited", "DaemonNotFound", "LoquatError", "find_daemon", "plot", "reports",
           "__version__"]


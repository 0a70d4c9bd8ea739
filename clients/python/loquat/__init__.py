"""Python client for loquatd, the Loquat daemon (JSON-RPC 2.0 over stdin/stdout).

    import loquat
    with loquat.Client() as client:          # path from the argument, $LOQUATD, or PATH
        model = client.load("model-dir", name="base")
        print(client.info("base")["tensorCount"])
"""

from .client import Client, DaemonExited, LoquatError, find_daemon

__version__ = "0.1.0"
__all__ = ["Client", "DaemonExited", "LoquatError", "find_daemon", "__version__"]

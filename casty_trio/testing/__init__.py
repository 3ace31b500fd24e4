"""Testing kit: a deterministic simulated network for multi-node tests in one ``trio.run``.

:class:`TestProbe` is a recording actor whose assertions wait for the messages it receives.
:func:`open_test_cluster` runs n clustered nodes on one simulated network.

Examples:
    >>> from casty_trio.testing import SimNetwork
    >>> net = SimNetwork(seed=1, latency=0.005)
    >>> str(net.transport().address)
    'sim:1'
"""

from ._cluster import TestCluster, open_test_cluster
from ._connection import SimConnection
from ._network import NetworkStatistics, SimNetwork
from ._probe import TestProbe
from ._transport import SimTransport

__all__ = [
    "NetworkStatistics",
    "SimConnection",
    "SimNetwork",
    "SimTransport",
    "TestCluster",
    "TestProbe",
    "open_test_cluster",
]

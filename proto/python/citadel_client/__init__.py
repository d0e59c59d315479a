"""citadel-client: a pure-Python client of Citadel's RPC protocol.

    from citadel_client import Client
    with Client("tcp://127.0.0.1:7379") as c:
        c.set("k", "v", ttl_ms=60_000)
        c.get("k")  # b"v"

Transports: tcp://, unix://, shm:// (shared memory, same host). See
README.md for the asyncio client, batches, streams and discovery.
"""

from .address import Address, parse_address
from .aio import AsyncClient
from .batch import Batch
from .client import Client
from .cluster import ClusterClient, key_slot
from .discovery import Record, default_dir, list_records, local_endpoints
from .errors import (
    AuthError,
    CitadelError,
    ConnectionClosed,
    DeadlineExceeded,
    ErrorCode,
    Moved,
    PluginError,
    TooLarge,
)
from .failover import FailoverClient, NoServer
from .replies import Partial, Welcome

__version__ = "0.1.0"

__all__ = [
    "Address",
    "AsyncClient",
    "AuthError",
    "Batch",
    "CitadelError",
    "Client",
    "ClusterClient",
    "ConnectionClosed",
    "DeadlineExceeded",
    "ErrorCode",
    "FailoverClient",
    "Moved",
    "NoServer",
    "Partial",
    "PluginError",
    "Record",
    "TooLarge",
    "Welcome",
    "default_dir",
    "key_slot",
    "list_records",
    "local_endpoints",
    "parse_address",
]

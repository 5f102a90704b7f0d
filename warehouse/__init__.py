"""The only code that touches storage: landing zone, raw zone, partitioned tables, ledger."""

from kesu.warehouse.warehouse import Warehouse

__all__ = ["Warehouse"]

"""The only code that touches storage: landing zone, raw zone, partitioned tables, ledger."""

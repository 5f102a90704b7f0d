"""Pure Polars transforms: frames and scalars in, frames out. No I/O, no clock, no Prefect."""

"""The counting framework every detector builds on: capped key tables, rolling windows of
packet time, the doorkeeper, HyperLogLog, the compiled kernels and report helpers."""

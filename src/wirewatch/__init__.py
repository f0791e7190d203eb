"""wirewatch: a fast, transparent, rule-based network intrusion detection system."""

import os

# numpy's OpenBLAS starts one thread per core when numpy is imported (about 0.05 s of CPU per
# process on 2 cores); wirewatch does no linear algebra, so one thread is enough. An explicit
# setting in the environment wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"

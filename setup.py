"""Builds the optional compiled hot path (src/wirewatch/native/*.c); all other metadata is
in pyproject.toml. Without a C compiler the install still succeeds and wirewatch runs
the numpy reference implementations instead (see wirewatch/native/__init__.py)."""

from setuptools import Extension, setup

NATIVE = "src/wirewatch/native"
setup(ext_modules=[
    Extension(f"wirewatch.native.{name}", [f"{NATIVE}/{src}.c"], depends=[f"{NATIVE}/buffers.h"],
              extra_compile_args=["-O3"], optional=True)
    for name, src in (("_kernels", "kernels"), ("_decode", "decode"), ("_pcapwalk", "pcapwalk"))
])

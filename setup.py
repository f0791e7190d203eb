"""Builds the optional compiled kernels (src/wirewatch/detect/_kernels.c); all other
metadata is in pyproject.toml. Without a C compiler the install still succeeds and
wirewatch uses the numpy versions in wirewatch/detect/kernels.py."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("wirewatch.detect._kernels", ["src/wirewatch/detect/_kernels.c"],
                             extra_compile_args=["-O3"], optional=True)])

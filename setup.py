"""Only the compiled record-batch codec lives here; everything else is in pyproject.toml.

The extension is optional: without a C compiler kop installs all the same and converts batches with
its pure-Python path (kop/backend/batch_codec.py)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("kop._batch_codec", ["kop/_batch_codec.c"], optional=True,
                             extra_compile_args=["-O2"])])

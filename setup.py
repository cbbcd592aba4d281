"""The optional compiled part: graphkit.io._wirescan, a GraphDef wire scanner that makes prune and
remap-input on large graphs fast. It is optional=True: without a C compiler graphkit installs and behaves the
same, using protobuf alone (slower on graphs of 100,000+ nodes). Everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("graphkit.io._wirescan", ["graphkit/io/_wirescan.c"], optional=True,
                             extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"])])

# Packages the already built extension (mla/_mla*.so) with the Python files; run by pip from
# build/python, where CMake puts both. It compiles nothing.
import glob
import os

from setuptools import setup
from setuptools.dist import Distribution


class BinaryDistribution(Distribution):
    """The package holds a compiled extension: the wheel is platform specific."""

    def has_ext_modules(self):
        return True


here = os.path.dirname(os.path.abspath(__file__))
if not glob.glob(os.path.join(here, "mla", "_mla*.so")):
    raise SystemExit("mla: build the extension first (cmake --build build), then install build/python")

with open(os.path.join(here, "VERSION")) as f:  # written by CMake from project(VERSION)
    version = f.read().strip()

setup(
    name="mla",
    version=version,
    description="DeepSeek's Multi-head Latent Attention (mla.cpp) for Python",
    packages=["mla", "mla.torch"],
    package_data={"mla": ["_mla*.so", "*.pyi", "py.typed"], "mla.torch": ["*.pyi"]},
    install_requires=["numpy"],
    distclass=BinaryDistribution,
    zip_safe=False,
)

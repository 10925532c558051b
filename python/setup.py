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

setup(
    name="mla",
    version="0.1.0",
    description="DeepSeek's Multi-head Latent Attention (mla.cpp) for Python",
    packages=["mla", "mla.torch"],
    package_data={"mla": ["_mla*.so", "*.pyi", "py.typed"], "mla.torch": ["*.pyi"]},
    install_requires=["numpy"],
    distclass=BinaryDistribution,
    zip_safe=False,
)

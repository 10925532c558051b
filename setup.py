"""`pip install .` from the source checkout: builds the extension mla._mla with CMake for the
interpreter that runs pip, and installs it with the Python package (python/mla, mla.torch).

    /usr/bin/python3 -m pip install --no-build-isolation .        # offline (Debian setuptools)
    MLA_BUILD_DIR=build /usr/bin/python3 -m pip install --no-build-isolation .

MLA_BUILD_DIR names a CMake build folder to build in (and reuse: an already configured folder is
only rebuilt, so the extension must be for this interpreter; its file name says which); without
it a private folder under build/setuptools is configured. Needs what the C++ build needs
(scripts/install_deps.sh) plus this interpreter's development headers and pybind11 for CMake.
"""
import os
import re
import shutil
import subprocess
import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


def project_version():
    with open(os.path.join(ROOT, "CMakeLists.txt"), encoding="utf-8") as f:
        m = re.search(r"project\(\s*\w+\s+VERSION\s+([0-9.]+)", f.read())
    return m.group(1) if m else "0.0.0"


class CMakeBuild(build_ext):
    """Configures (once) and builds the CMake target _mla, then copies the extension."""

    def build_extension(self, ext):
        build_dir = os.environ.get("MLA_BUILD_DIR") or os.path.join(ROOT, "build", "setuptools")
        build_dir = os.path.abspath(build_dir)
        if not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
            args = ["cmake", "-S", ROOT, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release",
                    f"-DPython3_EXECUTABLE={sys.executable}", "-DMLA_BUILD_TESTS=OFF",
                    "-DMLA_BUILD_BENCH=OFF"]
            if shutil.which("ninja"):
                args += ["-G", "Ninja"]
            if shutil.which("ccache"):
                args += ["-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"]
            subprocess.run(args, check=True)
        jobs = os.environ.get("MLA_BUILD_JOBS", "2")
        where = os.path.join(build_dir, "python", "mla")
        skipped = (f"mla: CMake did not make the Python module in {build_dir} (its configure "
                   f"output says why: python3-dev, pybind11-dev and NumPy for {sys.executable} "
                   "are needed)")
        build = ["cmake", "--build", build_dir, "--target", "_mla", "-j", jobs]
        if subprocess.run(build).returncode:
            raise SystemExit(skipped if not os.path.isdir(where) else "mla: the CMake build failed")
        suffix = sysconfig.get_config_var("EXT_SUFFIX")
        built = os.path.join(where, "_mla" + suffix)
        if not os.path.exists(built):
            found = [f for f in os.listdir(where) if f.startswith("_mla")]
            raise SystemExit(f"mla: {build_dir} built {found}, not _mla{suffix} for "
                             f"{sys.executable}; use another MLA_BUILD_DIR")
        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(built, target)


setup(
    name="mla",
    version=project_version(),
    description="DeepSeek's Multi-head Latent Attention (mla.cpp) for Python and PyTorch",
    package_dir={"": "python"},
    packages=["mla", "mla.torch"],
    package_data={"mla": ["*.pyi", "py.typed"], "mla.torch": ["*.pyi"]},
    ext_modules=[Extension("mla._mla", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    install_requires=["numpy"],
    extras_require={"torch": ["torch"]},
    python_requires=">=3.9",
    options={"build": {"build_base": os.path.join("build", "setuptools-py")}},
    zip_safe=False,
)

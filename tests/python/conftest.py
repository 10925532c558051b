"""Tests of the Python module `mla` (python/). ctest runs each file as pymod_<name> with
PYTHONPATH=build/python and MLA_CLI set; run by hand with
    PYTHONPATH=build/python MLA_CLI=build/mla python3 -m pytest tests/python
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if not any(os.path.isdir(os.path.join(p, "mla")) for p in sys.path if p):
    sys.path.insert(0, os.path.join(ROOT, "build", "python"))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))  # the PyTorch reference

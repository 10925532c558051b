"""Loaded by pytest before every Python test under tests/: puts tests/support (the helpers the
tests share: mla_cli, npm_oracles) on the import path."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))

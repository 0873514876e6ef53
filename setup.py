"""Build script: metadata lives in setup.cfg; this file only adds the C extension."""

from setuptools import setup

setup()

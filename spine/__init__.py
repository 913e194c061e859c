"""spine: lumbar spine segmentation in sagittal MRI.

A research companion to Silveira et al. (Scientific Reports, 2025): data readers for SPIDER and
a synthetic phantom, the study's models, losses and metrics, an experiment engine, and a CLI.
Modules, one idea each:

- ``spine.data``     reading SPIDER volumes and slice folders, orientation (``geometry``),
                     preprocessing, phantom, splits;
                     ``spine.data.overview`` summaries of a dataset (labels, balance);
                     ``spine.data.fetch`` the SPIDER download (``spine fetch spider``)
- ``spine.models``   the model zoo (the proposed network, baselines, ablations, skip attention);
                     ``spine.models.report`` parameter counts and block outlines
- ``spine.losses``   Keras losses (binary and multiclass, dual-output)
- ``spine.metrics``  overlap and surface metrics on label arrays; ``spine.stats`` intervals, tests
- ``spine.evaluation`` comparing mask files and volumes (``spine metrics``)
- ``spine.training`` profiles, the engine, the results store, the study grids (``studies``) and
                     the analyses of their records (``analysis``)
- ``spine.inference`` segmenting files in their native geometry (``spine predict``)
- ``spine.explain``  Seg-Grad-CAM and its sanity checks
- ``spine.plots``    the book's figures; ``spine.page`` how a chapter shows tables and a grid
                     beside the study; ``spine.sentences`` what the book and README say in words;
                     ``spine.book_data`` which data a chapter shows (``spine book --data``);
                     ``spine.benchmark_tables`` the benchmarks' tables, read
- ``spine.paper``    the study's reported tables
- ``spine.book``     executing the chapters and rendering the book (``spine book``)
- ``spine.colab``    what each chapter's first cell calls on Colab
- ``spine.cli``      the ``spine`` command
"""

__version__ = "0.1.0"

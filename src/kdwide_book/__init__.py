"""kdwide_book: the book's tooling, kept apart from the science in :mod:`kdwide`.

It imports the science, never the other way round (a test checks it):

- :mod:`kdwide_book.parameters`: the chapters' parameter rules and profiles (one table for every chapter);
- :mod:`kdwide_book.results`: results files (JSON: parameters, versions, claims, records), and the project's only
  ways of writing a file (:func:`~kdwide_book.results.atomic_write`, the one JSON writer
  :func:`~kdwide_book.results.write_json`, the append-only :class:`~kdwide_book.results.JsonLinesLog`);
- :mod:`kdwide_book.notebooks`: the one notebook executor (book, sweeps, paper runs, autograder), and executing
  chapters in place for committing them;
- :mod:`kdwide_book.book`: the chapter list and the environment table;
- :mod:`kdwide_book.sphinx_extension`: the book's Sphinx extension (offline-clean pages, author-year references),
  which imports neither JAX nor :mod:`kdwide`, so the book build stays light;
- :mod:`kdwide_book.explorers` and :mod:`kdwide_book.chapter_explorers`: the chapters' interactive figures, and the
  Sphinx extension that serves plotly.js once per site;
- :mod:`kdwide_book.runner`: the one runner of chapters with parameters (sweeps and paper runs), on Dask, with
  retries when a kernel or worker dies, and the one parser of command-line parameter values;
- :mod:`kdwide_book.sweep` and :mod:`kdwide_book.cli` (``kdwide sweep``, ``kdwide table``): parameter sweeps over
  chapters;
- :mod:`kdwide_book.paper` (``python -m kdwide_book.paper``, ``make paper``): every chapter at paper scale;
- :mod:`kdwide_book.device_check` (``python -m kdwide_book.device_check``): paper-scale kernels on the available
  device against stored float64 CPU values; it needs only jax, numpy and scipy, so this package imports nothing here;
- :mod:`kdwide_book.assignments`: course assignments from the chapters on otter-grader (student notebooks, Gradescope
  autograders, grading a class, the student edition of the book).
"""

PROFILES = ("ci", "paper")
"""Chapter profiles: ``"ci"`` runs on 2 CPU cores in minutes, ``"paper"`` is paper scale (meant for a GPU)."""

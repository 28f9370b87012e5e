"""Backends: from the IR to artifacts.

PyTorch: :mod:`~archdsl.backends.codegen` turns an analyzed spec into standalone PyTorch source
(no torch needed to generate it), :mod:`~archdsl.backends.runtime` executes that same source to
build a module, :mod:`~archdsl.backends.foldbn` folds batch norms for inference and
:mod:`~archdsl.backends.cli_compile` registers ``archdsl compile``.  Diagrams live in
:mod:`~archdsl.backends.render`.  Importing this package never imports torch.
"""

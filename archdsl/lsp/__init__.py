"""``archdsl lsp``: a language server for ``.arch`` files and archdsl YAML specs (docs/lsp.md).

The features (``hover``, ``definition``, ``completion``, ``symbols``, ``actions``, ``convert``) are
plain functions of an analysed document (:mod:`archdsl.lsp.documents`), testable without a client;
:mod:`archdsl.lsp.server` wires them to pygls, which only ``archdsl lsp`` imports.
"""

"""Architecture transforms: rewrites of a spec at the AST level, printed back as a readable spec.

:mod:`archdsl.transforms.factorize` implements ``archdsl transform --factorize``.
"""

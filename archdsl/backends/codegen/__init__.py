"""IR -> standalone PyTorch source.

The generated file imports only ``torch`` and the standard library.  Its layout:

* one ``nn.Module`` class per block *variant* (see below), named after the spec block, with
  attributes named after the spec's labels, so module paths (and state_dict keys) are exactly the
  IR's paths;
* a top-level class named after the network; anonymous parameter-free layers become functional
  calls (``F.relu``, ``F.max_pool2d``...), labelled ones modules; scopes whose content is a plain
  chain become ``nn.Sequential``, other non-block scopes ``nn.ModuleDict`` namespaces whose forward
  code lives in the enclosing class;
* ``forward`` is straight-line tensor code with a ``# N x C x H x W`` comment after every step;
  ``torch.cat`` for concat, in-place ``+=`` / ``inplace=True`` only where autograd allows it;
* ``loss_fn(outputs, target)`` (label-smoothed cross-entropy plus weighted aux heads) and, when
  the spec declares ``init`` lines, ``init_weights(model)``.

Block classes and their constructor parameters.  Every instance of a block is first rendered on its
own with every literal marked as a *hole*; instances whose code is identical up to hole values
share a class, and the hole values that differ become constructor parameters: the input channel
count is called ``in_channels``, a value equal to one of the block's spec arguments (or a small
multiple of it, or a ``(v, v)`` pair) takes that argument's name, anything else gets a name from
where it is used (``branch_pool_out``).  This gives torchvision-style classes such as
``InceptionA(in_channels, pool_features)``.  Instances whose *structure* differs (a ResNet block
with a downsample branch and one without, stages of different depth) get classes of their own,
suffixed with what distinguishes them (``Bottleneck_downsample``) or, failing a short
description, a number (``ResLayer_2``).

Where the code lives:

* :mod:`.tree` -- module-tree recovery: scopes, regions, roles (block / Sequential / ModuleDict),
  which nodes are modules, DenseNet list mode, the forward steps of each class;
* :mod:`.op_dispatch` -- everything that depends on the op: module constructors, functional forms,
  the statement of each forward step, the in-place rules; :mod:`.forms` turns the forms the op
  registry describes (functional calls, bare parameters, support definitions) into expressions;
* :mod:`.emit` -- statement emission: ``__init__`` and ``forward`` of one class instance;
* :mod:`.naming` -- variable names, hole hints, class and variant names;
* :mod:`.variants` -- grouping instances into classes and inferring constructor parameters;
* :mod:`.model` -- statements, instances, variants, and the one-pass structure scan;
* :mod:`.render` -- the file's text; :mod:`.errors` -- :class:`CodegenError`, :func:`check_source`;
* :mod:`.generator` -- :class:`Generator`, which runs the steps in that order.
"""

from __future__ import annotations

from ...ir import Graph
from ...passes.settings import TrainingSettings
from ...pipeline import gc_paused
from .errors import FORBIDDEN_NAMES, CodegenError, check_source
from .generator import Generator
from .model import (
    Assign,
    AugAdd,
    Comment,
    ExprStmt,
    If,
    Instance,
    Method,
    Param,
    Return,
    Text,
    Variant,
)
from .op_dispatch import INPLACE_OPS, MERGE_OPS, SAFE_PRODUCERS, STATEFUL
from .tree import ModuleTree


def generate(graph: Graph, *, source_name: str = "", fold_bn: bool = False,
             settings: TrainingSettings | None = None, check: bool = True) -> str:
    """Python source for ``graph`` (raises :class:`CodegenError` with diagnostics).

    With ``check`` (the default) the text is parsed with ``ast.parse`` before it is returned;
    the runtime, which parses it anyway before executing it, passes ``check=False``.
    """
    with gc_paused():  # tens of thousands of acyclic objects, all freed by reference counting
        src = Generator(graph, source_name=source_name, fold_bn=fold_bn, settings=settings).run()
    if check:
        check_source(src, source_name)  # the generated text must be valid Python before anyone sees it
    return src


__all__ = [
    "generate", "check_source", "CodegenError", "FORBIDDEN_NAMES", "Generator", "ModuleTree",
    "STATEFUL", "SAFE_PRODUCERS", "INPLACE_OPS", "MERGE_OPS",
    "Assign", "AugAdd", "Comment", "ExprStmt", "If", "Instance", "Method", "Param", "Return", "Text", "Variant",
]

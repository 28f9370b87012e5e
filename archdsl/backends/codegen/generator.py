"""The driver: graph -> module tree -> instances -> variants -> source text."""

from __future__ import annotations

from ...diagnostics import DiagnosticBag
from ...ir import Graph
from ...passes.settings import TrainingSettings, training_settings
from .. import names as N
from .emit import Emitter
from .errors import CodegenError
from .model import Instance, Variant, scan_statements
from .naming import name_variants, network_class_names
from .render import Renderer
from .tree import ModuleTree
from .variants import expand_children, group_instances, infer_params, resolve_literals


class Generator:
    """Turns one analyzed graph into source text; problems are collected in ``diags``.

    :meth:`run` does everything.  After :meth:`analyze` alone, the module tree can be queried
    (``tree``, and for convenience :meth:`is_module`, :meth:`exit_node`, ``first``, ``role``,
    ``bn_partner``).
    """

    def __init__(self, graph: Graph, *, source_name: str = "", fold_bn: bool = False,
                 settings: TrainingSettings | None = None) -> None:
        self.graph = graph
        self.G = graph.g
        self.fold = fold_bn
        self.source_name = source_name
        self.settings = settings if settings is not None else training_settings(graph)
        self.diags = DiagnosticBag()
        self.uses: set[str] = set()
        self.tree = ModuleTree(graph, fold_bn=fold_bn, diags=self.diags, source_name=source_name)

    # ---------------------------------------------------------------- the module tree
    def analyze(self) -> None:
        """Scopes, regions, roles, aliases and fold pairs (see :class:`ModuleTree`)."""
        self.tree.analyze()

    def is_module(self, nid: int) -> bool:
        """True when the op node is an attribute (module) rather than a functional call."""
        return self.tree.is_module(nid)

    def exit_node(self, path: str) -> int:
        """The node whose value leaves scope ``path``."""
        return self.tree.exit_node(path)

    @property
    def first(self) -> dict[str, int]:
        """Scope path -> its first (smallest) node id, for scopes that contain nodes."""
        return self.tree.first

    @property
    def role(self) -> dict[str, str]:
        """Scope path -> ``block``, ``seq`` or ``dict``."""
        return self.tree.role

    @property
    def bn_partner(self) -> dict[int, int | None]:
        """Each 2-D batch norm -> the convolution it can fold into (None: it cannot)."""
        return self.tree.bn_partner

    # ---------------------------------------------------------------- driver
    def run(self) -> str:
        """The generated source (raises :class:`CodegenError`)."""
        self.analyze()
        self.tree.check_names()
        if self.diags.has_errors:
            raise CodegenError(self.diags.sorted())
        self.tree.detect_list_mode()
        aux = [n for n in self.graph.outputs if n != "main"]
        self.main_field = next((f for f in ("logits", "main", "main_logits") if f not in aux), None) \
            or N.unique("main_logits", set(aux))
        self.net_class, self.outputs_class = network_class_names(self.graph)
        self.build()
        if self.diags.has_errors:
            raise CodegenError(self.diags.sorted())
        return self.source()

    def build(self) -> None:
        """Instances (children first), their variants, class names and constructor parameters."""
        meta = self.tree.bn_meta()
        em = Emitter(self.tree, self.graph, self.uses, self.net_class, self.outputs_class)
        self.instances: dict[str, Instance] = {}
        order: list[str] = []
        for path in self.tree.created_blocks(""):
            self._make(em, meta, path, order)
        self.root = em.instance("", meta, self.instances)
        self.variant_order: list[Variant] = group_instances(self.instances, order)
        scan_statements(self.root, None)
        name_variants(self.variant_order, self.root, self.net_class, self.outputs_class)
        class_names = {v.name for v in self.variant_order} | {self.net_class, self.outputs_class}
        for v in self.variant_order:  # children come first in this order
            for inst in v.instances:
                expand_children(self.tree, inst, self.instances, self.variant_order)
            infer_params(v, class_names)
        expand_children(self.tree, self.root, self.instances, self.variant_order)
        resolve_literals(self.root)

    def _make(self, em: Emitter, meta: dict, path: str, order: list[str]) -> None:
        """Emit block instance ``path`` after the blocks it creates (``order``: children first)."""
        if path in self.instances:
            return
        for child in self.tree.created_blocks(path):
            self._make(em, meta, child, order)
        self.instances[path] = em.instance(path, meta, self.instances)
        order.append(path)

    def source(self) -> str:
        """Render the built classes (after :meth:`build`)."""
        return Renderer(self.graph, source_name=self.source_name, fold_bn=self.fold, settings=self.settings,
                        uses=self.uses, net_class=self.net_class, outputs_class=self.outputs_class,
                        main_field=self.main_field).source(self.variant_order, self.root)

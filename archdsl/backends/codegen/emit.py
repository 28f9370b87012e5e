"""Statement emission: the ``__init__`` and ``forward`` statements of one class instance.

:class:`Emitter` turns one class of the module tree (a block instance, or the network) into an
:class:`Instance`: constructor statements that create its modules (op modules, nested blocks
as :class:`ChildClass` placeholders, ``nn.Sequential`` / ``nn.ModuleDict`` containers) and
straight-line forward code (:class:`ForwardWriter`), every literal a :class:`Hole`.  What each op
becomes is decided in :mod:`.op_dispatch`; variable names come from :mod:`.naming`.
"""

from __future__ import annotations

import bisect
import functools
from dataclasses import dataclass
from typing import Any

from ...ir import Graph
from ...ops import OPS
from .. import names as N
from ..pyexpr import Attr, Call, ChildClass, Expr, ListE, Lit, Name, Starred, Sub, TupleE
from . import naming
from .model import Assign, Comment, ExprStmt, If, Instance, Method, Return
from .op_dispatch import MERGE_OPS, module_ctor, parameter_ctor, reuses_first_input, step_statement
from .tree import Child, Item, ModuleTree

VIRTUAL = -1  # the value ``torch.cat(inputs, 1)`` inside a dense layer's bottleneck

#: ``self.<name>`` allowed?  (memoized: module names repeat across instances)
_attribute_ok = functools.lru_cache(maxsize=4096)(N.attribute_ok)
#: ``self`` (expression nodes other than holes, calls and containers are immutable: shared freely).
SELF = Name("self")


class Emitter:
    """Writes the statements of the classes of one module tree; imports used go to ``uses``."""

    def __init__(self, tree: ModuleTree, graph: Graph, uses: set[str], net_class: str, outputs_class: str) -> None:
        self.tree = tree
        self.graph = graph
        self.uses = uses
        self.net_class = net_class
        self.outputs_class = outputs_class
        # locals must not shadow the module-level names forward refers to (the outputs class)
        self.reserved = set(N.GLOBALS) | {"self", "inputs", net_class, outputs_class}
        self.legal_names: dict[str, str] = {}
        self._names: dict[str, Name] = {}  # shared Name nodes of local variables
        self._self_attrs: dict[str, Attr] = {}  # shared ``self.<name>`` nodes

    def _self_attr(self, attr: str) -> Attr:
        """The (shared) expression node ``self.<attr>``."""
        e = self._self_attrs.get(attr)
        if e is None:
            e = self._self_attrs[attr] = Attr(SELF, attr)
        return e

    def name(self, ident: str) -> Name:
        """The (shared) expression node of variable ``ident``."""
        e = self._names.get(ident)
        if e is None:
            e = self._names[ident] = Name(ident)
        return e

    def instance(self, cls: str, meta: dict, instances: dict[str, Instance]) -> Instance:
        """Class ``cls`` ("" for the network) rendered with holes; its child blocks must be in
        ``instances`` already."""
        tree = self.tree
        info = tree.scopes.get(cls)
        inst = Instance(cls, info.block if info else None, info.loc if info else None)
        inst.first = tree.first.get(cls, 0)
        if cls:
            entry = tree.entry_node(cls)
            shape = tree.nodes[entry if entry in tree.absorbed else tree.alias(entry)]["shape"]
            inst.in_channels = shape[0]
            inst.args = dict(info.args)
            inst.list_mode = cls in tree.list_mode
            inst.in_shape = shape
        else:
            inst.in_shape = self.graph.input_shape
        self.init_stmts(inst, cls)
        ForwardWriter(self, inst, cls).write()
        inst.bn_meta = list(meta.get(cls, []))
        inst.needs_me = inst.list_mode or any(instances[c].needs_me for c in tree.created_blocks(cls))
        return inst

    # ---------------------------------------------------------------- module access
    def access(self, cls: str, path: str) -> Expr:
        """``self.a.b``; ``self[0]`` in Sequential blocks; getattr / subscripts for other names."""
        e: Expr = SELF
        for i, part in enumerate(self.tree.rel(cls, path)):
            if i == 0 and cls in self.tree.seqblock:
                e = Sub(e, Lit(int(part)))
            elif _attribute_ok(part):
                e = self._self_attr(part) if i == 0 else Attr(e, part)
            elif i == 0:
                e = Call(Name("getattr"), [e, Lit(part)])
            else:
                e = Sub(e, Lit(part))
        return e

    def hint(self, cls: str, node: int) -> str:
        """Hole hint for the arguments of a functional op (see :func:`naming.hint`)."""
        return naming.hint(self.tree, cls, node)

    # ---------------------------------------------------------------- __init__
    def ctor(self, kind: str, ref: Any) -> Expr:
        """Constructor expression of a child: op module, block or Sequential scope."""
        if kind == "node":
            return module_ctor(self.tree, ref, self.uses)
        if self.tree.role[ref] == "block":
            return ChildClass(ref)
        kids = self._module_children(ref)
        names = [self.tree.child_name(k, r) for k, r in kids]
        exprs = [self.ctor(k, r) for k, r in kids]
        if names == [str(i) for i in range(len(names))]:
            return Call(Attr(Name("nn"), "Sequential"), exprs)
        self.uses.add("OrderedDict")
        pairs = ListE([TupleE([Lit(n), e]) for n, e in zip(names, exprs)])  # noqa: B905
        return Call(Attr(Name("nn"), "Sequential"), [Call(Name("OrderedDict"), [pairs])])

    def _module_children(self, path: str) -> list[Child]:
        """The children of a Sequential scope that are modules (not internal or folded nodes)."""
        tree = self.tree
        return [(k, r) for k, r in tree.children[path]
                if not (k == "node" and (OPS[tree.opof[r]].internal or r in tree.folded))]

    def init_stmts(self, inst: Instance, cls: str) -> None:
        """The constructor statements of class ``cls`` (``super().__init__(...)`` for a Sequential
        block, else one assignment per child module and namespace)."""
        tree = self.tree
        if cls in tree.seqblock:
            kids = self._module_children(cls)
            inst.base = "nn.Sequential"
            inst.attrs = [tree.child_name(k, r) for k, r in kids]
            inst.init.append(ExprStmt(Call(Attr(Call(Name("super")), "__init__"),
                                           [self.ctor(k, r) for k, r in kids])))
            return
        self._init_children(inst, cls, cls)

    def _init_children(self, inst: Instance, cls: str, path: str) -> None:
        """Assignments for the modules and parameters under ``path`` (ModuleDict namespaces
        recursively; a method, not a nested function, so that no reference cycle is left behind)."""
        tree = self.tree
        for kind, ref in tree.children[path]:
            if kind == "node":
                if tree.is_parameter(ref):
                    self._assign(inst, cls, tree.nodes[ref]["path"], parameter_ctor(tree, ref), parameter=True)
                elif tree.is_module(ref):
                    self._assign(inst, cls, tree.nodes[ref]["path"], self.ctor(kind, ref))
            elif tree.role[ref] in ("block", "seq"):
                self._assign(inst, cls, ref, self.ctor(kind, ref))
            elif tree.has_modules(ref):
                self._assign(inst, cls, ref, Call(Attr(Name("nn"), "ModuleDict")))
                self._init_children(inst, cls, ref)

    def _assign(self, inst: Instance, cls: str, path: str, value: Expr, parameter: bool = False) -> None:
        """``self.a.b = value`` (``add_module`` / ``register_parameter`` for names that are not
        attributes)."""
        parts = self.tree.rel(cls, path)
        if len(parts) == 1:
            inst.attrs.append(parts[0])
        holder = self.access(cls, path.rsplit(".", 1)[0]) if len(parts) > 1 else SELF
        if _attribute_ok(parts[-1]):
            inst.init.append(Assign(self._self_attr(parts[-1]) if holder is SELF else Attr(holder, parts[-1]), value))
        else:
            register = "register_parameter" if parameter else "add_module"
            inst.init.append(ExprStmt(Call(Attr(holder, register), [Lit(parts[-1]), value])))


# ------------------------------------------------------------------------------------ forward


@dataclass
class ForwardPlan:
    """What the forward of one class computes, step by step (read by :mod:`.naming`)."""

    cls: str
    items: list[Item]
    values: list[int]  # per step: the value it produces
    ins_of: list[list[int]]  # per step: the values it reads
    uses: dict[int, list[int]]  # value -> the steps reading it, in order
    var: dict[int, str]  # value -> its variable (so far)
    returns: set[int]  # values the method returns


class ForwardWriter:
    """The ``forward`` (and, for a list-mode dense layer, ``bottleneck``) method of one class."""

    def __init__(self, em: Emitter, inst: Instance, cls: str) -> None:
        self.em = em
        self.tree = tree = em.tree
        self.inst = inst
        self.cls = cls
        items = tree.class_items(cls)
        values = [tree.item_value(it) for it in items]
        ins_of = [tree.item_inputs(it) for it in items]
        self.bottleneck = tree.bottleneck.get(cls) if inst.list_mode else None
        if self.bottleneck:
            ins_of[[it[1] for it in items].index(self.bottleneck[0])] = [VIRTUAL]
            self.input_val: int | None = VIRTUAL
        elif cls:
            self.input_val = tree.alias(tree.entry_node(cls))
        else:
            self.input_val = em.graph.input_node
        if cls:
            returns = {tree.alias(tree.exit_node(cls))}
        else:
            returns = {tree.alias(tree.ins[o][0]) for o in em.graph.outputs.values()}
        uses: dict[int, list[int]] = {}
        for i, vs in enumerate(ins_of):
            for v in vs:
                us = uses.setdefault(v, [])
                if not us or us[-1] != i:
                    us.append(i)
        self.last_use = {v: us[-1] for v, us in uses.items()}
        for v in returns:
            self.last_use[v] = len(items) + 1
        self.plan = ForwardPlan(cls, items, values, ins_of, uses, {}, returns)
        self.names = naming.VariableNames(em.reserved, self.last_use, em.legal_names)
        self.plan.var[self.input_val] = "x"
        self.names.bound["x"] = self.input_val
        # DenseNet feature lists: list inputs that grow one tensor at a time share one list variable
        list_mode, dense = tree.list_mode, tree.dense_concats
        self.needs = [tuple(ins_of[i]) if (kind == "call" and ref in list_mode) or (kind == "op" and ref in dense)
                      else None for i, (kind, ref) in enumerate(items)]
        self.lists = FeatureLists(self.needs, self.plan.var, self.names, self.last_use)
        self.main: list = []
        self.bn_body: list = []
        self.aux_run: list | None = None

    def write(self) -> None:
        """Append the methods to the instance."""
        tree, plan = self.tree, self.plan
        if not self.bottleneck:
            self.main.append(Comment(tree.nodes[self.input_val]["shape"]))
        else:
            self.em.uses.add("torch")
            self.bn_body += [Assign(Name("x"), Call(Attr(Name("torch"), "cat"), [Name("inputs"), Lit(1)])),
                             Comment(tree.nodes[tree.entry_node(self.cls)]["shape"])]
        for i, it in enumerate(plan.items):
            self._step(i, it)
        self._finish()

    def _step(self, i: int, it: Item) -> None:
        """Write step ``i``: name its value, emit its statement and shape comment."""
        tree, plan = self.tree, self.plan
        val, ins = plan.values[i], plan.ins_of[i]
        node = it[1] if it[0] == "op" else None
        cont = self._continued_input(i, it, node, ins)
        name = plan.var[cont] if cont is not None else self.names.fresh(naming.base_name(tree, plan, i), i)
        var, name_of = plan.var, self.em.name
        xs = [name_of(var[v]) for v in ins]
        pre: list = []
        seq = self.lists.expr(i, pre) if self.needs[i] is not None else None
        stmt = step_statement(self.em, self.cls, it, name, xs, seq, cont is not None)
        plan.var[val] = name
        self.names.bound[name] = val
        step = pre + [stmt, Comment(tree.nodes[val]["shape"])]
        if self.bottleneck and node in self.bottleneck:
            self._bottleneck_step(node, val, step)
        elif not self.cls and all(n in tree.aux_nodes for n in tree.item_nodes(it)):
            if self.aux_run is None:
                self.aux_run = []
                self.main.append(If("self.training", self.aux_run))
            self.aux_run.extend(step)
        else:
            self.aux_run = None
            self.main.extend(step)

    def _continued_input(self, i: int, it: Item, node: int | None, ins: list[int]) -> int | None:
        """The input whose variable this step's result takes over (None: a fresh variable)."""
        plan = self.plan
        own = reuses_first_input(self.tree, node, self.tree.opof[node], ins, self.input_val) \
            if node is not None else None
        if own is not None:
            return ins[0] if own else None
        if len(ins) != 1 or (it[0] == "call" and it[1] in self.tree.list_mode):
            return None
        u = ins[0]
        us = plan.uses.get(u)
        if u in plan.var and u not in plan.returns and us and us[-1] == i and (
                us == [i] or not self._ends_in_merge(i)):
            return u
        return None

    def _ends_in_merge(self, i: int) -> bool:
        """Does the single-reader chain starting at step ``i`` end in a merge (concat, add)?"""
        plan = self.plan
        j = i
        while True:
            us = plan.uses.get(plan.values[j], [])
            if len(us) != 1 or plan.values[j] in plan.returns:
                return False
            nxt = plan.items[us[0]]
            if nxt[0] == "op" and self.tree.opof[nxt[1]] in MERGE_OPS:
                return True
            if len(plan.ins_of[us[0]]) != 1:
                return False
            j = us[0]

    def _bottleneck_step(self, node: int, val: int, step: list) -> None:
        """A step of a dense layer's bottleneck; after the last one, forward calls it (checkpointed
        when memory_efficient)."""
        self.bn_body.extend(step)
        if node != self.bottleneck[-1]:
            return
        self.bn_body.append(Return(Name("x")))
        self.em.uses.add("checkpoint")
        self.main.append(If(
            "self.memory_efficient and any(t.requires_grad for t in inputs)",
            [Assign(Name("x"), Call(Name("checkpoint"), [Attr(Name("self"), "bottleneck"), Starred(Name("inputs"))],
                                    [("use_reentrant", Lit(False))]))],
            [Assign(Name("x"), Call(Attr(Name("self"), "bottleneck"), [Starred(Name("inputs"))]))]))
        self.main.append(Comment(self.tree.nodes[val]["shape"]))

    def _finish(self) -> None:
        """The return statement(s) and the methods."""
        tree, plan, inst = self.tree, self.plan, self.inst
        if self.cls:
            self.main.append(Return(Name(plan.var[tree.alias(tree.exit_node(self.cls))])))
            if self.bottleneck:
                inst.methods.append(Method("bottleneck", "self, *inputs: Tensor) -> Tensor", self.bn_body))
                inst.methods.append(Method("forward", "self, inputs: list[Tensor]) -> Tensor", self.main))
            else:
                inst.methods.append(Method("forward", "self, x: Tensor) -> Tensor", self.main))
            return
        outs = self.em.graph.outputs
        main_val = tree.alias(tree.ins[outs["main"]][0])
        ret = "Tensor"
        if len(outs) > 1:
            outputs_class = self.em.outputs_class
            fields = [Name(plan.var[tree.alias(tree.ins[o][0])]) for o in outs.values()]
            self.main.append(If("self.training", [Return(Call(Name(outputs_class), fields))]))
            ret = f"Tensor | {outputs_class}"
        self.main.append(Return(Name(plan.var[main_val])))
        inst.methods.append(Method("forward", f"self, x: Tensor) -> {ret}", self.main))


class FeatureLists:
    """``feats = [x]; ...; feats.append(y)`` for list inputs that extend an earlier one."""

    def __init__(self, needs: list, var: dict, names: naming.VariableNames, last_use: dict) -> None:
        self.needs, self.var, self.names, self.last_use = needs, var, names, last_use
        self.live: list[list] = []  # [name, content, pseudo value id]
        self.next_id = -2
        # the steps with a list input, by the list's first value (a prefix shares it)
        self.by_head: dict[Any, list[int]] = {}
        for j, n in enumerate(needs):
            if n:
                self.by_head.setdefault(n[0], []).append(j)

    def _later(self, i: int, prefix: tuple) -> list[int]:
        """Steps after ``i`` whose list input starts with ``prefix``."""
        if prefix:
            steps = self.by_head.get(prefix[0], ())
            cands = steps[bisect.bisect_right(steps, i):]
        else:
            cands = [j for j in range(i + 1, len(self.needs)) if self.needs[j] is not None]
        k = len(prefix)
        return [j for j in cands if self.needs[j][:k] == prefix]

    def expr(self, i: int, pre: list) -> Expr:
        """The list expression for step ``i``'s input; statements that must precede go to ``pre``."""
        need = self.needs[i]
        for entry in self.live:
            name, content, pid = entry
            if self.last_use.get(pid, -1) < i or need[:len(content)] != content:
                continue
            if any(self.needs[j][:len(need)] != need for j in self._later(i, content)):
                continue  # a later reader still needs the shorter list
            for v in need[len(content):]:
                pre.append(ExprStmt(Call(Attr(Name(name), "append"), [Name(self.var[v])])))
            entry[1] = need
            self._extend_life(entry, i)
            return Name(name)
        if any(len(self.needs[j]) > len(need) for j in self._later(i, need)):
            pid = self.next_id
            self.next_id -= 1
            self.last_use[pid] = i
            name = self.names.fresh("feats", i)
            self.names.bound[name] = pid
            pre.append(Assign(Name(name), ListE([Name(self.var[v]) for v in need])))
            entry = [name, need, pid]
            self.live.append(entry)
            self._extend_life(entry, i)
            return Name(name)
        return ListE([Name(self.var[v]) for v in need])

    def _extend_life(self, entry: list, i: int) -> None:
        """The list lives until the last step whose input starts with its content."""
        self.last_use[entry[2]] = max([i] + self._later(i, entry[1]))

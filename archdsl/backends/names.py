"""Which spec names may become Python identifiers in generated code, and how.

Spec labels become attribute names and state_dict prefixes, so they are used verbatim or not at
all: a label that PyTorch cannot register (an attribute of ``nn.Module`` such as ``training`` or
``forward``) is an error.  Names that only matter to Python (classes, constructor parameters,
local variables) are adjusted deterministically instead: a trailing ``_`` when they collide with a
keyword, a builtin or a name the generated file defines.
"""

from __future__ import annotations

import builtins
import keyword
import re

from ..ops import SUPPORT

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

#: Every attribute of a fresh ``torch.nn.Module`` (torch 2.x); a child module cannot use these
#: names (``add_module`` refuses them).  ``tests/test_codegen.py`` checks the list against the
#: installed torch.
MODULE_ATTRS = frozenset("""
T_destination __annotations__ __call__ __class__ __delattr__ __dict__ __dir__ __doc__ __eq__
__format__ __ge__ __getattr__ __getattribute__ __getstate__ __gt__ __hash__ __init__
__init_subclass__ __le__ __lt__ __module__ __ne__ __new__ __reduce__ __reduce_ex__ __repr__
__setattr__ __setstate__ __sizeof__ __str__ __subclasshook__ __weakref__ _apply _backward_hooks
_backward_pre_hooks _buffers _call_impl _compiled_call_impl _forward_hooks
_forward_hooks_always_called _forward_hooks_with_kwargs _forward_pre_hooks
_forward_pre_hooks_with_kwargs _get_backward_hooks _get_backward_pre_hooks _get_name
_is_full_backward_hook _load_from_state_dict _load_state_dict_post_hooks
_load_state_dict_pre_hooks _maybe_warn_non_full_backward_hook _modules _named_members
_non_persistent_buffers_set _parameters _register_load_state_dict_pre_hook
_register_state_dict_hook _replicate_for_data_parallel _save_to_state_dict _slow_forward
_state_dict_hooks _state_dict_pre_hooks _version _wrapped_call_impl add_module apply bfloat16
buffers call_super_init children compile cpu cuda double dump_patches eval extra_repr float
forward get_buffer get_extra_state get_parameter get_submodule half ipu load_state_dict modules
mtia named_buffers named_children named_modules named_parameters parameters
register_backward_hook register_buffer register_forward_hook register_forward_pre_hook
register_full_backward_hook register_full_backward_pre_hook register_load_state_dict_post_hook
register_load_state_dict_pre_hook register_module register_parameter
register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state
set_submodule share_memory state_dict to to_empty train training type xpu zero_grad
""".split())

#: Extra attributes of the containers archdsl emits.
SEQUENTIAL_ATTRS = frozenset("""
__add__ __delitem__ __getitem__ __iadd__ __imul__ __iter__ __len__ __mul__ __rmul__ __setitem__
_get_item_by_idx append extend insert pop
""".split())
MODULEDICT_ATTRS = frozenset("""
__contains__ __delitem__ __getitem__ __iter__ __len__ __setitem__ clear items keys pop update values
""".split())

#: Non-module attributes and methods the generated classes define themselves.
GENERATED_ATTRS = frozenset({"memory_efficient", "bottleneck", "archdsl_bn"})

#: Module-level names of a generated file (imports and definitions other than block classes).
GLOBALS = frozenset({
    "torch", "nn", "F", "Tensor", "OrderedDict", "NamedTuple", "checkpoint", "loss_fn",
    "init_weights", "LABEL_SMOOTHING", "AUX_WEIGHTS", "INPUT_SHAPE", "SPEC", "NETWORK",
    "BN_FOLDED",
}) | frozenset(SUPPORT)  # and the helper definitions ops may need (LayerNorm2d, stochastic_depth...)

#: Local names the generated methods and functions always use (``forward(self, x)``,
#: ``loss_fn(outputs, target)``...); a module-level class must not be named like one of them.
LOCALS = frozenset({"self", "x", "inputs", "t", "memory_efficient", "outputs", "target", "eps", "loss",
                    "name", "weight", "aux", "model", "m"})

_BUILTINS = frozenset(dir(builtins))
_AMBIGUOUS = frozenset({"l", "O", "I"})  # pycodestyle E741


def is_identifier(name: str) -> bool:
    """A plain ASCII identifier that is not a Python keyword."""
    return bool(IDENT.match(name)) and not keyword.iskeyword(name) and not keyword.issoftkeyword(name)


def module_name_problem(name: str, container: str = "module") -> str | None:
    """Why ``name`` cannot be a child module name of a ``container`` (None when it can)."""
    if not name or "." in name:
        return "module names must be non-empty and contain no '.'"
    if name in MODULE_ATTRS or name in GENERATED_ATTRS:
        return f"'{name}' is an attribute of torch.nn.Module"
    if container == "sequential" and name in SEQUENTIAL_ATTRS:
        return f"'{name}' is an attribute of torch.nn.Sequential"
    if container == "dict" and name in MODULEDICT_ATTRS:
        return f"'{name}' is an attribute of torch.nn.ModuleDict"
    return None


def attribute_ok(name: str) -> bool:
    """True when ``self.<name>`` may be written for a child module (else use add_module/getattr).

    Names starting with ``__`` are excluded: inside a class body Python mangles ``self.__x`` to
    ``self._Class__x``, which would change the module path and the state_dict keys."""
    return is_identifier(name) and not name.startswith("__")


def python_name(name: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """``name`` made safe as a Python class, parameter or variable name (deterministic)."""
    if not IDENT.match(name):
        name = re.sub(r"[^A-Za-z0-9_]", "_", name) or "_"
        if name[0].isdigit():
            name = "_" + name
    if not name.strip("_"):
        name = "_unnamed"  # '_' is a soft keyword, '__' a dunder-like name
    elif name.startswith("__"):
        # ``__x`` is mangled inside class bodies and ``__x__`` names are Python's own (a class
        # called ``__builtins__`` at module level would replace the module's builtins).
        name = "_" + name.lstrip("_")
    while (keyword.iskeyword(name) or keyword.issoftkeyword(name) or name in _BUILTINS or name in GLOBALS
           or name in _AMBIGUOUS or name == "self" or name in taken):
        name += "_"
    return name


def unique(base: str, taken: set[str]) -> str:
    """``base``, ``base_2``, ``base_3``... whichever is not in ``taken``; adds it to ``taken``."""
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name

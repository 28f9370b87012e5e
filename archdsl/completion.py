"""Shell completion scripts for ``archdsl``, generated from its argparse tree (``archdsl completion SHELL``).

The scripts know every subcommand with its one-line help, every option with its choices, and which
values are files (SPEC, OUT, NEW), directories (DIR) or limit names (``--limit``).  The output depends
only on the parser, so it is the same on every run; nothing here imports more than argparse.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass

SHELLS = ("bash", "zsh", "fish")

#: Metavars whose values are paths; every other value gets no completion (NAME=VALUE, CxHxW, N, ...).
_FILE_METAVARS = frozenset({"SPEC", "OUT", "NEW"})
_DIR_METAVARS = frozenset({"DIR"})


@dataclass(frozen=True)
class Option:
    """One option as the completion scripts see it."""

    flags: tuple[str, ...]          # "-o", "--output"
    help: str
    takes_value: bool
    kind: str                       # "flag", "choices", "file", "dir", "words", "text"
    words: tuple[str, ...] = ()     # the choices, or the limit names with "=" for --limit
    metavar: str = ""
    repeatable: bool = False
    optional_value: bool = False    # nargs="?": the value, if any, must be in the same word (--opt=VALUE)


@dataclass(frozen=True)
class Positional:
    """A positional argument: its name, help, completion kind and whether it takes several values."""

    metavar: str
    help: str
    kind: str
    words: tuple[str, ...] = ()
    many: bool = False


@dataclass(frozen=True)
class Command:
    """A parser (the top level or a subcommand): its options and positionals."""

    name: str
    help: str
    options: tuple[Option, ...]
    positionals: tuple[Positional, ...]


_ABBREVIATIONS = ("e.g", "i.e", "etc", "vs")


def _one_line(text: str | None, width: int = 72) -> str:
    """The help text up to its first '; ' or sentence end outside brackets, on one line, at most
    ``width`` characters (a shell shows one line per option)."""
    text = " ".join((text or "").split())
    depth = 0
    for i, ch in enumerate(text):
        depth += (ch in "([") - (ch in ")]")
        if depth == 0 and text[i:i + 2] in ("; ", ". ") and not text[:i].endswith(_ABBREVIATIONS):
            text = text[:i]
            break
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


def _kind(action: argparse.Action, limit_names: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """How an argument's value completes (see :class:`Option`), and the words it completes to."""
    if action.nargs == 0:
        return "flag", ()
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        return "choices", tuple(str(c) for c in action.choices)
    if action.dest in ("limit", "global_limit"):
        return "words", tuple(f"{n}=" for n in limit_names)
    metavar = action.metavar if isinstance(action.metavar, str) else ""
    if metavar in _FILE_METAVARS:
        return "file", ()
    if metavar in _DIR_METAVARS:
        return "dir", ()
    return "text", ()


def _command(name: str, help_text: str, parser: argparse.ArgumentParser, limit_names: tuple[str, ...]) -> Command:
    """One parser's arguments, as completion sees them."""
    options, positionals = [], []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        kind, words = _kind(action, limit_names)
        long = max(action.option_strings, key=len).lstrip("-") if action.option_strings else action.dest
        metavar = action.metavar if isinstance(action.metavar, str) else long.replace("-", "_").upper()
        if action.option_strings:
            repeatable = isinstance(action, (argparse._AppendAction, argparse._AppendConstAction))
            options.append(Option(tuple(action.option_strings), _one_line(action.help), action.nargs != 0, kind,
                                  words, metavar, repeatable, action.nargs == argparse.OPTIONAL))
        else:
            positionals.append(Positional(metavar, _one_line(action.help), kind, words,
                                          action.nargs in ("*", "+", argparse.REMAINDER)))
    return Command(name, _one_line(help_text), tuple(options), tuple(positionals))


def commands(parser: argparse.ArgumentParser, limit_names: tuple[str, ...]) -> tuple[Command, list[Command]]:
    """The top level and every subcommand (in registration order), as completion sees them."""
    top = _command("", parser.description or "", parser, limit_names)
    subs: list[Command] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            subs.extend(_command(name, helps.get(name, ""), sub, limit_names) for name, sub in action.choices.items())
    return top, subs


def generate(parser: argparse.ArgumentParser, shell: str, limit_names: tuple[str, ...] = ()) -> str:
    """The completion script for ``shell`` (one of :data:`SHELLS`)."""
    top, subs = commands(parser, limit_names)
    prog = parser.prog
    render = {"bash": _bash, "zsh": _zsh, "fish": _fish}[shell]
    return "\n".join(render(prog, top, subs)) + "\n"


# ------------------------------------------------------------------------------------------ bash


def _bash(prog: str, top: Command, subs: list[Command]) -> Iterator[str]:
    fn = "_" + prog.replace("-", "_")
    names = [c.name for c in subs]
    yield f"# bash completion for {prog}; generated by '{prog} completion bash'."
    yield f"# Load it with: source <({prog} completion bash)"
    yield f"# or save it as ~/.local/share/bash-completion/completions/{prog}"
    yield f"{fn}() {{"
    yield "    local cur prev cmd i"
    yield '    cur="${COMP_WORDS[COMP_CWORD]}"'
    yield '    prev="${COMP_WORDS[COMP_CWORD-1]}"'
    yield '    cmd=""'
    yield "    for (( i = 1; i < COMP_CWORD; i++ )); do"
    yield '        case "${COMP_WORDS[i]}" in'
    yield f"            {'|'.join(names)}) cmd=\"${{COMP_WORDS[i]}}\"; break ;;"
    yield "        esac"
    yield "    done"
    yield '    case "$cmd" in'
    yield '        "")'
    yield from _bash_body(top, names, "            ")
    yield "            ;;"
    for cmd in subs:
        yield f"        {cmd.name})"
        yield from _bash_body(cmd, [], "            ")
        yield "            ;;"
    yield "    esac"
    yield "}"
    yield f"complete -o bashdefault -o default -F {fn} {prog}"


def _bash_words(words: tuple[str, ...] | list[str]) -> str:
    return f'COMPREPLY=($(compgen -W "{" ".join(words)}" -- "$cur"))'


_NO_FILES = "compopt +o default +o bashdefault 2>/dev/null"


def _bash_value(o: Option) -> list[str]:
    """The commands that complete ``o``'s value (none for a file: the shell's own completion)."""
    if o.kind in ("choices", "words"):
        return [_bash_words(o.words)] + (["compopt -o nospace 2>/dev/null"] if o.kind == "words" else [])
    if o.kind == "dir":
        return ['COMPREPLY=($(compgen -d -- "$cur"))']
    return [] if o.kind == "file" else [_NO_FILES]


def _bash_body(cmd: Command, subcommands: list[str], pad: str) -> Iterator[str]:
    """Completion inside one command: an option's value, an option name, or a positional."""
    arms: dict[tuple[str, ...], list[str]] = {}   # options that complete alike share one case arm
    for o in cmd.options:
        if o.takes_value and not o.optional_value:
            arms.setdefault(tuple(_bash_value(o)), []).extend(o.flags)
    if arms:
        yield f'{pad}case "$prev" in'
        for body, flags in arms.items():
            yield f"{pad}    {'|'.join(flags)})"
            for line in body:
                yield f"{pad}        {line}"
            yield f"{pad}        return ;;"
        yield f"{pad}esac"
    flags = [f for o in cmd.options for f in o.flags]
    yield f'{pad}if [[ "$cur" == -* ]]; then'
    yield f"{pad}    {_bash_words(flags)}"
    yield f"{pad}    return"
    yield f"{pad}fi"
    if subcommands:
        yield f"{pad}{_bash_words(subcommands)}"
    elif cmd.positionals and cmd.positionals[0].kind == "choices":
        yield f"{pad}{_bash_words(cmd.positionals[0].words)}"
    elif not any(p.kind == "file" for p in cmd.positionals):
        yield f"{pad}{_NO_FILES}"


# ------------------------------------------------------------------------------------------- zsh


def _zsh_quote(text: str) -> str:
    """``text`` inside single quotes for zsh."""
    return "'" + text.replace("'", "'\\''") + "'"


def _zsh_explain(text: str) -> str:
    """An ``_arguments`` explanation: brackets (they would end it) as parentheses; backslash, colon,
    dollar and backquote escaped (as clap_complete does)."""
    text = text.replace("\\", "\\\\").replace("[", "(").replace("]", ")")
    for ch in ":$`":
        text = text.replace(ch, "\\" + ch)
    return text


def _zsh_action(kind: str, words: tuple[str, ...]) -> str:
    if kind in ("choices", "words"):
        return "(" + " ".join(w.replace(":", "\\:") for w in words) + ")"
    return {"file": "_files", "dir": "_files -/"}.get(kind, " ")


def _zsh_option(o: Option) -> str:
    explain = _zsh_explain(o.help)
    if not o.takes_value:
        tail = f"[{explain}]"
        forms = list(o.flags)
    else:
        message = o.metavar.replace(":", "\\:")
        tail = f"[{explain}]:{message}:{_zsh_action(o.kind, o.words)}"
        forms = [f + ("=-" if o.optional_value else "=" if f.startswith("--") else "+") for f in o.flags]
    if o.flags[0] in ("-h", "--help", "--version"):
        prefix = "(- *)"
    elif o.repeatable:
        prefix = "*"
    elif len(o.flags) > 1:
        prefix = "(" + " ".join(o.flags) + ")"
    else:
        prefix = ""
    if len(forms) == 1:
        return _zsh_quote(prefix + forms[0] + tail)
    return _zsh_quote(prefix) + "{" + ",".join(forms) + "}" + _zsh_quote(tail)


def _zsh_positional(p: Positional) -> str:
    message = p.metavar.replace(":", "\\:")
    return _zsh_quote(f"{'*' if p.many else ''}:{message}:{_zsh_action(p.kind, p.words)}")


def _zsh(prog: str, top: Command, subs: list[Command]) -> Iterator[str]:
    fn = "_" + prog.replace("-", "_")
    yield f"#compdef {prog}"
    yield f"# zsh completion for {prog}; generated by '{prog} completion zsh'."
    yield f"# Load it with: source <({prog} completion zsh)   (after compinit)"
    yield f"# or save it as _{prog} in a directory on $fpath"
    yield f"{fn}() {{"
    yield '    local curcontext="$curcontext" state line'
    yield "    typeset -A opt_args"
    yield "    _arguments -C \\"
    for o in top.options:
        yield f"        {_zsh_option(o)} \\"
    yield f"        {_zsh_quote(':command:' + fn + '_commands')} \\"
    yield f"        {_zsh_quote('*:: :->args')}"
    yield "    case $state in"
    yield "        (args)"
    yield f'            curcontext="${{curcontext%:*:*}}:{prog}-$line[1]:"'
    yield "            case $line[1] in"
    for cmd in subs:
        yield f"                ({cmd.name})"
        yield "                    _arguments \\"
        specs = [_zsh_option(o) for o in cmd.options] + [_zsh_positional(p) for p in cmd.positionals]
        for i, spec in enumerate(specs):
            yield f"                        {spec}" + (" \\" if i < len(specs) - 1 else "")
        yield "                    ;;"
    yield "            esac"
    yield "            ;;"
    yield "    esac"
    yield "}"
    yield f"{fn}_commands() {{"
    yield "    local -a commands"
    yield "    commands=("
    for cmd in subs:
        yield f"        {_zsh_quote(cmd.name + ':' + cmd.help)}"
    yield "    )"
    yield f"    _describe -t commands '{prog} command' commands"
    yield "}"
    yield f'if [ "$funcstack[1]" = "{fn}" ]; then'
    yield f'    {fn} "$@"'
    yield "else"
    yield f"    compdef {fn} {prog}"
    yield "fi"


# ------------------------------------------------------------------------------------------ fish


def _fish_quote(text: str) -> str:
    """``text`` inside single quotes for fish."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish_option(prog: str, cond: str, o: Option) -> str:
    parts = [f"complete -c {prog} -n {_fish_quote(cond)}"]
    for flag in o.flags:
        parts.append(f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}" if len(flag) == 2
                     else f"-o {flag[1:]}")
    if o.optional_value:
        pass  # --opt=VALUE in one word: fish offers the option name only
    elif o.takes_value:
        if o.kind in ("choices", "words"):
            parts.append(f"-x -a {_fish_quote(' '.join(o.words))}")
        elif o.kind == "dir":
            parts.append("-x -a '(__fish_complete_directories)'")
        elif o.kind == "file":
            parts.append("-r -F")
        else:
            parts.append("-x")
    parts.append(f"-d {_fish_quote(o.help)}")
    return " ".join(parts)


def _fish(prog: str, top: Command, subs: list[Command]) -> Iterator[str]:
    names = " ".join(c.name for c in subs)
    at_top = f"not __fish_seen_subcommand_from {names}"
    yield f"# fish completion for {prog}; generated by '{prog} completion fish'."
    yield f"# Load it with: {prog} completion fish | source"
    yield f"# or save it as ~/.config/fish/completions/{prog}.fish"
    yield f"complete -c {prog} -f"
    for cmd in subs:
        yield f"complete -c {prog} -n {_fish_quote(at_top)} -a {cmd.name} -d {_fish_quote(cmd.help)}"
    for o in top.options:
        yield _fish_option(prog, at_top, o)
    for cmd in subs:
        cond = f"__fish_seen_subcommand_from {cmd.name}"
        for o in cmd.options:
            yield _fish_option(prog, cond, o)
        for p in cmd.positionals:
            if p.kind == "file":
                yield f"complete -c {prog} -n {_fish_quote(cond)} -F"
            elif p.kind == "choices":
                yield (f"complete -c {prog} -n {_fish_quote(cond)} -a {_fish_quote(' '.join(p.words))} "
                       f"-d {_fish_quote(p.help)}")

"""The self-contained HTML viewer behind ``archdsl render --format html``.

One file, no network: the SVG that Graphviz drew for the initial view, the view model as JSON,
the viewer script (``render_assets/viewer.js``: pan/zoom, hover details, expand/collapse) and
Viz.js (``render_assets/viz-global.js``, Graphviz compiled to WebAssembly, MIT/EPL; see
``render_assets/README.md``), which lays the diagram out again when a block is expanded or
collapsed.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from .render import Model

ASSETS = Path(__file__).resolve().parent / "render_assets"

_CSS = """
:root { --bar: #263238; --ink: #263238; }
* { box-sizing: border-box; }
html, body { margin: 0; height: 100%; font: 13px/1.35 Helvetica, Arial, sans-serif; color: var(--ink); }
body { display: flex; flex-direction: column; }
header { display: flex; align-items: center; gap: 12px; padding: 6px 10px; background: var(--bar); color: #fff;
         flex-wrap: wrap; }
header h1 { font-size: 15px; margin: 0; }
header .stats { opacity: .85; }
header .help { opacity: .7; font-size: 12px; margin-left: auto; }
header button { background: #37474F; color: #fff; border: 1px solid #546E7A; border-radius: 4px; padding: 3px 8px;
                cursor: pointer; font: inherit; }
header button:hover { background: #455A64; }
#status { color: #FFD54F; min-width: 6em; }
#canvas { flex: 1; overflow: hidden; position: relative; background: #fff; cursor: grab; touch-action: none; }
#canvas.panning { cursor: grabbing; }
#canvas svg { width: 100%; height: 100%; display: block; user-select: none; }
#canvas svg text { font-family: Arial, Helvetica, "Liberation Sans", sans-serif; }
#canvas g.closed-block { cursor: zoom-in; }
#canvas g.closed-block:hover path, #canvas g.closed-block:hover polygon { stroke-width: 3; }
#canvas g.open-block > text { cursor: zoom-out; }
#canvas g.open-block:hover > path, #canvas g.open-block:hover > polygon { stroke-width: 2; }
#canvas g.node:hover text { text-decoration: none; }
#details { position: fixed; z-index: 10; max-width: 460px; background: #fffde7; border: 1px solid #90A4AE;
           border-radius: 6px; box-shadow: 0 4px 14px rgba(0,0,0,.2); padding: 8px 10px; pointer-events: none; }
#details .title { font-weight: bold; margin-bottom: 4px; word-break: break-all; }
#details table { border-collapse: collapse; }
#details th { text-align: left; font-weight: normal; color: #607D8B; padding: 1px 10px 1px 0; vertical-align: top;
              white-space: nowrap; }
#details td { padding: 1px 0; word-break: break-word; }
#details .findings { color: #D50000; margin: 6px 0 0; padding-left: 18px; }
#details .hint { color: #607D8B; font-style: italic; margin-top: 4px; }
"""


def _script_json(data: Any) -> str:
    """JSON safe inside a <script> element."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def _inline_svg(svg: str) -> str:
    svg = re.sub(r"<\?xml[^>]*\?>\s*", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg)
    svg = re.sub(r"<!--.*?-->\s*", "", svg, flags=re.S)
    return svg.strip()


def _asset(name: str) -> str:
    text = (ASSETS / name).read_text(encoding="utf-8")
    return text.replace("</script", "<\\/script")


def build_html(model: Model, opened: set[str], direction: str, svg: str) -> str:
    """The viewer page for ``model``, starting from ``svg`` (drawn with the scopes in ``opened``)."""
    order = {s["id"]: i for i, s in enumerate(model.scopes)}
    state = {"open": sorted(opened, key=lambda sid: order.get(sid, -1)), "direction": direction}
    title = html.escape(model.name)
    n_layers = sum(1 for n in model.nodes if n["info"]["op"] not in ("input", "output", "concat", "add", "mul"))
    stats = html.escape(f"{n_layers} layers · {model.params_text} params · {len(model.scopes)} blocks and groups")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="archdsl render">
<title>{title} · archdsl</title>
<style>{_CSS}</style>
</head>
<body data-state="loading">
<header>
<h1>{title}</h1><span class="stats">{stats}</span>
<button id="zoom-in" title="zoom in">+</button><button id="zoom-out" title="zoom out">&#8722;</button>
<button id="fit" title="whole diagram">fit</button><button id="fit-width" title="fit the width">fit width</button>
<button id="expand-all">expand all</button><button id="collapse-all">collapse all</button>
<button id="reset" title="the view this file was written with">reset</button>
<span id="status"></span>
<span class="help">wheel: zoom · drag: pan · click a block: expand · click a frame: collapse · hover: details</span>
</header>
<div id="canvas">
{_inline_svg(svg)}
</div>
<div id="details" hidden></div>
<script type="application/json" id="archdsl-model">{_script_json(model.to_json())}</script>
<script type="application/json" id="archdsl-state">{_script_json(state)}</script>
<script>
{_asset("viz-global.js")}
</script>
<script>
{_asset("viewer.js")}
</script>
</body>
</html>
"""

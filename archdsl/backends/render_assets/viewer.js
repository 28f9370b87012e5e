/* archdsl diagram viewer: pan/zoom, click a block to expand or collapse it, hover for details.
 *
 * The page embeds the view model (archdsl/backends/render.py: build_model) and the SVG that
 * Graphviz drew for the initial set of open scopes.  Expanding or collapsing a block rebuilds the
 * DOT exactly as render.to_dot does (same walk, same attributes) and lays it out again with the
 * embedded Viz.js (Graphviz compiled to WebAssembly), so no network access is ever needed.
 */
(function () {
  "use strict";

  var model = JSON.parse(document.getElementById("archdsl-model").textContent);
  var state = JSON.parse(document.getElementById("archdsl-state").textContent);
  var canvas = document.getElementById("canvas");
  var details = document.getElementById("details");
  var status = document.getElementById("status");
  var byId = {};
  var nodes = {};
  model.scopes.forEach(function (s) { byId[s.id] = s; });
  model.nodes.forEach(function (n) { nodes[n.id] = n; });
  var open = new Set(state.open);
  var initialOpen = state.open.slice();
  var svg = null;
  var vb = null;
  var vizReady = null;

  // ------------------------------------------------------------------ DOT, as render.to_dot writes it
  function quote(v) {
    v = String(v);
    if (v.length > 1 && v.charAt(0) === "<" && v.charAt(v.length - 1) === ">") return v;
    return '"' + v.replace(/"/g, '\\"') + '"';
  }

  function attrList(a) {
    var parts = [];
    Object.keys(a).forEach(function (k) { if (k !== "tooltip") parts.push(k + "=" + quote(a[k])); });
    return "[" + parts.join(" ") + "]";
  }

  function visibleMap() {
    var rep = {};
    model.nodes.forEach(function (n) {
      var r = n.id;
      for (var i = 0; i < n.scopes.length; i++) {
        if (!open.has(n.scopes[i])) { r = n.scopes[i]; break; }
      }
      rep[n.id] = r;
    });
    return rep;
  }

  function ancestors(s) {
    var out = [];
    while (s.parent) { out.push(s.parent); s = byId[s.parent]; }
    return out.reverse();
  }

  function firstItem(s) {
    var item = s.children[0];
    while (byId[item] && open.has(item)) item = byId[item].children[0];
    return item;
  }

  function buildDot() {
    var lines = [];
    var keys = new Set();
    var gattrs = Object.assign({}, model.graph_attrs, { rankdir: state.direction });

    function emit(items, indent) {
      items.forEach(function (item) {
        if (nodes[item]) {
          lines.push(indent + item + " " + attrList(nodes[item].attrs));
          nodes[item].legend.forEach(function (k) { keys.add(k); });
          return;
        }
        var s = byId[item];
        if (open.has(item)) {
          lines.push(indent + "subgraph cluster_" + item + " {");
          lines.push(indent + "\tgraph " + attrList(s.cluster));
          emit(s.children, indent + "\t");
          lines.push(indent + "}");
          s.cluster_legend.forEach(function (k) { keys.add(k); });
        } else {
          lines.push(indent + item + " " + attrList(s.collapsed));
          s.legend.forEach(function (k) { keys.add(k); });
        }
      });
    }
    emit(model.roots, "\t");

    var rep = visibleMap();
    var order = new Map();
    var attrsOf = new Map();
    var best = new Map();
    model.edges.forEach(function (e) {
      var a = rep["n" + e.src], b = rep["n" + e.dst];
      if (a === b) return;
      var key = a + "\u0000" + b;
      if (!order.has(key)) { order.set(key, order.size); attrsOf.set(key, Object.assign({}, e.attrs)); }
      if (e.label) {
        var cur = best.get(e.src);
        var cand = [e.prio, order.get(key), key, e.label];
        if (!cur || cand[0] < cur[0] || (cand[0] === cur[0] && cand[1] < cur[1])) best.set(e.src, cand);
      }
    });
    var labels = new Map();
    Array.from(best.keys()).sort(function (x, y) { return x - y; }).forEach(function (src) {
      var c = best.get(src);
      var list = labels.get(c[2]) || [];
      if (list.indexOf(c[3]) < 0) list.push(c[3]);
      labels.set(c[2], list);
    });
    var enclosing = {};
    model.nodes.forEach(function (n) { enclosing[n.id] = n.scopes; });
    model.scopes.forEach(function (s) { enclosing[s.id] = ancestors(s); });
    var edgeLines = [];
    order.forEach(function (_, key) {
      var ab = key.split("\u0000"), a = ab[0], b = ab[1];
      var attrs = Object.assign({}, attrsOf.get(key));
      if (labels.has(key)) attrs.label = labels.get(key).join(", ");
      var inner = enclosing[b].filter(function (c) { return open.has(c); });
      if (inner.length) {
        var c = inner[inner.length - 1];
        var tailOpen = enclosing[a].filter(function (x) { return open.has(x); });
        if (firstItem(byId[c]) === b && tailOpen.indexOf(c) < 0) attrs.lhead = "cluster_" + c;
      }
      edgeLines.push("\t" + a + " -> " + b + " " + attrList(attrs));
    });
    var cells = model.legend.items.filter(function (c) { return keys.has(c.key); }).map(function (c) { return c.cell; });
    gattrs.label = model.legend.head.replace("@SPAN@", String(Math.max(cells.length, 1))) + cells.join("") +
      model.legend.tail;
    return "digraph " + quote(model.name) + " {\n\tgraph " + attrList(gattrs) + "\n\tnode " +
      attrList(model.node_attrs) + "\n\tedge " + attrList(model.edge_attrs) + "\n" + lines.join("\n") + "\n" +
      edgeLines.join("\n") + "\n}\n";
  }

  // ------------------------------------------------------------------ pan and zoom (the viewBox)
  function setViewBox() {
    svg.setAttribute("viewBox", vb.x + " " + vb.y + " " + vb.w + " " + vb.h);
  }

  function graphSize() {
    var base = svg.viewBox.baseVal;
    return { w: svg.__w || base.width, h: svg.__h || base.height };
  }

  function fit(widthOnly) {
    var size = graphSize();
    var cw = canvas.clientWidth || 800, ch = canvas.clientHeight || 600;
    var k = Math.max(size.w / cw, widthOnly ? 0 : size.h / ch);
    if (widthOnly) k = Math.max(k, 1);  // never blow a narrow graph up past 100 %
    vb = { x: (size.w - cw * k) / 2, y: 0, w: cw * k, h: ch * k };
    if (!widthOnly) vb.y = (size.h - ch * k) / 2;
    setViewBox();
  }

  function zoomAt(factor, px, py) {
    var cw = canvas.clientWidth, ch = canvas.clientHeight;
    var ux = vb.x + vb.w * px / cw, uy = vb.y + vb.h * py / ch;
    vb.w *= factor; vb.h *= factor;
    vb.x = ux - vb.w * px / cw; vb.y = uy - vb.h * py / ch;
    setViewBox();
  }

  function prepare(el) {
    // Graphviz's <title> children would show as native tooltips; the details panel replaces them.
    Array.prototype.slice.call(el.querySelectorAll("title")).forEach(function (t) { t.remove(); });
    var base = el.viewBox.baseVal;
    el.__w = base.width; el.__h = base.height;
    el.removeAttribute("width");
    el.removeAttribute("height");
    el.setAttribute("preserveAspectRatio", "xMinYMin meet");
    el.querySelectorAll("g.node, g.cluster").forEach(function (g) {
      var id = g.id;
      if (byId[id]) g.classList.add(g.classList.contains("cluster") ? "open-block" : "closed-block");
    });
  }

  var drag = null;
  canvas.addEventListener("wheel", function (e) {
    e.preventDefault();
    var r = canvas.getBoundingClientRect();
    zoomAt(Math.exp(e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  canvas.addEventListener("pointerdown", function (e) {
    drag = { x: e.clientX, y: e.clientY, vx: vb.x, vy: vb.y, moved: false };
  });
  window.addEventListener("pointermove", function (e) {
    if (!drag) return;
    var dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 4) drag.moved = true;
    if (drag.moved) {
      var k = vb.w / canvas.clientWidth;
      vb.x = drag.vx - dx * k; vb.y = drag.vy - dy * k;
      setViewBox();
      canvas.classList.add("panning");
    }
  });
  window.addEventListener("pointerup", function () {
    canvas.classList.remove("panning");
    setTimeout(function () { drag = null; }, 0);
  });

  // ------------------------------------------------------------------ expand / collapse
  function relayout(anchorId) {
    var anchorEl = anchorId ? svg.querySelector('[id="' + anchorId + '"]') : null;
    var before = anchorEl ? anchorEl.getBoundingClientRect() : null;
    var k = vb.w / canvas.clientWidth;
    document.body.setAttribute("data-state", "busy");
    status.textContent = "laying out\u2026";
    if (!vizReady) vizReady = Viz.instance();
    return vizReady.then(function (viz) {
      var el = viz.renderSVGElement(buildDot());
      prepare(el);
      canvas.replaceChild(el, svg);
      svg = el;
      vb = { x: vb.x, y: vb.y, w: canvas.clientWidth * k, h: canvas.clientHeight * k };
      setViewBox();
      var after = anchorId ? svg.querySelector('[id="' + anchorId + '"]') : null;
      if (before && after) {
        var r = after.getBoundingClientRect();
        vb.x += ((r.left + r.right) - (before.left + before.right)) / 2 * k;
        vb.y += (r.top - before.top) * k;
        setViewBox();
      } else if (!anchorId) {
        fit(true);
      }
      status.textContent = "";
      document.body.setAttribute("data-state", "ready");
      document.body.setAttribute("data-open", Array.from(open).sort().join(" "));
    }).catch(function (err) {
      status.textContent = "cannot lay out the diagram: " + err;
      document.body.setAttribute("data-state", "error");
    });
  }

  function toggle(id) {
    if (!byId[id]) return null;
    if (open.has(id)) open.delete(id); else open.add(id);
    hideDetails();
    return relayout(id);
  }

  canvas.addEventListener("click", function (e) {
    if (drag && drag.moved) return;
    var g = e.target.closest("g.node, g.cluster");
    if (g && byId[g.id]) toggle(g.id);
  });

  // ------------------------------------------------------------------ details on hover
  // a symbolic input's counts arrive as expressions in H and W, already formatted
  function fmtInt(n) { return typeof n === "string" ? n : Number(n).toLocaleString("en-US"); }

  function row(label, value) {
    if (value === "" || value === undefined || value === null) return "";
    var tr = document.createElement("tr");
    var th = document.createElement("th"); th.textContent = label;
    var td = document.createElement("td"); td.textContent = value;
    tr.appendChild(th); tr.appendChild(td);
    return tr;
  }

  function showDetails(id, ev) {
    var item = nodes[id] || byId[id];
    if (!item) return;
    var info = item.info;
    details.innerHTML = "";
    var h = document.createElement("div"); h.className = "title"; h.textContent = info.title;
    details.appendChild(h);
    var table = document.createElement("table");
    [row("op", info.op), row("args", info.args), row("inputs", info.inputs), row("output", info.shape), row("params", fmtInt(info.params)),
     row("MACs", fmtInt(info.macs)), row("receptive field", info.rf),
     row("layers", info.layers !== undefined ? String(info.layers) : ""), row("defined at", info.loc),
     row("aux head", info.aux ? "yes (training only)" : "")].forEach(function (r) { if (r) table.appendChild(r); });
    details.appendChild(table);
    if (info.findings && info.findings.length) {
      var f = document.createElement("ul"); f.className = "findings";
      info.findings.forEach(function (t) { var li = document.createElement("li"); li.textContent = t; f.appendChild(li); });
      details.appendChild(f);
    }
    if (byId[id]) {
      var hint = document.createElement("div"); hint.className = "hint";
      hint.textContent = open.has(id) ? "click the block's frame to collapse it" : "click to expand";
      details.appendChild(hint);
    }
    details.hidden = false;
    details.setAttribute("data-for", id);
    var x = ev.clientX + 16, y = ev.clientY + 16;
    var w = details.offsetWidth, hh = details.offsetHeight;
    if (x + w > window.innerWidth - 8) x = Math.max(8, ev.clientX - w - 16);
    if (y + hh > window.innerHeight - 8) y = Math.max(8, window.innerHeight - hh - 8);
    details.style.left = x + "px";
    details.style.top = y + "px";
  }

  function hideDetails() { details.hidden = true; details.removeAttribute("data-for"); }

  canvas.addEventListener("mousemove", function (e) {
    if (drag && drag.moved) { hideDetails(); return; }
    var g = e.target.closest("g.node, g.cluster");
    if (g && (nodes[g.id] || byId[g.id])) showDetails(g.id, e); else hideDetails();
  });
  canvas.addEventListener("mouseleave", hideDetails);

  // ------------------------------------------------------------------ toolbar
  function button(id, fn) { document.getElementById(id).addEventListener("click", fn); }
  button("zoom-in", function () { zoomAt(1 / 1.25, canvas.clientWidth / 2, canvas.clientHeight / 2); });
  button("zoom-out", function () { zoomAt(1.25, canvas.clientWidth / 2, canvas.clientHeight / 2); });
  button("fit", function () { fit(false); });
  button("fit-width", function () { fit(true); });
  button("expand-all", function () { model.scopes.forEach(function (s) { open.add(s.id); }); relayout(null); });
  button("collapse-all", function () { open.clear(); relayout(null); });
  button("reset", function () { open = new Set(initialOpen); relayout(null); });

  // ------------------------------------------------------------------ start
  svg = canvas.querySelector("svg");
  prepare(svg);
  fit(true);
  document.body.setAttribute("data-open", Array.from(open).sort().join(" "));
  document.body.setAttribute("data-state", "ready");
  window.archdslViewer = {
    toggle: toggle,
    buildDot: buildDot,
    open: function () { return Array.from(open).sort(); },
    model: model
  };
  // Compile the layout engine in the background so the first click is quick.
  setTimeout(function () {
    try { vizReady = vizReady || Viz.instance(); } catch (err) { status.textContent = "layout engine unavailable: " + err; }
  }, 0);
})();

"""The plot of ``archdsl sweep --plot``: MACs against parameters, the Pareto front highlighted.

One layout (:func:`layout`) gives a list of drawing primitives in pixel coordinates; :func:`to_svg`
writes them as SVG text by hand (deterministic: fixed number formatting, no timestamps, no
plotting library) and :func:`to_png` draws the same primitives with Pillow, an optional package
(error E506 with the install command when it is missing).  Nothing here imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from ..diagnostics import Diagnostic, Loc
from .render import fmt_count

WIDTH, HEIGHT = 760, 500
LEFT, RIGHT, TOP, BOTTOM = 80, 30, 70, 60
FRONT_COLOR = "#D50000"
POINT_COLOR = "#546E7A"
GRID_COLOR = "#E0E0E0"
TEXT_COLOR = "#263238"
#: Above this many points only the front is labelled: labels of a dense cloud would hide it.
LABEL_ALL_UP_TO = 24
PNG_SCALE = 2
PILLOW_HINT = "pip install pillow (or write the plot as SVG, --plot OUT.svg, which needs nothing)"


@dataclass(frozen=True)
class Dot:
    """One point of the plot: its figures, its label and whether it is on the front."""

    params: int
    macs: int
    label: str
    front: bool


@dataclass(frozen=True)
class Line:
    """A straight segment."""

    x1: float
    y1: float
    x2: float
    y2: float
    color: str
    width: float = 1.0


@dataclass(frozen=True)
class Circle:
    """A point marker: filled with ``fill`` ("none" for a ring)."""

    x: float
    y: float
    r: float
    fill: str
    stroke: str


@dataclass(frozen=True)
class Text:
    """A text run; ``anchor`` is start, middle or end; ``rotate`` -90 writes it upwards."""

    x: float
    y: float
    text: str
    size: int = 11
    anchor: str = "start"
    color: str = TEXT_COLOR
    bold: bool = False
    rotate: int = 0


Primitive = Line | Circle | Text


class PlotError(Exception):
    """The plot cannot be written; ``diagnostic`` says why and how to fix it."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (1, 2 or 5 times a power of ten apart) covering [lo, hi]."""
    if hi <= lo:
        lo, hi = lo - 1, hi + 1
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    k = 0
    while first + k * step <= hi + step * 1e-9:
        ticks.append(first + k * step)
        k += 1
    if ticks[-1] < hi:
        ticks.append(ticks[-1] + step)
    return ticks


def _tick_text(v: float) -> str:
    return fmt_count(int(round(v)))


def layout(dots: Sequence[Dot], title: str, key: str = "") -> list[Primitive]:
    """The plot of ``dots`` as primitives: grid, axes, tick labels, front line, markers, labels.

    ``key`` says what the point labels are (``labels: width_mult, num_classes``)."""
    xs = nice_ticks(min(d.params for d in dots), max(d.params for d in dots))
    ys = nice_ticks(min(d.macs for d in dots), max(d.macs for d in dots))
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP

    def px(v: float) -> float:
        return x0 + (v - xs[0]) / (xs[-1] - xs[0]) * (x1 - x0)

    def py(v: float) -> float:
        return y0 - (v - ys[0]) / (ys[-1] - ys[0]) * (y0 - y1)

    out: list[Primitive] = [Text(WIDTH / 2, 24, title, 14, "middle", bold=True)]
    for t in xs:
        out += [Line(px(t), y0, px(t), y1, GRID_COLOR), Text(px(t), y0 + 18, _tick_text(t), 11, "middle")]
    for t in ys:
        out += [Line(x0, py(t), x1, py(t), GRID_COLOR), Text(x0 - 8, py(t) + 4, _tick_text(t), 11, "end")]
    out += [Line(x0, y0, x1, y0, TEXT_COLOR), Line(x0, y0, x0, y1, TEXT_COLOR),
            Text((x0 + x1) / 2, HEIGHT - 16, "parameters", 12, "middle"),
            Text(20, (y0 + y1) / 2, "MACs (eval)", 12, "middle", rotate=-90)]
    front = sorted((d for d in dots if d.front), key=lambda d: (d.params, d.macs))
    for a, b in zip(front, front[1:]):
        out.append(Line(px(a.params), py(a.macs), px(b.params), py(b.macs), FRONT_COLOR, 1.5))
    labelled = dots if len(dots) <= LABEL_ALL_UP_TO else front
    for d in sorted(dots, key=lambda d: d.front):  # the front drawn last, on top
        color = FRONT_COLOR if d.front else POINT_COLOR
        out.append(Circle(px(d.params), py(d.macs), 5 if d.front else 4, color if d.front else "none", color))
    placed: list[tuple[float, float, float, float]] = []
    for d in sorted(labelled, key=lambda d: (not d.front, d.params, d.macs)):  # the front's labels first
        x, y, anchor = _place(px(d.params), py(d.macs), d.label, (x0 + x1) / 2, placed)
        out.append(Text(x, y, d.label, 10, anchor, FRONT_COLOR if d.front else TEXT_COLOR, bold=d.front))
    legend = "● Pareto front (fewest params and MACs)   ○ other points" + (f"   {key}" if key else "")
    out.append(Text(WIDTH / 2, 44, legend, 10, "middle"))
    return out


#: Where a point's label may go, in order of preference: (dx, dy) from the point, to its right.
_SPOTS = ((8, -7), (8, 15), (8, -19), (8, 27), (8, -31), (8, 39))
#: Width of a character of the 10-pixel label font, for overlap tests (Arial averages about 0.55 em).
_CHAR = 6.0


def _place(x: float, y: float, label: str, middle: float,
           placed: list[tuple[float, float, float, float]]) -> tuple[float, float, str]:
    """A spot for ``label`` near (x, y) whose box overlaps no label placed so far (else the first
    spot); labels go right of points in the left half of the plot, left of them in the right half."""
    width, right = len(label) * _CHAR, x < middle
    anchor = "start" if right else "end"
    boxes = []
    for dx, dy in _SPOTS:
        lx = x + dx if right else x - dx - width
        box = (lx, y + dy - 10, lx + width, y + dy + 2)
        boxes.append((box, (x + dx if right else x - dx, y + dy)))
        if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
            placed.append(box)
            return (*boxes[-1][1], anchor)
    placed.append(boxes[0][0])
    return (*boxes[0][1], anchor)


def _n(v: float) -> str:
    """A coordinate with one decimal, without a trailing ``.0`` (deterministic text)."""
    text = f"{v:.1f}"
    return text[:-2] if text.endswith(".0") else text


def to_svg(prims: Sequence[Primitive]) -> str:
    """The primitives as a standalone SVG document (text escaped for XML)."""
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
           f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="Arial,Helvetica,Liberation Sans,sans-serif">',
           f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#FFFFFF"/>']
    for p in prims:
        if isinstance(p, Line):
            out.append(f'<line x1="{_n(p.x1)}" y1="{_n(p.y1)}" x2="{_n(p.x2)}" y2="{_n(p.y2)}" '
                       f'stroke="{p.color}" stroke-width="{_n(p.width)}"/>')
        elif isinstance(p, Circle):
            out.append(f'<circle cx="{_n(p.x)}" cy="{_n(p.y)}" r="{_n(p.r)}" fill="{p.fill}" '
                       f'stroke="{p.stroke}" stroke-width="1.5"/>')
        else:
            rot = f' transform="rotate({p.rotate} {_n(p.x)} {_n(p.y)})"' if p.rotate else ""
            weight = ' font-weight="bold"' if p.bold else ""
            out.append(f'<text x="{_n(p.x)}" y="{_n(p.y)}" font-size="{p.size}" text-anchor="{p.anchor}" '
                       f'fill="{p.color}"{weight}{rot}>{_xml_text(p.text)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _xml_text(text: str) -> str:
    """Text content for XML: markup escaped, characters XML 1.0 cannot hold dropped (a label comes
    from spec values, which may hold control characters)."""
    clean = "".join(ch for ch in text if ch in "\t\n" or (ord(ch) >= 0x20 and not 0xD800 <= ord(ch) <= 0xDFFF
                                                          and ch not in "\ufffe\uffff"))
    return escape(clean)


def pillow_problem(exc: BaseException | None = None) -> PlotError:
    """E506: ``--plot OUT.png`` without Pillow (or with one that does not import)."""
    what = "Pillow (PIL) is not installed" if exc is None or isinstance(exc, ModuleNotFoundError) else \
        f"Pillow cannot be imported: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    return PlotError(Diagnostic("E506", f"--plot OUT.png needs Pillow: {what}", Loc("<command line>", 1, 1),
                                hint=PILLOW_HINT))


def check_png() -> None:
    """Raise :class:`PlotError` (E506) now when a PNG could not be drawn, before any work is done."""
    try:
        from PIL import Image, ImageDraw, ImageFont  # noqa: F401
    except ImportError as exc:
        raise pillow_problem(exc) from None


def to_png(prims: Sequence[Primitive]) -> bytes:
    """The primitives drawn with Pillow at :data:`PNG_SCALE` times the SVG's size."""
    try:
        from PIL import Image, ImageDraw
    except ImportError as exc:
        raise pillow_problem(exc) from None
    import io

    s = PNG_SCALE
    img = Image.new("RGB", (WIDTH * s, HEIGHT * s), "#FFFFFF")
    draw = ImageDraw.Draw(img)
    for p in prims:
        if isinstance(p, Line):
            draw.line([(p.x1 * s, p.y1 * s), (p.x2 * s, p.y2 * s)], fill=p.color, width=max(1, round(p.width * s)))
        elif isinstance(p, Circle):
            box = [(p.x - p.r) * s, (p.y - p.r) * s, (p.x + p.r) * s, (p.y + p.r) * s]
            draw.ellipse(box, fill=None if p.fill == "none" else p.fill, outline=p.stroke, width=max(1, round(1.5 * s)))
        else:
            _png_text(img, draw, p, s)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _font(size: int, bold: bool):  # -> PIL.ImageFont.ImageFont
    """A TrueType font when Pillow finds one (DejaVu, Liberation), else Pillow's built-in one."""
    from PIL import ImageFont

    for name in (("DejaVuSans-Bold.ttf", "LiberationSans-Bold.ttf") if bold else
                 ("DejaVuSans.ttf", "LiberationSans-Regular.ttf")):
        for folder in ("", "/usr/share/fonts/truetype/dejavu/", "/usr/share/fonts/truetype/liberation/"):
            try:
                return ImageFont.truetype(folder + name, size)
            except OSError:
                continue
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow before 10.1: one bitmap size only
        return ImageFont.load_default()


def _png_text(img, draw, p: Text, s: int) -> None:
    """Draw one text run (anchored at its baseline, as SVG does); a rotated one via a rotated image."""
    from PIL import Image, ImageDraw

    font = _font(p.size * s, p.bold)
    anchor = {"start": "ls", "middle": "ms", "end": "rs"}[p.anchor]
    if not p.rotate:
        draw.text((p.x * s, p.y * s), p.text, fill=p.color, font=font, anchor=anchor)
        return
    left, top, right, bottom = draw.textbbox((0, 0), p.text, font=font, anchor="lt")
    label = Image.new("RGBA", (right - left + 2, bottom - top + 2), (255, 255, 255, 0))
    ImageDraw.Draw(label).text((1, 1), p.text, fill=p.color, font=font, anchor="lt")
    turned = label.rotate(-p.rotate, expand=True)
    img.paste(turned, (int(p.x * s - turned.width / 2), int(p.y * s - turned.height / 2)), turned)

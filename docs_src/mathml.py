"""Sphinx HTML math renderer that turns LaTeX into MathML at build time, so math shows offline without MathJax."""
import re

from docutils import nodes
from latex2mathml.converter import convert

_TEXT_ESCAPE = re.compile(r'\\text\{([^{}]*)\}')


def to_mathml(latex, display):
    "MathML for `latex`; `\\_` inside `\\text{}` becomes `_` (latex2mathml keeps the backslash)."
    latex = _TEXT_ESCAPE.sub(lambda m: r'\text{' + m.group(1).replace(r'\_', '_') + '}', latex)
    return convert(latex.strip(), display='block' if display else 'inline')


def visit_math(self, node):
    "Inline math."
    self.body.append(f'<span class="math">{to_mathml(node.astext(), False)}</span>')
    raise nodes.SkipNode


def visit_math_block(self, node):
    "Display math, with its equation number when it has one."
    number = f'<span class="eqno">({node["number"]})</span>' if node.get('number') else ''
    self.body.append(f'<div class="math">{number}{to_mathml(node.astext(), True)}</div>')
    raise nodes.SkipNode


def setup(app):
    app.add_html_math_renderer('mathml', (visit_math, None), (visit_math_block, None))
    return {'parallel_read_safe': True, 'parallel_write_safe': True}

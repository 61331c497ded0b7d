"""Sphinx extension: give every section the id Pandoc (and so Quarto) would give it, e.g. `#점곱-모델`, `#dotproduct`.

Docutils drops non-ASCII letters, so Korean headings would get `#id3`; nbdev's doc links expect Pandoc's ids.
"""
import re
import unicodedata


def pandoc_slug(title):
    "Pandoc's auto identifier: keep letters, digits, `_-.`; spaces to `-`; lower case; start at the first letter."
    text = ''.join(c for c in title if c.isalnum() or c in '_-. \n' or unicodedata.category(c).startswith('M'))
    text = re.sub(r'\s+', '-', text.strip()).lower()
    while text and not text[0].isalpha(): text = text[1:]
    return text or 'section'


def add_pandoc_ids(app, doctree):
    "Put the Pandoc id first on each section (the table of contents links to the first id)."
    from docutils import nodes
    taken = set()
    for section in doctree.findall(nodes.section):
        base = pandoc_slug(section[0].astext())
        slug, n = base, 0
        while slug in taken or doctree.ids.get(slug, section) is not section:
            n += 1
            slug = f'{base}-{n}'
        taken.add(slug)
        if slug in section['ids']: section['ids'].remove(slug)
        section['ids'].insert(0, slug)
        doctree.ids[slug] = section


def setup(app):
    app.connect('doctree-read', add_pandoc_ids, priority=100)
    return {'parallel_read_safe': True, 'parallel_write_safe': True}

"""Build the docs site offline: nbdev's `_proc/` notebooks -> Jupyter Book 1 (Sphinx + myst-nb) -> `_site/`.

Run through `tools/docs.sh`. Every notebook that nbdev processes becomes a page named like the Quarto site's
(`output-file` in its front matter), so links and nbdev's doc links work the same on both sites.
"""
import argparse
import ast
import importlib
import json
import posixpath
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from nbdev.config import get_config

sys.path.insert(0, str(Path(__file__).parent))
from anchors import pandoc_slug  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOCS_SRC = ROOT/'docs_src'
BOOK = ROOT/'_site_src'   # generated book sources (gitignored)
SITE = ROOT/'_site'       # the built site (gitignored)

# Sidebar parts: the folders of nbs/ in this order (a book each), then the notebooks at the top (the glossary).
PARTS = [('course', '강의'), ('reference', '라이브러리 참조'), ('', '용어집')]
API_PAGE = 'api'          # generated index of every exported name, listed last in the reference

CALLOUTS = ('note', 'tip', 'warning', 'important', 'caution')   # Quarto callout kinds; MyST has the same admonitions


def doc_url_prefix(cfg):
    "Absolute URL prefix nbdev writes into doc links, e.g. `https://user.github.io/repo/`."
    base = cfg.doc_baseurl.strip('/')
    return f"{cfg.doc_host.rstrip('/')}/{base + '/' if base else ''}"


def front_matter(cell):
    "The YAML front matter nbdev puts in a raw first cell, or `{}`."
    text = ''.join(cell['source']) if cell['cell_type'] == 'raw' else ''
    m = re.match(r'\s*---\n(.*?)\n---', text, re.S)
    return (yaml.safe_load(m.group(1)) or {}) if m else {}


def page_name(nb_path, fm):
    "Page on the site: the notebook's folder and the stem of nbdev's `output-file` (`course/10_data.ipynb` -> `course/data`)."
    stem = Path(fm.get('output-file', Path(nb_path).stem + '.html')).stem
    folder = Path(nb_path).parent.as_posix()
    return stem if folder in ('', '.') else f'{folder}/{stem}'


def relative(page, here):
    "The URL of `page` (a page id such as `reference/ratings`) from a page in folder `here`."
    return posixpath.relpath(page, here or '.')


def cell_options(source):
    "Split a code cell into its Quarto `#| key: value` options and the rest of the source."
    lines, opts = source.splitlines(), {}
    while lines and lines[0].startswith('#|'):
        key, _, val = lines.pop(0)[2:].partition(':')
        opts[key.strip()] = val.strip()
    return opts, '\n'.join(lines)


def fix_links(md, pages, prefix, here=''):
    "Point nbdev's absolute doc links and notebook links at the pages of this site, relative to folder `here`."
    md = re.sub(re.escape(prefix) + r'([^()\s#]+)\.html', lambda m: relative(m.group(1), here) + '.html', md)

    def nb_link(m):
        path = posixpath.normpath(posixpath.join(here, m.group(1)))
        return f"]({relative(pages.get(path, path[:-len('.ipynb')]), here)}.html{m.group(2) or ''})"
    return re.sub(r'\]\(([^()\s:]+?\.ipynb)(#[^()\s]*)?\)', nb_link, md)


def callout(m):
    "A Quarto callout block -> a MyST admonition (title from `title=` or a heading on its first line)."
    kind = m.group(1) if m.group(1) in CALLOUTS else 'note'
    title, body = re.search(r'title="([^"]*)"', m.group(2)), m.group(3).strip('\n')
    head = re.match(r'#+\s+(.*)\n?', body)
    if head: body = body[head.end():].strip('\n')
    text = title.group(1) if title else head.group(1) if head else None
    start = f':::{{admonition}} {text}\n:class: {kind}' if text else f':::{{{kind}}}'
    return f'{start}\n{body}\n:::'


def fix_markdown(md, pages, prefix, here=''):
    "Quarto/nbdev markdown -> MyST: callouts, link attributes, internal links."
    md = re.sub(r'^:::+\s*\{\.callout-(\w+)([^}]*)\}[ \t]*\n(.*?)^:::+[ \t]*$', callout, md, flags=re.M | re.S)
    md = re.sub(r'\[source\]\(([^()\s]+)\)\{[^}]*\}',
                r'<a class="nbdev-source" href="\1" target="_blank" rel="noopener">source</a>', md)
    md = re.sub(r'(\]\([^()\s]+\))\{[^}]*\}', r'\1', md)
    return fix_links(md, pages, prefix, here)


def show_doc_markdown(md, pages, prefix, here=''):
    "A show_doc output as page markdown, without the `---` rules that crash docutils (transitions)."
    md = '\n'.join(l for l in md.splitlines() if l.strip() != '---').strip()
    return fix_markdown(md, pages, prefix, here)


def md_cell(text):
    return {'cell_type': 'markdown', 'metadata': {}, 'source': text}


def number_cells(cells):
    "Give every cell a unique nbformat id (the book's cells are split and merged from `_proc`'s)."
    for i, c in enumerate(cells): c['id'] = f'c{i:04d}'
    return cells


def asis_markdown(cell):
    "The text/markdown outputs of an `output: asis` cell, joined."
    return '\n\n'.join(''.join(o['data']['text/markdown']) for o in cell.get('outputs', [])
                       if 'text/markdown' in o.get('data', {}))


def convert_code(cell, pages, prefix, here=''):
    "A `_proc` code cell -> the cells the book shows (show_doc becomes markdown; Quarto options become tags)."
    src = ''.join(cell['source'])
    opts, body = cell_options(src)
    echo, output = opts.get('echo', 'true'), opts.get('output', 'true')
    if opts.get('include') == 'false': return []
    if cell.get('has_sd') or (output == 'asis' and echo == 'false' and 'show_doc' in body):
        return [md_cell(show_doc_markdown(asis_markdown(cell), pages, prefix, here))]
    out = []
    if output == 'asis':
        md = asis_markdown(cell)
        if echo != 'false': out.append(code_cell(body, [], cell.get('execution_count')))
        return out + ([md_cell(fix_markdown(md, pages, prefix, here))] if md else [])
    tags = (['remove-input'] if echo == 'false' else []) + (['remove-output'] if output == 'false' else [])
    if opts.get('code-fold') == 'true': tags.append('hide-input')
    return [code_cell(body, cell.get('outputs', []), cell.get('execution_count'), tags)]


def code_cell(source, outputs, count, tags=()):
    meta = {'tags': list(tags)} if tags else {}
    return {'cell_type': 'code', 'metadata': meta, 'execution_count': count, 'outputs': outputs, 'source': source}


def convert_notebook(path, pages, prefix, rel=None):
    "A `_proc` notebook (at `rel` below `_proc`) -> (page, title, nbformat dict the book can read)."
    rel = Path(rel or path.name)
    here = rel.parent.as_posix().strip('.')
    nb = json.loads(path.read_text(encoding='utf-8'))
    cells = nb['cells']
    fm = front_matter(cells[0]) if cells else {}
    if fm: cells = cells[1:]
    title = fm.get('title', path.stem)
    head = f"# {title}" + (f"\n\n> {fm['description']}" if fm.get('description') else '')
    new = [md_cell(head)]
    for c in cells:
        src = ''.join(c['source'])
        if c['cell_type'] == 'markdown':
            if src.strip().startswith('<!-- WARNING: THIS FILE WAS AUTOGENERATED'): continue
            new.append(md_cell(fix_markdown(src, pages, prefix, here)))
        elif c['cell_type'] == 'code': new.extend(convert_code(c, pages, prefix, here))
    kernel = nb['metadata'].get('kernelspec', {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'})
    meta = {'kernelspec': kernel, 'language_info': {'name': 'python'}}
    return page_name(rel, fm), title, {'cells': number_cells(new), 'metadata': meta, 'nbformat': 4, 'nbformat_minor': 5}


def exported_modules():
    "`collab_lessons` modules that define `__all__`, in book order: (notebook path below nbs/, module, source)."
    lib = ROOT/'collab_lessons'
    mods = []
    for f in sorted(lib.glob('[!_]*.py')):
        src = f.read_text(encoding='utf-8')
        m = re.search(r'File to edit: \.\./nbs/(\S+?\.ipynb)', src)
        if '__all__' in src and m: mods.append((m.group(1), f.stem, src))
    order = [folder for folder, _ in PARTS]
    return sorted(mods, key=lambda m: (order.index(posixpath.dirname(m[0])), m[0]))


def definitions(src):
    "The top-level statement defining each name in a module's source."
    defs = {}
    for node in ast.parse(src).body:
        targets = [node.name] if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else \
            [t.id for t in getattr(node, 'targets', []) if isinstance(t, ast.Name)]
        for t in targets: defs.setdefault(t, node)
    return defs


def api_entry(mod, name, node, page, page_ids, src, cfg):
    "Markdown for one exported name: nbdev's show_doc for functions and classes, the definition for the rest."
    from nbdev.showdoc import show_doc
    obj = getattr(mod, name)
    anchor = pandoc_slug(name)
    line = node.lineno if node else 1
    src_url = f"{cfg.git_url}/blob/{cfg.branch}/{mod.__name__.replace('.', '/')}.py#L{line}"
    where = f"{page}.html#{anchor}" if anchor in page_ids else f"{page}.html"
    book = '강의에서 보기' if page.startswith('course/') else '참조에서 보기'
    if callable(obj) and getattr(obj, '__module__', None) == mod.__name__:
        md = show_doc(obj)._repr_markdown_()
        md = re.sub(r'^\[source\]\([^)]*\)\{[^}]*\}\s*$', '', md, flags=re.M)
    else:
        code = (ast.get_source_segment(src, node) or name).splitlines() if node else [name]
        code = '\n'.join(code[:12] + (['    ...'] if len(code) > 12 else []))
        md = f"### {name}\n\n```python\n{code}\n```\n\n*A `{type(obj).__name__}`.*"
    md = show_doc_markdown(md, {}, '')
    return f"{md}\n\n[{book}]({where}) <a class=\"nbdev-source\" href=\"{src_url}\">source</a>\n"


def api_page(pages_by_nb, titles, ids_by_page, cfg):
    "MyST markdown for the API reference: every name in every module's `__all__`."
    sys.path.insert(0, str(ROOT))
    parts = ['# 이름 찾아보기\n\n> Every name exported by the `collab_lessons` library, with its signature and docstring.\n\n'
             '`collab_lessons` 라이브러리가 내보내는 모든 이름이야. **강의에서 보기**나 **참조에서 보기**를 누르면 '
             '그 이름을 만든 노트북의 설명으로 가.\n']
    for nb_name, stem, src in exported_modules():
        mod = importlib.import_module(f'collab_lessons.{stem}')
        page = pages_by_nb.get(nb_name, stem)
        doc = (mod.__doc__ or '').split('\n\n')[0].strip()
        parts.append(f"## `collab_lessons.{stem}`\n\n{doc}\n\n노트북: [{titles.get(page, page)}]({page}.html)\n")
        defs = definitions(src)
        for name in mod.__all__:
            parts.append(api_entry(mod, name, defs.get(name), page, ids_by_page.get(page, set()), src, cfg))
    return '\n'.join(parts)


def heading_ids(nb):
    "Ids the page will have for its show_doc headings (Pandoc's, as docs_src/anchors.py gives them)."
    heads = [m for c in nb['cells'] if c['cell_type'] == 'markdown'
             for m in re.findall(r'^#{3,5} `?([\w.]+)`?\s*$', c['source'], re.M)]
    return {pandoc_slug(h) for h in heads}


def toc(entries):
    "Jupyter Book `_toc.yml`: index as root, then a part per folder of PARTS in file order; the API index ends the reference."
    parts = []
    for folder, caption in PARTS:
        chapters = [{'file': name} for nb, name in sorted(entries)
                    if Path(nb).parent.as_posix().strip('.') == folder and name != 'index']
        if folder == 'reference': chapters.append({'file': API_PAGE})
        if chapters: parts.append({'caption': caption, 'chapters': chapters})
    return {'format': 'jb-book', 'root': 'index', 'parts': parts}


def prepare(proc):
    "Write the book sources into BOOK from the `_proc` notebooks."
    cfg = get_config(ROOT)
    prefix = doc_url_prefix(cfg)
    nbs = sorted(p.relative_to(proc) for p in proc.rglob('*.ipynb')
                 if not any(part.startswith(('_', '.')) for part in p.relative_to(proc).parts))
    if Path('index.ipynb') not in nbs: sys.exit(f"No index.ipynb in {proc}: run nbdev's processing first.")
    pages = {p.as_posix(): page_name(p, front_matter(json.loads((proc/p).read_text(encoding='utf-8'))['cells'][0]))
             for p in nbs}
    if len(set(pages.values())) != len(pages):
        sys.exit(f"Two notebooks map to the same page name: {pages}")
    shutil.rmtree(BOOK, ignore_errors=True)
    (BOOK/'_static').mkdir(parents=True)
    entries, ids, titles = [], {}, {}
    for p in nbs:
        name, titles[name], nb = convert_notebook(proc/p, pages, prefix, p)
        (BOOK/f'{name}.ipynb').parent.mkdir(parents=True, exist_ok=True)
        (BOOK/f'{name}.ipynb').write_text(json.dumps(nb, ensure_ascii=False, indent=1), encoding='utf-8')
        entries.append((p, name))
        ids[name] = heading_ids(nb)
    (BOOK/f'{API_PAGE}.md').write_text(api_page(pages, titles, ids, cfg), encoding='utf-8')
    (BOOK/'_toc.yml').write_text(yaml.safe_dump(toc(entries), allow_unicode=True, sort_keys=False), encoding='utf-8')
    shutil.copy(DOCS_SRC/'_config.yml', BOOK/'_config.yml')
    shutil.copytree(DOCS_SRC/'_templates', BOOK/'_templates')
    for css in [ROOT/'nbs'/'styles.css', DOCS_SRC/'site.css']: shutil.copy(css, BOOK/'_static'/css.name)
    copy_assets(proc)
    return entries


def copy_assets(proc):
    "Images and other files the notebooks link to (nbdev copies them from nbs/ into `_proc/`)."
    for f in proc.rglob('*'):
        rel = f.relative_to(proc)
        if f.is_dir() or f.suffix in ('.ipynb', '.yml', '.yaml') or any(p[0] in '_.' for p in rel.parts): continue
        (BOOK/rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, BOOK/rel)


def build():
    "Run Jupyter Book on BOOK, warnings as errors, and move the HTML to SITE."
    jb = Path(sys.executable).parent/'jupyter-book'
    subprocess.run([str(jb), 'build', str(BOOK), '--all', '--warningiserror', '--keep-going', '--quiet'], check=True)
    shutil.rmtree(SITE, ignore_errors=True)
    shutil.move(BOOK/'_build'/'html', SITE)
    (SITE/'.nojekyll').touch()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--proc', default=str(ROOT/'_proc'), help="folder of nbdev-processed notebooks")
    args = ap.parse_args()
    entries = prepare(Path(args.proc))
    build()
    print(f"Built {len(entries) + 1} pages into {SITE}/ (open {SITE}/index.html)")


if __name__ == '__main__':
    main()

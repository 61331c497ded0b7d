"""Make the lessons open unmodified in JupyterLab.

JupyterLab writes the running kernel's `kernelspec` and `language_info` into a notebook's metadata as soon as the
kernel starts, and marks the tab modified when they differ from the file's. `nbdev-clean` always stores
`display_name` = the kernel name (`python3`) and, with `allowed_metadata_keys = ["language_info"]` in
`[tool.nbdev]`, keeps `language_info`. So:

    python tools/lab_kernel.py install [--prefix DIR]   # kernelspec `python3` whose display name is `python3`
    python tools/lab_kernel.py stamp nbs/*/*.ipynb      # store this Python's kernelspec and language_info

`install` goes into the virtual environment (or DIR/share/jupyter, for JUPYTER_PATH); `tools/jupyterlab.sh` runs it.
"""
import argparse
import json
import sys
from pathlib import Path

KERNEL = 'python3'
KERNELSPEC = {'display_name': KERNEL, 'language': 'python', 'name': KERNEL}


def language_info():
    "What ipykernel reports for this Python (JupyterLab stores exactly this)."
    from ipykernel.ipkernel import IPythonKernel
    return dict(IPythonKernel.language_info)


def stamp(path):
    "Store the kernelspec and language_info JupyterLab would write; True when the file changed."
    path = Path(path)
    try: nb = json.loads(path.read_text(encoding='utf-8'))
    except (OSError, ValueError) as e: sys.exit(f"{path}: not a readable notebook ({e}).")
    meta = nb.setdefault('metadata', {})
    if meta.get('kernelspec') == KERNELSPEC and meta.get('language_info') == language_info(): return False
    meta['kernelspec'], meta['language_info'] = dict(KERNELSPEC), language_info()
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')
    return True


def install(prefix=None):
    "Install the kernelspec under `prefix` (default: this environment); the folder JupyterLab reads it from."
    from ipykernel.kernelspec import install as ipk_install
    return ipk_install(kernel_name=KERNEL, display_name=KERNEL, prefix=prefix or sys.prefix)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest='cmd', required=True)
    ins = sub.add_parser('install', help="install the python3 kernelspec with display name python3")
    ins.add_argument('--prefix', help="install under DIR/share/jupyter/kernels (default: this environment)")
    st = sub.add_parser('stamp', help="store kernelspec and language_info in notebooks")
    st.add_argument('notebooks', nargs='+')
    args = ap.parse_args(argv)
    if args.cmd == 'install': print(f"Installed the {KERNEL} kernelspec in {install(args.prefix)}")
    else:
        changed = [nb for nb in args.notebooks if stamp(nb)]
        print(f"Stamped {len(changed)} of {len(args.notebooks)} notebooks with {KERNEL} / Python {language_info()['version']}")


if __name__ == '__main__':
    main()

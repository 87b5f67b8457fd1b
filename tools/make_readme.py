"""Write README.md from nbs/index.ipynb (Quarto, and so `nbdev_readme`, is not available here).

README.md is the markdown cells of the index notebook, in order. `tests/test_readme.py` fails when
the two drift apart: edit the notebook, then run `python tools/make_readme.py`.
"""
import json, pathlib, sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

def render(nb_path=ROOT/'nbs'/'index.ipynb') -> str:
    nb = json.loads(pathlib.Path(nb_path).read_text(encoding='utf-8'))
    parts = [''.join(c['source']).strip() for c in nb['cells'] if c['cell_type'] == 'markdown']
    head = '<!-- generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file -->\n\n'
    return head + '\n\n'.join(p for p in parts if p) + '\n'

if __name__ == '__main__':
    out = ROOT/'README.md'
    out.write_text(render(), encoding='utf-8')
    print(f'wrote {out}', file=sys.stderr)

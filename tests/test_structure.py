"""The library's shape: small functions, one owner per concern, no probing of its own modules.

These read the generated modules in `facecloak/` (what users import) with `ast`, so each rule names the
file and line that breaks it.
"""
import ast, pathlib, re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PKG = ROOT/'facecloak'
MODULES = sorted(p for p in PKG.glob('*.py') if p.name not in ('__init__.py', '_modidx.py'))
MAX_LINES = 60


def _tree(p): return ast.parse(p.read_text(encoding='utf-8'), filename=str(p))


def long_functions(path, limit=MAX_LINES):
    "(name, line, length) of every function or method in `path` longer than `limit` lines."
    return [(n.name, n.lineno, n.end_lineno - n.lineno + 1) for n in ast.walk(_tree(path))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > limit]


def test_the_rule_catches_a_long_function(tmp_path):
    f = tmp_path/'m.py'
    f.write_text('def short():\n    return 1\n\ndef long():\n' + '    x = 1\n' * 70 + '    return x\n')
    assert [n for n, _, _ in long_functions(f)] == ['long']


@pytest.mark.parametrize('path', MODULES, ids=lambda p: p.name)
def test_no_function_over_60_lines(path):
    assert not long_functions(path), f'{path.name}: functions over {MAX_LINES} lines: {long_functions(path)}'


def private_uses_across_modules(path):
    "`module._name` attribute reads of another facecloak module (imported as a module) in `path`."
    tree, aliases, out = _tree(path), {}, []
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and n.module and (n.module == 'facecloak' or n.level == 1 and n.module is None):
            for a in n.names: aliases[a.asname or a.name] = a.name
        if isinstance(n, ast.Import):
            for a in n.names:
                if a.name.startswith('facecloak.'): aliases[a.asname or a.name] = a.name.split('.')[-1]
        if isinstance(n, ast.ImportFrom) and n.module and n.module.lstrip('.').startswith(('facecloak.',)) or \
           isinstance(n, ast.ImportFrom) and n.level == 1 and n.module:
            out += [(a.name, n.lineno) for a in n.names if a.name.startswith('_') and not a.name.startswith('__')]
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in aliases \
           and n.attr.startswith('_') and not n.attr.startswith('__'):
            out.append((f'{n.value.id}.{n.attr}', n.lineno))
    return out


def test_the_private_rule_catches_both_forms(tmp_path):
    f = tmp_path/'m.py'
    f.write_text('from facecloak import align as A\nfrom facecloak.cloak import _select_face\nA._finish(1)\nA.detect(2)\n')
    assert sorted(n for n, _ in private_uses_across_modules(f)) == ['A._finish', '_select_face']


@pytest.mark.parametrize('path', MODULES, ids=lambda p: p.name)
def test_no_private_name_used_across_modules(path):
    assert not private_uses_across_modules(path), f'{path.name}: {private_uses_across_modules(path)}'


PROBES = [r"find_spec\(\s*['\"]facecloak", r"hasattr\(\s*(assets|align|models|cloak|synth|saliency|evaluate)\s*,",
          r"inspect\.signature\("]


@pytest.mark.parametrize('path', MODULES, ids=lambda p: p.name)
def test_no_probing_of_the_projects_own_modules(path):
    text = path.read_text(encoding='utf-8')
    hits = [(pat, text[:m.start()].count('\n') + 1) for pat in PROBES for m in re.finditer(pat, text)]
    tree = _tree(path)
    for n in ast.walk(tree):     # try: import facecloak.x  except ImportError
        if isinstance(n, ast.Try) and any(isinstance(h.type, ast.Name) and h.type.id in ('ImportError', 'ModuleNotFoundError')
                                          for h in n.handlers):
            for s in n.body:
                if isinstance(s, (ast.Import, ast.ImportFrom)) and ('facecloak' in ast.unparse(s) or getattr(s, 'level', 0)):
                    hits.append(('try-import of facecloak', s.lineno))
    assert not hits, f'{path.name}: {hits}'


SHARED = {'default_device': 'core', 'gaussian_blur': 'core', 'jpeg_like': 'core', 'atomic_write': 'core',
          'similarity_transform': 'align', 'open_image': 'align', 'load_photo': 'align', 'warp_affine': 'align'}


@pytest.mark.parametrize('path', MODULES, ids=lambda p: p.name)
def test_shared_helpers_are_defined_once(path):
    "Device choice, blur, JPEG, atomic writes, the similarity fit and the photo opener live in one module each."
    defs = {n.name for n in _tree(path).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    wrong = [(name, owner) for name, owner in SHARED.items() if name in defs and path.stem != owner]
    assert not wrong, f'{path.name} defines helpers owned elsewhere: {wrong}'
    text = path.read_text(encoding='utf-8')
    if path.stem != 'core':
        assert 'tempfile.mkstemp' not in text, f'{path.name}: write files with facecloak.core.atomic_write'
        assert "'cuda' if torch.cuda.is_available()" not in text, f'{path.name}: use facecloak.core.default_device'
    if path.stem != 'align':
        assert '38.2946' not in text, f'{path.name}: the ArcFace template lives in facecloak.align'

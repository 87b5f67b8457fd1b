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


MAX_MODULE_LINES = 800


@pytest.mark.parametrize('path', MODULES, ids=lambda p: p.name)
def test_no_module_over_800_lines(path):
    n = len(path.read_text(encoding='utf-8').splitlines())
    assert n <= MAX_MODULE_LINES, f'{path.name} is {n} lines (at most {MAX_MODULE_LINES}): give a concern its own module'


def imports_of(path, package='facecloak') -> set:
    "The `package` modules `path` imports, at any depth of its code (a lazy import inside a function counts too)."
    out, here = set(), f'{package}.{path.stem}'
    for n in ast.walk(_tree(path)):
        if isinstance(n, ast.Import):
            out |= {a.name for a in n.names if a.name.startswith(package + '.')}
        elif isinstance(n, ast.ImportFrom):
            base = n.module or ''
            if n.level: base = package + ('.' + base if base else '')
            if base == package: out |= {f'{package}.{a.name}' for a in n.names}      # from facecloak import align
            elif base.startswith(package + '.'): out.add(base)
    return {m for m in out if m != here}


def import_cycles(paths, package='facecloak') -> list:
    "Every import circle among the modules `paths` (as lists of module names), found by depth-first search."
    graph = {f'{package}.{p.stem}': {m for m in imports_of(p, package)} for p in paths}
    cycles, state = [], {}
    def visit(m, stack):
        state[m] = 1; stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1: cycles.append(stack[stack.index(n):] + [n])
            elif n in graph and not state.get(n): visit(n, stack)
        state[m] = 2; stack.pop()
    for m in sorted(graph):
        if not state.get(m): visit(m, [])
    return cycles


def test_the_cycle_rule_catches_a_circle(tmp_path):
    pkg = tmp_path/'pkg'; pkg.mkdir()
    (pkg/'a.py').write_text('from pkg.b import f\n')
    (pkg/'b.py').write_text('def f():\n    from pkg import c\n')          # lazy, inside a function
    (pkg/'c.py').write_text('from . import a\n')
    (pkg/'d.py').write_text('import pkg.a\n')
    assert import_cycles(sorted(pkg.glob('*.py')), 'pkg') == [['pkg.a', 'pkg.b', 'pkg.c', 'pkg.a']]
    (pkg/'c.py').write_text('import os\n')
    assert import_cycles(sorted(pkg.glob('*.py')), 'pkg') == []


def test_no_import_circle():
    "No module of the package imports, directly or through others, a module that imports it (lazy imports included)."
    paths = [p for p in PKG.glob('*.py') if p.name != '_modidx.py']
    assert not import_cycles(paths), f'import circles: {import_cycles(paths)}'


def test_cloak_front_door_hands_on_the_public_names():
    "`from facecloak.cloak import learn_mask, Mask, CloakConfig` (and the other public names) keeps working."
    import facecloak.cloak as C
    for name in ('learn_mask', 'Mask', 'CloakConfig', 'make_config', 'preset', 'PRESETS', 'learn_prior', 'load_prior',
                 'random_mask', 'LOSS_TERMS', 'TRANSFORMS', 'PARAMETERISATIONS', 'OPTIMIZERS', 'LEARN_HOOKS', 'MIN_FACE'):
        assert hasattr(C, name), name
    for method in ('apply', 'apply_aligned', 'add_to', 'region', 'photo_delta', 'select_face', 'matrix', 'refined',
                   'with_options', 'save', 'load', 'apply_video', 'on_face', 'reference_for'):
        assert callable(getattr(C.Mask, method, None)), method

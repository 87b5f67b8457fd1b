"""README.md is generated from nbs/index.ipynb and must say what CI does."""
import importlib.util, pathlib, re

ROOT = pathlib.Path(__file__).resolve().parent.parent

def _make_readme():
    spec = importlib.util.spec_from_file_location('make_readme', ROOT/'tools'/'make_readme.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

def test_readme_in_step_with_index():
    assert (ROOT/'README.md').read_text(encoding='utf-8') == _make_readme().render(), \
        'README.md differs from nbs/index.ipynb: run `python tools/make_readme.py`'

def _sh_blocks(text):
    return [b.strip() for b in re.findall(r'```sh\n(.*?)```', text, flags=re.S)]

def test_readme_commands_are_what_ci_runs():
    readme = (ROOT/'README.md').read_text(encoding='utf-8')
    ci = (ROOT/'.ci'/'run').read_text(encoding='utf-8')
    install, demo, test = _sh_blocks(readme)[:3]
    assert 'pip install' in install and install in ci, 'CI must install exactly as README says'
    assert 'facecloak demo' in demo
    # the test command, minus the env assignments CI makes itself
    test_cmd = re.sub(r'^(\w+=\S+\s+)+', '', test)
    assert test_cmd in ci, f'CI must run README test command {test_cmd!r}'

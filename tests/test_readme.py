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
    # the test command, minus the env assignments CI makes itself: `VAR=.. VAR=.. bash -c '<command>'`
    m = re.fullmatch(r"((?:\w+=\S+\s+)+)bash -c '(.+)'", test)
    assert m, f'README test command should set the data dirs for the whole command: {test!r}'
    assert 'FACECLOAK_MODEL_DIR' in m[1] and 'FACECLOAK_DATA_DIR' in m[1]
    assert m[2] in ci, f'CI must run README test command {m[2]!r}'

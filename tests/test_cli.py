"""The command line and the safety of files: bad inputs, never overwriting, atomic writes, EXIF, names.

These run the real `facecloak` entry point in process (`facecloak.cli.main`) on real photos from the
shared data folder (FACECLOAK_DATA_DIR: CI always has it), with a random mask (no learning), so they
take seconds. The tiny evaluation run of `facecloak eval --tiny` is in tests/test_evaluate.py.
"""
import hashlib, io, os, re, shutil, subprocess, sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facecloak import assets
from facecloak.cli import main, EXIT_OK, EXIT_SKIPPED, EXIT_USAGE, EXIT_NOTHING
from facecloak.cloak import DEFAULT_REFINE
from facecloak.testing import bomb_png, lfw_photo

EPS = 8 / 255          # the budget of conftest's masks


PERSON = 'Colin_Powell'  # whose photos the tests protect (`lfw_photo` stands another person in when a partial LFW lacks him)


def _digest(p): return hashlib.sha256(Path(p).read_bytes()).hexdigest()


@pytest.fixture(scope='module')
def mask_file(sign_mask_file): return sign_mask_file          # conftest's random ±ε mask, saved


@pytest.fixture()
def batch(tmp_path):
    "An input folder with good photos and every kind of bad one."
    d = tmp_path/'in'; (d/'sub').mkdir(parents=True)
    good = lfw_photo(PERSON)
    shutil.copy(good, d/'good.jpg')
    shutil.copy(good, d/'sub'/'Zoë 日本 photo.jpg')                       # unicode name, sub-folder
    (d/'not_an_image.jpg').write_text('hello, I am text')
    data = good.read_bytes(); (d/'truncated.jpg').write_bytes(data[:len(data) // 3])
    (d/'empty.png').write_bytes(b'')
    (d/'bomb.png').write_bytes(bomb_png(40000, 40000))
    frames = [Image.new('RGB', (64, 64), c) for c in ('red', 'blue')]
    frames[0].save(d/'animated.gif', save_all=True, append_images=frames[1:], duration=100, loop=0)
    Image.new('RGB', (200, 200), (120, 130, 140)).save(d/'no_face.png')
    Image.open(good).resize((24, 24)).save(d/'tiny_face.png')
    return d


def test_apply_batch_goes_on_past_bad_inputs(batch, mask_file, tmp_path, capsys):
    out = tmp_path/'out'
    before = {p: _digest(p) for p in batch.rglob('*') if p.is_file()}
    code = main(['apply', str(mask_file), str(batch), str(tmp_path/'missing.jpg'), '-o', str(out), '-q'])
    err = capsys.readouterr()
    assert code == EXIT_SKIPPED
    # the good photos are protected, under their (sanitised) names, sub-folders kept
    assert (out/'good.jpg').exists() and (out/'sub'/'Zoë 日本 photo.jpg').exists()
    # every bad input is reported with a reason naming the problem
    reasons = {l.split(': ', 1)[0].rsplit('/', 1)[-1]: l for l in err.err.splitlines() if l.startswith('skipped ')}
    expect = {'not_an_image.jpg': 'not an image', 'truncated.jpg': 'truncated', 'empty.png': 'empty',
              'bomb.png': 'too large', 'animated.gif': 'animated', 'no_face.png': 'no face',
              'tiny_face.png': 'face', 'missing.jpg': 'no such file'}
    for name, word in expect.items():
        line = reasons.get(name, '')
        assert word in line.lower(), f'{name}: expected a reason with {word!r}, got {line!r}'
    assert '2 protected' in err.out and '8 skipped' in err.out
    # inputs untouched, and no temporary files anywhere
    assert before == {p: _digest(p) for p in batch.rglob('*') if p.is_file()}
    assert not [p for p in out.rglob('*') if p.name.startswith('.') or p.suffix == '.part']


def test_apply_never_overwrites_inputs_or_outputs(mask_file, tmp_path):
    d = tmp_path/'photos'; d.mkdir()
    shutil.copy(lfw_photo(PERSON), d/'a.jpg'); h = _digest(d/'a.jpg')
    # output folder == input folder: the output would be the input itself -> refused, input intact
    assert main(['apply', str(mask_file), str(d), '-o', str(d), '-q']) == EXIT_SKIPPED
    assert _digest(d/'a.jpg') == h and len(list(d.iterdir())) == 1
    out = tmp_path/'out'
    assert main(['apply', str(mask_file), str(d/'a.jpg'), '-o', str(out), '-q']) == EXIT_OK
    first = _digest(out/'a.jpg')
    # a second run does not replace an existing output unless asked
    assert main(['apply', str(mask_file), str(d/'a.jpg'), '-o', str(out), '-q']) == EXIT_SKIPPED
    assert main(['apply', str(mask_file), str(d/'a.jpg'), '-o', str(out), '-q', '--overwrite']) == EXIT_OK
    assert _digest(out/'a.jpg') == first     # deterministic


def test_apply_keeps_resolution_orientation_profile_and_strips_gps(mask_file, tmp_path):
    src = Image.open(lfw_photo(PERSON)).convert('RGB').crop((0, 20, 250, 230))    # 250 x 210, upright
    ex = Image.Exif(); ex[0x0112] = 6; ex[0x010F] = 'PhoneMaker'; ex.get_ifd(0x8825)[2] = (48.0, 51.0, 30.0)
    icc = b'\x00' * 8 + b'fake-icc-profile'
    p = tmp_path/'rot.jpg'; src.transpose(Image.ROTATE_90).save(p, 'JPEG', quality=95, exif=ex.tobytes(), icc_profile=icc)
    out = tmp_path/'out'
    assert main(['apply', str(mask_file), str(p), '-o', str(out), '-q']) == EXIT_OK
    r = Image.open(out/'rot.jpg')
    assert r.size == src.size          # stored sideways with orientation 6: written upright
    assert 0x0112 not in r.getexif() and 0x010F not in r.getexif() and not r.getexif().get_ifd(0x8825)
    assert r.info.get('icc_profile') == icc
    assert main(['apply', str(mask_file), str(p), '-o', str(tmp_path/'out2'), '-q', '--format', 'png']) == EXIT_OK
    assert Image.open(tmp_path/'out2'/'rot.png').size == r.size


def test_apply_bad_mask_and_empty_inputs(tmp_path, capsys):
    d = tmp_path/'empty'; d.mkdir()
    bad = tmp_path/'bad.mask'; bad.write_bytes(b'\x00' * 100)
    assert main(['apply', str(bad), str(d), '-o', str(tmp_path/'o')]) == EXIT_USAGE
    assert 'bad.mask' in capsys.readouterr().err


def test_png_output_is_within_epsilon_and_only_on_the_face(mask_file, tmp_path):
    src = lfw_photo(PERSON); out = tmp_path/'o'
    assert main(['apply', str(mask_file), str(src), '-o', str(out), '--format', 'png', '-q']) == EXIT_OK
    a = np.asarray(Image.open(src).convert('RGB')).astype(int); b = np.asarray(Image.open(out/(src.stem + '.png'))).astype(int)
    diff = np.abs(a - b)
    assert diff.max() <= round(EPS * 255) + 1 and diff.max() > 0
    from facecloak.align import detect
    x1, y1, x2, y2 = detect(Image.open(src))[0].box
    w, h = x2 - x1, y2 - y1
    outside = np.ones(diff.shape[:2], bool)
    outside[max(0, int(y1 - h)):int(y2 + h), max(0, int(x1 - w)):int(x2 + w)] = False
    assert diff[outside].max() == 0


def test_exit_codes_for_usage_errors(tmp_path, capsys):
    assert main(['apply', 'nope.mask', str(tmp_path), '-o', str(tmp_path/'o')]) == EXIT_USAGE
    d = tmp_path/'d'; d.mkdir(); (d/'notes.txt').write_text('x')
    from facecloak.cloak import random_mask
    m = tmp_path/'m.mask'; random_mask(epsilon=EPS).save(m)
    assert main(['apply', str(m), str(d), '-o', str(tmp_path/'o')]) == EXIT_NOTHING
    assert main(['learn', 'x.jpg', '-o', str(tmp_path/'m2.mask'), '--epsilon', '0']) == EXIT_USAGE
    with pytest.raises(SystemExit) as e: main(['apply'])
    assert e.value.code == 2


# ---------------------------------------------------------------------------------------------
# Property-based tests of apply: any size, any mode, face anywhere
# ---------------------------------------------------------------------------------------------
from hypothesis import given, settings, strategies as st, HealthCheck

MODES = ['RGB', 'RGBA', 'L', 'LA', 'P', 'CMYK', 'I;16']
BOUND = int(np.ceil(EPS * 255))          # 8 grey levels after 8-bit rounding


@pytest.fixture(scope='module')
def face_photo():
    "A real LFW photo (RGB) and its five detected landmarks (detected once)."
    from facecloak.align import detect
    im = Image.open(lfw_photo(PERSON)).convert('RGB')
    return im, detect(im)[0].landmarks


def _scene(photo, lm, w, h, scale, fx, fy, mode, seed):
    "The photo scaled by `scale` and pasted at a random place on a noisy w x h canvas, in `mode`; the landmarks moved along."
    rng = np.random.default_rng(seed)
    s = min(scale, min(w, h) / photo.width)                   # the scaled photo fits on the canvas
    side = max(8, int(photo.width * s)); k = side / photo.width
    ox, oy = int(fx * (w - side)), int(fy * (h - side))
    canvas = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    canvas.paste(photo.resize((side, side), Image.Resampling.BILINEAR), (ox, oy))
    lm = (np.asarray(lm, np.float64) + 0.5) * k - 0.5 + [ox, oy]
    if mode in ('RGBA', 'LA'):
        im = canvas.convert(mode); im.putalpha(Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)))
    elif mode == 'P': im = canvas.convert('P', palette=Image.Palette.ADAPTIVE, colors=200)
    elif mode == 'CMYK':
        c = np.asarray(canvas.convert('CMYK')).copy(); c[..., 3] = rng.integers(0, 40, (h, w)); im = Image.fromarray(c, 'CMYK')
    elif mode == 'I;16': im = Image.fromarray(np.asarray(canvas.convert('L')).astype(np.uint16) * 257 + rng.integers(0, 257, (h, w)).astype(np.uint16))
    else: im = canvas.convert(mode)
    return im, lm.astype(np.float32)


def _region(mask, lm, size_hw):
    from facecloak import align as A
    M = A.similarity_transform(lm, A.template(mask.template, mask.size))
    return mask.region(M, size_hw)


@pytest.mark.parametrize('mode', MODES)          # every mode, each on random sizes and placements
@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(w=st.integers(160, 700), h=st.integers(160, 700), scale=st.floats(0.6, 2.5), fx=st.floats(0, 1), fy=st.floats(0, 1),
       seed=st.integers(0, 2**16))
def test_apply_property_size_mode_region_and_bound(face_photo, sign_mask, w, h, scale, fx, fy, mode, seed):
    from facecloak.align import Face
    im, lm = _scene(*face_photo, w, h, scale, fx, fy, mode, seed)
    out = sign_mask.apply(im, face=Face.from_landmarks(lm))        # the library's promise (the CLI calls this), face known
    assert out.size == im.size and out.mode == im.mode
    region = _region(sign_mask, lm, (h, w))
    assert region.any() and not region.all()
    a, b = np.asarray(im).astype(np.int64), np.asarray(out).astype(np.int64)
    if a.ndim == 2: a, b = a[..., None], b[..., None]
    changed = (a != b).any(-1)
    assert not changed[~region].any(), f'{mode}: {changed[~region].sum()} pixels changed outside the face region'
    assert changed[region].any(), f'{mode}: the face was not cloaked'
    if mode in ('RGB', 'RGBA', 'L', 'LA'):
        assert np.abs(a - b).max() <= BOUND
        if mode in ('RGBA', 'LA'): assert (a[..., -1] == b[..., -1]).all()          # alpha untouched
    elif mode == 'CMYK':     # stored differently (K re-derived on the face) but within ε as colours
        d = np.abs(np.asarray(im.convert('RGB')).astype(int) - np.asarray(out.convert('RGB')).astype(int))
        assert d.max() <= BOUND
    elif mode == 'I;16':     # the cloak is added at 16-bit depth, the bound in 16-bit grey levels
        assert np.abs(a - b).max() <= int(np.ceil(EPS * 65535)) and b.max() > 255


@settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(w=st.integers(300, 700), h=st.integers(300, 700), fx=st.floats(0, 1), fy=st.floats(0, 1),
       mode=st.sampled_from(['RGB', 'L', 'RGBA']))
def test_apply_property_through_the_cli_with_detection(face_photo, mask_file, tmp_path_factory, w, h, fx, fy, mode):
    "The whole command (file in, detection, file out): PNG keeps size and mode, and ε holds after rounding."
    from facecloak.align import detect
    d = tmp_path_factory.mktemp('prop')
    im, lm = _scene(*face_photo, w, h, 1.2, fx, fy, mode, seed=w * h)
    im.save(d/'in.png')
    assert main(['apply', str(mask_file), str(d/'in.png'), '-o', str(d/'out'), '-q']) == EXIT_OK
    out = Image.open(d/'out'/'in.png')
    assert out.size == im.size and out.mode == im.mode
    a, b = np.asarray(im).astype(int), np.asarray(out).astype(int)
    assert 0 < np.abs(a - b).max() <= BOUND
    # only near the detected face: nothing changes outside a margin of one face size around its box
    x1, y1, x2, y2 = detect(im.convert('RGB'))[0].box
    fw, fh = x2 - x1, y2 - y1
    diff = np.abs(a - b).reshape(h, w, -1).max(-1)
    outside = np.ones((h, w), bool)
    outside[max(0, int(y1 - fh)):int(y2 + fh), max(0, int(x1 - fw)):int(x2 + fw)] = False
    assert diff[outside].max(initial=0) == 0


# ---------------------------------------------------------------------------------------------
# Streaming, batched detection, worker processes
# ---------------------------------------------------------------------------------------------

def test_apply_streams_in_chunks_with_one_batched_detection_each(mask_file, tmp_path, monkeypatch):
    from facecloak import align as A
    from facecloak import cli
    d = tmp_path/'in'; d.mkdir()
    people = list(assets.lfw_people(min_photos=10).values())
    for i in range(5): shutil.copy(people[i][0], d/f'p{i}.jpg')
    (d/'z_bad.jpg').write_text('not a photo')
    det = A.get_detector('mtcnn'); calls = []
    class Spy:
        name = 'mtcnn'
        def __call__(self, a): calls.append(1); return det(a)
        def batch(self, arrs): calls.append(len(arrs)); return det.batch(arrs)
    monkeypatch.setattr(A, 'get_detector', lambda *a, **k: Spy())
    loaded = []
    real_load = A.load_photo
    def spy(f, **k):                           # the files the command reads (detection also re-checks the decoded images)
        if isinstance(f, (str, os.PathLike)): loaded.append(Path(f).name)
        return real_load(f, **k)
    monkeypatch.setattr(A, 'load_photo', spy)
    assert main(['apply', str(mask_file), str(d), '-o', str(tmp_path/'o'), '-q', '--chunk', '2']) == EXIT_SKIPPED
    assert calls == [2, 2, 1]                  # one detection call per chunk, the chunk's photos together
    assert sorted(p.name for p in (tmp_path/'o').iterdir()) == [f'p{i}.jpg' for i in range(5)]
    assert loaded == [f'p{i}.jpg' for i in range(5)] + ['z_bad.jpg']
    assert main(['apply', str(mask_file), str(d), '-o', str(tmp_path/'o2'), '--chunk', '0']) == EXIT_USAGE


def test_apply_with_workers_matches_in_process(mask_file, tmp_path, capsys, monkeypatch):
    from facecloak import core
    made, real = [], core.local_cluster                # the workers come from local_cluster (its heap fix), not a plain Dask cluster
    monkeypatch.setattr(core, 'local_cluster', lambda *a, **kw: made.append(a) or real(*a, **kw))
    d = tmp_path/'in'; d.mkdir()
    people = list(assets.lfw_people(min_photos=10).values())
    for i in range(4): shutil.copy(people[i][1], d/f'p{i}.jpg')
    (d/'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n')
    args = ['apply', str(mask_file), str(d), '-q', '--chunk', '2', '--format', 'png']   # PNG: no JPEG amplification
    assert main(args + ['-o', str(tmp_path/'a')]) == EXIT_SKIPPED
    one = capsys.readouterr()
    assert main(args + ['-o', str(tmp_path/'b'), '--workers', '2', '--memory-limit', '2GB']) == EXIT_SKIPPED
    two = capsys.readouterr()
    names = sorted(p.name for p in (tmp_path/'a').iterdir())
    assert names == [f'p{i}.png' for i in range(4)]
    assert names == sorted(p.name for p in (tmp_path/'b').iterdir())
    # the same photos, cloaked the same way: worker processes run torch with other thread counts, so the
    # detector's landmarks may differ in the last float bits; the outputs agree within one grey level
    for n in names:
        a = np.asarray(Image.open(tmp_path/'a'/n)).astype(int); b = np.asarray(Image.open(tmp_path/'b'/n)).astype(int)
        assert a.shape == b.shape and np.abs(a - b).max() <= 2 and np.abs(a - b).mean() < 0.05, n
    assert made == [(2, '2GB')]
    assert '4 protected, 1 skipped' in one.out and '4 protected, 1 skipped' in two.out
    assert 'broken.png' in two.err
    assert main(args + ['-o', str(tmp_path/'c'), '--workers', '-1']) == EXIT_USAGE


def test_demo_prints_the_protection_table_and_a_verdict(capsys):
    "The README's main job, on a small gallery and bank: learns from one photo and reports every model."
    from facecloak.models import TARGETS
    assert main(['demo', '--probes', '2', '--distractors', '40', '--anchors', '30']) == EXIT_OK
    said = capsys.readouterr()
    out = said.out
    assert 'ONE photo' in out and 'face SSIM' in out
    assert 'gallery 1 + 40 distractors' in out and 'anchor bank 30 people x 1 photo' in out     # the sizes it used
    rows = [l for l in out.splitlines() if l.split(' ')[0] in (*TARGETS, 'face_recognition')]
    from facecloak.models import present
    assert len(rows) == sum(present(t) for t in TARGETS) + 1 >= 4          # and face_recognition, a black-box attacker (CI installs it)
    assert [r.split()[:2] for r in rows if r.startswith('face_recognition')] == [['face_recognition', 'black']]
    assert {'white', 'black'} <= {r.split()[1] for r in rows}
    # columns: model, box, similarity none -> plain -> default, top-1 protected none -> plain -> default
    # unprotected photos are recognised (protection 0.00 before) on every model
    assert all(r.split()[7] == '0.00' for r in rows), rows
    # both modes lower the similarity to the person's gallery photo on the models they were learned with
    assert all(float(r.split()[4]) < float(r.split()[2]) and float(r.split()[6]) < float(r.split()[2])
               for r in rows if r.split()[1] == 'white'), rows
    # the verdict, one line per mode, counted from the same records as the table: 2 photos x each black-box model
    black = [r.split() for r in rows if r.split()[1] == 'black']
    lines = out.strip().splitlines()
    i = next(k for k, l in enumerate(lines) if l.startswith('plain mask ('))
    for line, col in ((lines[i], 9), (lines[i + 1], 11)):
        m = re.fullmatch(r'.+ s per photo\): protected (\d+) of (\d+) photo-model pairs', line)
        assert m, line
        assert int(m[2]) == 2 * len(black) and int(m[1]) == round(sum(float(r[col]) * 2 for r in black)), (line, black)
    assert lines[i + 1].startswith(f'default ({DEFAULT_REFINE} steps on each photo, ')
    m = re.fullmatch(r'against models never used to learn the cloak \((.+)\); without the cloak: 0 of (\d+) protected', lines[i + 2])
    assert m and m[1].split(', ') == [r[0] for r in black] and int(m[2]) == 2 * len(black), lines[i + 2]
    assert 'test split' in lines[i + 3]
    # not a terminal: one line per phase with its seconds, no progress-bar redraws
    phases = said.err.strip().splitlines()
    assert '\r' not in said.err and len(phases) == 6, said.err[-2000:]
    assert all(re.search(r' \.\.\. \d+\.\d s$', l) for l in phases), phases
    assert phases[1].startswith('building the gallery of 41 identities')


def test_demo_refuses_bad_sizes(capsys):
    assert main(['demo', '--anchors', '0']) == EXIT_USAGE
    assert '--anchors 0 is out of range' in capsys.readouterr().err


def test_eval_help_and_bad_values_fail_fast(capsys):
    "`facecloak eval` answers --help and refuses bad values before loading anything (no torch import)."
    r = subprocess.run([sys.executable, '-c', 'import sys; from facecloak.cli import main; sys.exit(main())', 'eval', '--help'],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for opt in ('--subjects', '--probes', '--methods', '--epsilons', '--sweep', '--mode', '--conditions', '--distractors',
                '--targets', '--folds', '--scheduler', '--workers', '--memory-limit', '--device', '--out', '--figures', '--tiny'):
        assert opt in r.stdout, opt
    r = subprocess.run([sys.executable, '-c', 'import sys, facecloak.cli as c; c.parser().parse_args(["eval"]); '
                        'print("torch" in sys.modules)'], capture_output=True, text=True)
    assert r.stdout.strip() == 'False', r.stderr        # the parser alone never imports torch: --help stays fast
    for args, why in [(['--methods', 'none,magic'], "unknown method 'magic'"), (['--epsilons', '4,x'], 'grey levels'),
                      (['--epsilons', '40'], 'out of range'), (['--conditions', 'clean,fog'], 'unknown fog'),
                      (['--subjects', '0'], '--subjects 0'), (['--workers', '0'], '--workers 0'),
                      (['--folds', 'edgeface_xs'], '--folds needs --mode loo'), (['--mode', 'loo', '--folds', 'nope'], '--folds: unknown nope')]:
        assert main(['eval', *args]) == EXIT_USAGE, args
        assert why in capsys.readouterr().err, args
    from facecloak.cli import eval_config, parser
    cfg = eval_config(parser().parse_args(['eval', '--mode', 'loo', '--folds', 'edgeface_xs,facenet_casia']))
    assert (cfg.mode, cfg.folds) == ('loo', ('edgeface_xs', 'facenet_casia'))
    with pytest.raises(SystemExit) as e: main(['eval', '--mode', 'sideways'])
    assert e.value.code == 2 and 'invalid choice' in capsys.readouterr().err


def test_eval_conditions_expand_groups_and_refuse_unknown_names(capsys):
    "--conditions takes groups (cleanup, all, default) beside names; no option: the default group; a bad name is named."
    from facecloak.attacker import CONDITION_GROUPS, CONDITIONS
    from facecloak.cli import eval_config, parser
    conds = lambda *args: eval_config(parser().parse_args(['eval', *args])).conditions
    assert conds() == CONDITION_GROUPS['default']
    assert conds('--conditions', 'cleanup') == CONDITION_GROUPS['cleanup'] and 'nlmeans' in conds('--conditions', 'cleanup')
    assert conds('--conditions', 'jpeg30,cleanup') == ('jpeg30',) + tuple(c for c in CONDITION_GROUPS['cleanup'] if c != 'jpeg30')
    assert conds('--conditions', 'all') == tuple(CONDITIONS)
    assert main(['eval', '--conditions', 'cleanup,purify']) == EXIT_USAGE
    err = capsys.readouterr().err
    assert '--conditions' in err and 'unknown purify' in err and 'cleanup' in err


def test_check_reads_cloaked_photos_as_given(tmp_path, capsys):
    "check on cloaked photos measures them as they are; --simulate cloaks clean ones; --originals adds 'before'."
    from facecloak.cloak import learn_mask
    people = assets.lfw_people(min_photos=10)
    name = sorted(people)[0]; ims = people[name]
    m = tmp_path/'me.mask'
    learn_mask(ims[0], steps=10, progress=False).save(m)
    clean = tmp_path/'clean'; clean.mkdir(); shutil.copy(ims[1], clean/'a.jpg')
    out = tmp_path/'out'        # written as JPEG q=90, as --simulate writes it in memory: the same photo either way
    assert main(['apply', str(m), str(clean), '-o', str(out), '-q', '--quality', '90']) == EXIT_OK
    capsys.readouterr()
    main(['check', str(m), str(out), '--originals', str(clean)])
    said = capsys.readouterr().out
    rows = [l.split() for l in said.splitlines() if l.split() and l.split()[0].endswith('a.jpg') and '(distance)' not in l]
    assert rows and all(r[2] != '-' for r in rows)               # before from the original
    # face_recognition attacks too, with its own detector: distances, the cloak moves the face away (CI installs it)
    fr = [l.split() for l in said.splitlines() if 'face_recognition (distance)' in l]
    assert len(fr) == 1 and fr[0][3] != '-' and float(fr[0][4]) > float(fr[0][3]), said
    # and the face's quality at the photo's own size, measured against the original
    q = re.search(r"face quality at the photo's own size \((\d+)x(\d+)\): SSIM ([\d.]+), PSNR ([\d.]+) dB", said)
    assert q and (int(q[1]), int(q[2])) == Image.open(clean/'a.jpg').size and 0.5 < float(q[3]) < 1 and float(q[4]) > 25, said
    main(['check', str(m), str(out)])
    said = capsys.readouterr().out
    plain = [l.split() for l in said.splitlines() if l.split() and l.split()[0].endswith('a.jpg') and '(distance)' not in l]
    assert plain and all(r[2] == '-' for r in plain)              # no before without originals
    assert 'face quality' not in said                             # nor a quality: nothing to compare with
    # the 'after' of cloaked photos as given equals 'after' of --simulate on their clean source (same photo, same mask)
    main(['check', str(m), str(clean), '--simulate'])
    sim = [l.split() for l in capsys.readouterr().out.splitlines() if l.split() and l.split()[0].endswith('a.jpg') and '(distance)' not in l]
    a1 = {r[1]: float(r[3]) for r in plain}; a2 = {r[1]: float(r[3]) for r in sim}
    assert a1.keys() == a2.keys() and all(abs(a1[k] - a2[k]) < 0.05 for k in a1), (a1, a2)
    # before (clean) is higher than after (cloaked) on average
    assert np.mean([float(r[2]) for r in sim]) > np.mean([float(r[3]) for r in sim])
    assert main(['check', str(m), str(out), '--simulate', '--originals', str(clean)]) == EXIT_USAGE


def test_learn_bad_photo_is_reported_not_papered_over(tmp_path, capsys):
    "A bad photo stops `learn` with its reason; stage 1 does not fall back to augmenting nothing."
    import warnings
    bad = tmp_path/'x.jpg'; bad.write_text('hello')
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        code = main(['learn', str(bad), '-o', str(tmp_path/'m.mask')])
    err = capsys.readouterr().err
    assert code == EXIT_SKIPPED and 'not an image' in err.lower() and err.count(str(bad)) == 1, err
    assert not any('stage 1' in str(x.message) for x in w)
    assert not (tmp_path/'m.mask').exists()


def test_apply_refine_steps_on_each_photo_within_the_budget(learnt_mask_file, tmp_path, capsys):
    from facecloak.cloak import Mask
    from facecloak.models import load_model
    from facecloak import align
    src = tmp_path/'in'; src.mkdir(); Image.open(lfw_photo('Colin_Powell', 2)).convert('RGB').save(src/'p.png')
    outs = {}
    for k in (0, 4):
        assert main(['apply', str(learnt_mask_file), str(src), '-o', str(tmp_path/f'out{k}'), '--refine', str(k), '-q']) == EXIT_OK
        outs[k] = np.asarray(Image.open(tmp_path/f'out{k}'/'p.png')).astype(int)
    clean = np.asarray(Image.open(src/'p.png').convert('RGB')).astype(int)
    assert not np.array_equal(outs[0], outs[4])
    m = Mask.load(learnt_mask_file)
    assert round(m.epsilon * 255) == 12 and m.option('refine_epsilon') == 8 / 255       # learn_mask's defaults
    assert np.abs(outs[0] - clean).max() <= 12 and np.abs(outs[4] - clean).max() <= 8     # the mask's budget; the refine steps' own
    changed = lambda o: np.abs(o - clean).max(-1) > 0
    assert (changed(outs[4]) & ~changed(outs[0])).mean() < 0.02           # refining changes the same face region
    # the refined photo is further from the person for the model it was refined with
    m, mask = load_model('mobilefacenet_ms1m', device='cpu'), Mask.load(learnt_mask_file)
    emb = lambda a: m(align.align(Image.fromarray(a.astype(np.uint8))).image)[0]
    ref = mask.reference_for('mobilefacenet_ms1m')
    assert float(emb(outs[4]) @ ref) < float(emb(outs[0]) @ ref)
    assert main(['apply', str(learnt_mask_file), str(src), '-o', str(tmp_path/'bad'), '--refine', '-1']) == EXIT_USAGE
    assert '--refine -1 is out of range' in capsys.readouterr().err


def test_learn_for_real_writes_the_asked_budget_with_the_umask_mode_and_never_overwrites(tmp_path, capsys):
    """`facecloak learn` with the real learner (the default surrogates, the smallest settings: 2 steps on 2 images, no
    other people), loaded back with `Mask.load`: the ε asked for, a file an ordinary write would make (the umask's
    mode), and a second run refused with a message that leaves the file byte for byte as it was."""
    import stat
    from facecloak.cloak import Mask
    out = tmp_path/'me.mask'
    args = ['learn', str(lfw_photo(PERSON)), '-o', str(out), '--epsilon', '6', '--steps', '2', '--set', 'n_images=2', '--set', 'mix=0']
    old = os.umask(0o022)
    try:
        assert main(args) == EXIT_OK, capsys.readouterr().err
        assert f'wrote {out} (epsilon 6/255' in capsys.readouterr().out
        m = Mask.load(out)
        assert m.epsilon == pytest.approx(6 / 255) and 0 < m.delta.abs().max() <= 6 / 255 + 1e-7
        assert {k: m.meta['options'][k] for k in ('steps', 'n_images', 'mix')} == dict(steps=2, n_images=2, mix=0)
        assert stat.S_IMODE(out.stat().st_mode) == 0o644                 # umask 022: readable by all, as `open` would make it
        before = out.read_bytes()
        assert main(args) == EXIT_USAGE
        assert f'{out} exists (use --overwrite to replace it)' in capsys.readouterr().err
        assert out.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ['me.mask']     # no temporary left
        os.umask(0o027)                                                   # another umask, another mode: not a fixed 0644
        assert main(args + ['--overwrite']) == EXIT_OK
        assert stat.S_IMODE(out.stat().st_mode) == 0o640 and Mask.load(out).epsilon == pytest.approx(6 / 255)
    finally: os.umask(old)


def test_learn_init_and_set_options(tmp_path, monkeypatch, capsys):
    import facecloak.cloak as C
    seen = {}
    def fake_learn(photo, **kw):
        seen.update(kw); return C.random_mask(epsilon=kw['epsilon'], seed=1)
    monkeypatch.setattr(C, 'learn_mask', fake_learn)
    photo = lfw_photo(PERSON)
    assert main(['learn', str(photo), '-o', str(tmp_path/'a.mask'), '--init', 'prior']) == EXIT_OK
    assert seen['init'] == 'prior'                    # resolved by learn_mask, so the prior must fit the config
    assert torch_equal(C.resolve_init(seen['init'], C.CloakConfig())[0], C.load_prior().delta)
    seen.clear()
    assert main(['learn', str(photo), '-o', str(tmp_path/'z.mask'), '--init', 'zero']) == EXIT_OK and seen['init'] == 'zero'
    seen.clear()
    assert main(['learn', str(photo), '-o', str(tmp_path/'p.mask')]) == EXIT_OK and 'init' not in seen   # learn_mask's default: the prior
    assert seen['epsilon'] == pytest.approx(C.CloakConfig().epsilon) == pytest.approx(12 / 255)        # ... and its budget, when --epsilon is not given
    assert 'epsilon 12/255' in capsys.readouterr().out
    other = tmp_path/'other.mask'; C.random_mask(epsilon=EPS, seed=5).save(other); seen.clear()
    assert main(['learn', str(photo), '-o', str(tmp_path/'b.mask'), '--init', str(other)]) == EXIT_OK
    assert torch_equal(seen['init'].delta, C.Mask.load(other).delta)
    seen.clear()
    assert main(['learn', str(photo), '-o', str(tmp_path/'c.mask'), '--init', str(tmp_path/'none.mask')]) == EXIT_USAGE
    assert '--init' in capsys.readouterr().err and not seen and not (tmp_path/'c.mask').exists()
    assert main(['learn', str(photo), '-o', str(tmp_path/'d.mask'), '--set', 'parameterisation=smooth', '--set', 'band=1.5']) == EXIT_OK
    assert seen['parameterisation'] == 'smooth' and seen['band'] == 1.5
    seen.clear()
    assert main(['learn', str(photo), '-o', str(tmp_path/'e.mask'), '--set', 'bnad=2']) == EXIT_USAGE
    assert "did you mean 'band'" in capsys.readouterr().err and not seen and not (tmp_path/'e.mask').exists()
    for bad, why in [('visibility=high', "visibility must be a number, got 'high'"), ('steps=1.5', 'steps must be a whole number')]:
        assert main(['learn', str(photo), '-o', str(tmp_path/'f.mask'), '--set', bad]) == EXIT_USAGE
        err = capsys.readouterr().err
        assert f'--set: {why}' in err and 'Traceback' not in err and not seen and not (tmp_path/'f.mask').exists()


def torch_equal(a, b):
    import torch
    return bool(torch.equal(a, b))


def test_apply_writes_photos_and_videos_with_the_mode_an_ordinary_write_gives(mask_file, tmp_path):
    "Outputs are for sharing: under umask 022 a protected photo and a protected clip are 0644 (mkstemp's 0600 before)."
    import os, stat
    from facecloak.video import synthetic_clip
    d = tmp_path/'in'; d.mkdir()
    shutil.copy(lfw_photo(PERSON), d/'a.jpg')
    synthetic_clip([lfw_photo(PERSON)], d/'clip.mp4', fps=10, seconds=0.3)
    old = os.umask(0o022)
    try: assert main(['apply', str(mask_file), str(d), '-o', str(tmp_path/'out'), '-q']) == EXIT_OK
    finally: os.umask(old)
    outs = sorted(p.name for p in (tmp_path/'out').iterdir())
    assert outs == ['a.jpg', 'clip.mp4'], outs
    for p in (tmp_path/'out').iterdir(): assert stat.S_IMODE(p.stat().st_mode) == 0o644, (p.name, oct(p.stat().st_mode))

"""Videos: `facecloak apply me.mask clip.mp4 -o out/` and `Mask.apply_video` on clips the tests make.

The clips are LFW photos with a little motion (`facecloak.video.synthetic_clip`), some with what phone
clips carry: a display rotation, a variable frame rate, a sound track and a GPS tag. The masks are a
random ±ε mask and a short learnt one (a few steps: its reference embedding picks the user's face), so
these take seconds, not minutes.
"""
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from facecloak.cli import main, EXIT_OK, EXIT_SKIPPED
from facecloak.testing import lfw_photo
from facecloak.video import (apply_video, flicker, probe, read_frames, synthetic_clip, VideoError, FaceTrack,
                             upright, find_scenes, clip_masks, KEYFRAMES)

EPS = 8 / 255          # the budget of conftest's masks


@pytest.fixture(scope='module')
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp('clips')
    ph = [lfw_photo('Andre_Agassi', i) for i in (1, 2)]
    return dict(
        plain=synthetic_clip(ph, d/'plain.mp4', fps=10, seconds=0.6, audio=True),
        phone=synthetic_clip(ph, d/'phone.mov', fps=12, seconds=0.5, rotation=270, vfr=True, audio=True,
                             location='+48.8584+002.2945/'),
        flipped=synthetic_clip(ph[:1], d/'flipped.mkv', fps=10, seconds=0.5, rotation=180))


def _pts(p):
    with av.open(str(p)) as c: return [float(f.pts * f.time_base) for f in c.decode(video=0)]


def _no_temp(folder):
    return [p.name for p in Path(folder).rglob('*') if p.name.startswith('.') or p.suffix == '.part']


def test_cli_protects_a_folder_mixing_photos_and_videos(clips, sign_mask_file, tmp_path, capsys):
    d = tmp_path/'in'; (d/'sub').mkdir(parents=True)
    Image.open(lfw_photo('Andre_Agassi', 3)).save(d/'photo.jpg')
    (d/'clip.mp4').write_bytes(clips['plain'].read_bytes())
    (d/'sub'/'phone.mov').write_bytes(clips['phone'].read_bytes())
    (d/'notes.mp4').write_text('not a video')
    synthetic_clip([Image.new('RGB', (120, 120), (40, 90, 160))], d/'wall.mp4', fps=5, seconds=1)
    before = {p: p.read_bytes() for p in d.rglob('*') if p.is_file()}
    code = main(['apply', str(sign_mask_file), str(d), '-o', str(tmp_path/'out'), '-q', '--detect-every', '3'])
    err = capsys.readouterr().err
    assert code == EXIT_SKIPPED, err
    out = tmp_path/'out'
    assert sorted(str(p.relative_to(out)) for p in out.rglob('*') if p.is_file()) == ['clip.mp4', 'photo.jpg', 'sub/phone.mov']
    assert 'notes.mp4' in err and 'not a readable video' in err
    assert 'wall.mp4' in err and 'no face found in any of the 5 frames' in err
    assert _no_temp(out) == []
    assert {p: p.read_bytes() for p in d.rglob('*') if p.is_file()} == before          # inputs untouched
    for name, src in (('clip.mp4', clips['plain']), ('sub/phone.mov', clips['phone'])):
        a, b = probe(src), probe(out/name)
        assert (b.width, b.height, b.frames, b.rotation, b.audio) == (a.width, a.height, a.frames, a.rotation, a.audio)
        assert _pts(out/name) == _pts(src)
    with av.open(str(out/'sub'/'phone.mov')) as c: assert not any('location' in k for k in c.metadata), c.metadata
    with av.open(str(clips['phone'])) as c: assert any('location' in k for k in c.metadata)
    # a second run refuses to overwrite, and says so
    code = main(['apply', str(sign_mask_file), str(d/'clip.mp4'), '-o', str(out), '-q'])
    assert code == EXIT_SKIPPED and 'exists' in capsys.readouterr().err


@pytest.mark.parametrize('name', ['plain', 'phone', 'flipped'])
def test_every_frame_is_cloaked_on_the_face_only(clips, sign_mask, tmp_path, name):
    "Rotated (270, 180) and variable-frame-rate clips come out right: the face found in every upright frame."
    from facecloak.cloak import load_prior
    mask = load_prior()           # a learnt (smooth) mask: x264 keeps most of it, where it flattens ±ε pixel noise
    src = clips[name]; dst = tmp_path/('out' + src.suffix)
    rep = apply_video(mask, src, dst, detect_every=2, progress=False)
    info, n = probe(src), sum(1 for _ in read_frames(src))          # (Matroska's header has no frame count)
    assert (rep.frames, rep.cloaked, rep.rotation) == (n, n, info.rotation) and n >= 5
    assert probe(dst).rotation == info.rotation
    inside, outside = [], []
    for lm, o, p in zip(rep.landmarks, read_frames(src), read_frames(dst)):
        reg = mask.region(mask.matrix(lm), o.shape[:2])
        diff = np.abs(o.astype(int) - p).mean(-1)
        inside.append(diff[reg].mean()); outside.append(diff[~reg].mean())
        assert 0.25 < lm[:, 0].mean() / o.shape[1] < 0.75       # on the face in the middle of the upright frame
    assert np.mean(inside) > 2 * np.mean(outside), (np.mean(inside), np.mean(outside))


def test_interrupted_run_leaves_nothing(clips, sign_mask, tmp_path):
    lm = next(iter(FaceTrack(sign_mask)(f, 0) for f in read_frames(clips['plain'])))
    def stop_at_4(i):
        if i == 4: raise KeyboardInterrupt
        return lm
    out = tmp_path/'out'; out.mkdir()
    with pytest.raises(KeyboardInterrupt): apply_video(sign_mask, clips['plain'], out/'c.mp4', landmarks=stop_at_4, progress=False)
    assert list(out.iterdir()) == []


def test_bad_inputs_name_the_problem_and_write_nothing(clips, sign_mask, tmp_path):
    m = sign_mask; out = tmp_path/'out'; out.mkdir()
    data = clips['plain'].read_bytes()
    (tmp_path/'cut.mp4').write_bytes(data[:len(data) * 2 // 3])
    (tmp_path/'zero.mp4').write_bytes(b'')
    cases = {'cut.mp4': 'truncated', 'zero.mp4': 'not a readable video'}
    for name, msg in cases.items():
        with pytest.raises(VideoError, match=msg): apply_video(m, tmp_path/name, out/name, progress=False)
    with pytest.raises(FileNotFoundError): apply_video(m, tmp_path/'missing.mp4', out/'x.mp4')
    with pytest.raises(ValueError, match='input'): apply_video(m, clips['plain'], clips['plain'], overwrite=True)
    with pytest.raises(ValueError, match='refine'): apply_video(m, clips['plain'], out/'r.mp4', refine=-1)
    with pytest.raises(ValueError, match='detect_every'): apply_video(m, clips['plain'], out/'d.mp4', detect_every=0)
    with pytest.raises(ValueError, match='keyframes'): apply_video(m, clips['plain'], out/'k.mp4', keyframes=0)
    assert list(out.iterdir()) == []


def test_bad_inputs_to_the_keyframe_pass(learnt_mask, tmp_path):
    """With the models on disk (the default refines a clip mask per scene): a clip cut off, and a clip with no face in any
    frame (so none in its keyframes), fail as without the pass, naming the problem; nothing is written."""
    out = tmp_path/'out'; out.mkdir()
    clip = synthetic_clip([lfw_photo('Andre_Agassi', 1)], tmp_path/'c.mp4', fps=10, seconds=0.6)
    data = clip.read_bytes(); (tmp_path/'cut.mp4').write_bytes(data[:len(data) * 2 // 3])
    wall = synthetic_clip([Image.new('RGB', (120, 120), (40, 90, 160))], tmp_path/'wall.mp4', fps=5, seconds=1)
    assert learnt_mask.default_refine() > 0
    with pytest.raises(VideoError, match='truncated'): apply_video(learnt_mask, tmp_path/'cut.mp4', out/'a.mp4', progress=False)
    with pytest.raises(VideoError, match='no face found in any of the 5 frames'):
        apply_video(learnt_mask, wall, out/'b.mp4', keyframes=2, progress=False)
    assert [s.refined for s in clip_masks(learnt_mask, wall, keyframes=2, steps=2)] == [False]
    assert list(out.iterdir()) == []


def test_the_users_face_is_chosen_by_the_masks_reference(tmp_path):
    "Two people in view, the other one larger: a learnt mask cloaks the user, and leaves the other face alone."
    from facecloak.cloak import learn_mask
    user, other = lfw_photo('Andre_Agassi', 1), lfw_photo('George_W_Bush', 1)
    mask = learn_mask(user, anchor=lfw_photo('Tony_Blair', 1), surrogates=['mobilefacenet_ms1m'], w_similar=0, steps=3,
                      device='cpu', progress=False)
    scene = Image.new('RGB', (560, 300), (90, 90, 90))
    scene.paste(Image.open(lfw_photo('Andre_Agassi', 4)).resize((200, 200)), (20, 50))
    scene.paste(Image.open(other).resize((280, 280)), (270, 10))
    clip = synthetic_clip([scene], tmp_path/'two.mp4', fps=10, seconds=0.6)
    rep = apply_video(mask, clip, tmp_path/'out.mp4', detect_every=3, progress=False)
    assert rep.cloaked == rep.frames == 6
    assert (rep.landmarks[:, :, 0] < 250).all(), rep.landmarks[:, :, 0].mean()      # the user, on the left


def test_steadier_than_the_raw_detections(sign_mask, tmp_path):
    "The tracker and the One Euro filter keep the cloak steadier than placing it on each frame's raw detection."
    clip = synthetic_clip([lfw_photo('Andre_Agassi', 1)], tmp_path/'still.mp4', fps=10, seconds=2)
    m, res = sign_mask, {}
    for name, kw in dict(raw=dict(detect_every=1, smooth=False), default=dict()).items():
        rep = apply_video(m, clip, tmp_path/f'{name}.mp4', progress=False, **kw)
        res[name] = flicker(clip, tmp_path/f'{name}.mp4', rep.landmarks, m)
    assert res['default']['cloak'] < 0.8 * res['raw']['cloak'], res
    assert res['default']['pairs'] == res['raw']['pairs'] == 19


def test_upright_turns_the_stored_frame_as_the_player_does():
    a = np.zeros((2, 4, 3), np.uint8); a[0, -1] = 255          # a bright pixel top-right
    assert upright(a, 90).shape == (4, 2, 3) and upright(a, 90)[0, 0, 0] == 255      # 90 counter-clockwise: to the top-left
    assert upright(a, 180)[-1, 0, 0] == 255 and upright(a, 270)[-1, -1, 0] == 255


def test_the_benchmark_runs_and_reports_every_run(capsys):
    "benchmarks/bench_video.py at a tiny size: JSON with frames per second and memory for each run (no timing asserted)."
    import importlib.util, json
    spec = importlib.util.spec_from_file_location('bench_video', Path(__file__).resolve().parent.parent/'benchmarks'/'bench_video.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    mod.main(['--seconds', '1.5', '--fps', '4', '--size', '320x240', '--runs', 'decode_only,apply_only,detect_every_5,clip_masks'])
    res = json.loads(capsys.readouterr().out)
    assert res['size'] == '320x240' and [r['run'] for r in res['runs']] == ['decode_only', 'apply_only', 'detect_every_5', 'clip_masks']
    assert all(r['frames'] == 6 and r['frames_per_s'] > 0 and r['rss_mb_peak'] >= r['rss_mb_at_10pct'] > 0 for r in res['runs'])
    clip = res['runs'][-1]                  # three portraits: three scenes, each with its clip mask
    assert (clip['scenes'], clip['scenes_refined']) == (3, 3) and clip['keyframe_s'] > 0 and clip['main_pass_frames_per_s'] > 0
    # keyframe_s is printed to 0.01 s, the per-minute figure from the unrounded seconds: equal within that rounding (x40)
    assert clip['keyframe_s_per_clip_minute'] == pytest.approx(clip['keyframe_s'] / (1.5 / 60), abs=0.005 * 40 + 0.05)


def test_webm_output_reencodes_the_sound_it_cannot_copy(clips, sign_mask, tmp_path):
    "WebM holds only Opus or Vorbis sound: the AAC track is re-encoded (to Opus), the picture goes to VP9."
    rep = apply_video(sign_mask, clips['plain'], tmp_path/'out.webm', progress=False)
    info = probe(tmp_path/'out.webm')
    assert (rep.audio, info.codec, info.audio) == ('re-encoded', 'vp9', ['opus'])
    assert rep.cloaked == rep.frames == sum(1 for _ in read_frames(tmp_path/'out.webm')) == probe(clips['plain']).frames


def _stored(p):
    "The samples the file stores, frame by frame: (Y plane over the U and V planes) of each yuv420p frame, as ints."
    with av.open(str(p)) as c:
        for f in c.decode(video=0):
            assert f.format.name == 'yuv420p'
            yield f.to_ndarray().astype(int)


def test_refining_on_the_clip_keeps_every_decoded_frame_within_the_budget(learnt_mask, tmp_path):
    """`apply_video(..., refine=K)`: a clip mask refined with K steps on the clip's keyframes, on every frame. Against
    the same clip through the same encoder with a zero mask (same landmarks, x264 at crf 0: lossless), every decoded
    frame moves by at most ε; the refined mask is the one on every frame (it differs from refine=0), and nothing
    changes away from the face."""
    import math, torch
    from scipy.ndimage import binary_dilation
    from facecloak.cloak import Mask
    m, bound = learnt_mask, math.ceil(learnt_mask.epsilon * 255)               # 8 grey levels
    clip = synthetic_clip([lfw_photo('Andre_Agassi', 1)], tmp_path/'c.mp4', fps=10, seconds=0.6)
    zero = Mask(torch.zeros_like(m.delta), m.epsilon, m.template, m.size)
    rep = apply_video(zero, clip, tmp_path/'zero.mp4', crf=0, progress=False)
    lm = rep.landmarks                                                          # the face as the tracker found it, for all three
    runs = {k: apply_video(m, clip, tmp_path/f'refine{k}.mp4', refine=k, crf=0, landmarks=lambda i: lm[i], progress=False)
            for k in (0, 3)}
    assert all(r.frames == r.cloaked == rep.cloaked == 6 for r in runs.values())
    # what the file stores (the planes x264 coded losslessly): the cloak moves no sample by more than ε. A sample's
    # range is 219 (Y) or 224 (U, V) of 255 levels, so ε·219/255 plus half a level of rounding stays within ceil(ε·255).
    for z, r in zip(_stored(tmp_path/'zero.mp4'), _stored(tmp_path/'refine3.mp4')):
        assert 0 < np.abs(r - z).max() <= bound, np.abs(r - z).max()
    # the frames as a player shows them (RGB, `read_frames`): 4:2:0 stores colour once per 2x2 pixels, and turning Y, U, V
    # back into RGB adds a pixel's own change in Y to its block's change in colour: B = 1.164 Y + 2.017 U can move by up
    # to 2.8ε where every stored sample moved by ε or less. Measured at crf 0: 14-15 grey levels for this mask, 16-17
    # for a ±ε sign mask (ε = 8). So 3ε here, the stored samples above being the tight check; and away from the face
    # (its region grown by 2 pixels: one chroma block) not one value changes.
    for i, (z, r0, r3) in enumerate(zip(*(read_frames(tmp_path/f'{n}.mp4') for n in ('zero', 'refine0', 'refine3')))):
        z, r0, r3 = z.astype(int), r0.astype(int), r3.astype(int)
        near = binary_dilation(m.region(m.matrix(lm[i]), z.shape[:2]), iterations=2)
        assert np.abs(r3 - z).max() <= 3 * bound and np.abs(r3 - z).max(-1)[~near].max() == 0, i
        assert (np.abs(r3 - r0).max(-1)[near] > 0).mean() > 0.05, i            # refined: not the refine=0 frame


def test_a_clip_of_two_photos_is_two_scenes(tmp_path):
    "A cut between two different photos starts a new scene; each scene gets its keyframes, evenly spaced."
    clip = synthetic_clip([lfw_photo('Andre_Agassi', 1), lfw_photo('George_W_Bush', 1)], tmp_path/'two.mp4', fps=10, seconds=0.8)
    scenes = find_scenes(clip, keyframes=3)
    assert [(s.start, s.end) for s in scenes] == [(0, 8), (8, 16)]
    assert [s.keyframes for s in scenes] == [[1, 4, 6], [9, 12, 14]]
    assert len(find_scenes(synthetic_clip([lfw_photo('Andre_Agassi', 1)], tmp_path/'one.mp4', fps=10, seconds=1.5))) == 1


def test_each_scene_gets_its_clip_mask_and_a_scene_without_a_face_in_its_keyframes_the_users(learnt_mask, tmp_path):
    """The default (`refine=None`, models on disk): one clip mask per scene, refined on its keyframes. A scene whose
    keyframes show no face keeps the user's mask as it is: its other frames come out as with `refine=0` (x264 at crf 0),
    where the refined scene's differ; the report says which scenes were refined and how long the pass took."""
    m = learnt_mask
    clip = synthetic_clip([lfw_photo('Andre_Agassi', 1), lfw_photo('Andre_Agassi', 2)], tmp_path/'c.mp4', fps=10, seconds=0.6)
    lm = apply_video(m, clip, tmp_path/'lm.mp4', refine=0, progress=False).landmarks
    scenes = find_scenes(clip, keyframes=2)
    hidden = set(scenes[1].keyframes)                               # no face on the second scene's keyframes
    where = lambda i: None if i in hidden else lm[i]
    kw = dict(landmarks=where, keyframes=2, crf=0, progress=False)
    plain = apply_video(m, clip, tmp_path/'plain.mp4', refine=0, **kw)
    rep = apply_video(m, clip, tmp_path/'clip.mp4', **kw)
    assert rep.refine == m.default_refine() > 0 and rep.keyframe_seconds > 0 and plain.keyframe_seconds < rep.keyframe_seconds
    assert [(s['start'], s['end'], s['faces'], s['refined']) for s in rep.scenes] == [(0, 6, 2, True), (6, 12, 0, False)]
    assert plain.scenes == [] and plain.refine == 0
    assert rep.cloaked == plain.cloaked == 12 - len(hidden)
    for i, (a, b) in enumerate(zip(read_frames(tmp_path/'plain.mp4'), read_frames(tmp_path/'clip.mp4'))):
        if i < 6: assert np.abs(a.astype(int) - b).max() > 0, i                   # the clip mask
        else: assert np.array_equal(a, b), i                                     # the user's mask as it is


def test_models_missing_fall_back_to_the_plain_mask_said_once(learnt_mask, tmp_path):
    """A mask whose recognition models are not on disk: the default applies the plain mask (warned, as for photos) and
    runs no keyframe pass; asking for refinement names the missing models, and nothing is written."""
    from dataclasses import replace
    m = replace(learnt_mask, surrogates=['video_test_gone_model'])
    clip = synthetic_clip([lfw_photo('Andre_Agassi', 1)], tmp_path/'c.mp4', fps=10, seconds=0.5)
    with pytest.warns(UserWarning, match='not on disk'):
        rep = apply_video(m, clip, tmp_path/'a.mp4', progress=False)
    assert (rep.refine, rep.scenes, rep.cloaked) == (0, [], 5)
    with pytest.raises(FileNotFoundError, match='video_test_gone_model are not on disk'):
        apply_video(m, clip, tmp_path/'b.mp4', refine=3, progress=False)
    assert not (tmp_path/'b.mp4').exists()


def test_a_mask_file_from_an_older_version_is_refined_within_its_budget(learnt_mask, tmp_path):
    """A version-1 mask file (unsealed header, an option this version does not know, none it knows now): it loads with
    the older format's warning, and its clip masks are refined within the budget it is read with: the refine steps'
    `refine_epsilon`, today's default for a file that predates the option."""
    import json, warnings
    from safetensors import safe_open
    from safetensors.torch import save_file
    f = learnt_mask.save(tmp_path/'me.mask')
    with safe_open(str(f), 'pt') as h: md, t = dict(h.metadata()), {k: h.get_tensor(k) for k in h.keys()}
    hd = json.loads(md['facecloak']); hd['meta']['options'] = {'an_old_option': 1}
    save_file(t, str(tmp_path/'old.mask'), metadata={**md, 'facecloak': json.dumps(hd), 'format_version': '1', 'seal': ''})
    from facecloak.cloak import CloakConfig, Mask
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always'); old = Mask.load(tmp_path/'old.mask')
    assert any('format version 1' in str(x.message) for x in w)
    clip = synthetic_clip([lfw_photo('Andre_Agassi', 1)], tmp_path/'c.mp4', fps=10, seconds=0.5)
    scenes = clip_masks(old, clip, keyframes=1, steps=3)
    assert len(scenes) == 1 and scenes[0].refined and scenes[0].faces == 1
    c = scenes[0].mask
    budget = old.option('refine_epsilon') or old.epsilon
    assert budget == CloakConfig().refine_epsilon and c.epsilon == budget and float(c.delta.abs().max()) <= budget + 1e-6
    assert not np.array_equal(c.delta.numpy(), old.delta.numpy())
    rep = apply_video(old, clip, tmp_path/'out.mp4', scenes=scenes, refine=3, progress=False)
    assert rep.cloaked == rep.frames == 5

"""Widgets: headless behaviour, and the widgets notebook drawn by a real headless Chromium.

The browser test renders nbs/07_widgets.ipynb (executed in this process, slow cells skipped) to HTML
with its widget state, opens it in Debian's chromium with the widget renderer and require.js from
tests/browser/node_modules (`npm ci` there; no network), checks the DOM has the widgets and that
the screenshot shows them drawn, and keeps the screenshot in figures/widgets_browser.png.
It skips, saying why, when chromium or the npm packages are missing (CI installs both)."""
import io, os, shutil, subprocess, tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facecloak.widgets import (CloakExplorer, Cancelled, fake_learner, fake_candidates, fake_scorer, embed_html,
                               notebook_html, renderer_scripts)

ROOT = Path(__file__).resolve().parents[1]
NODE_MODULES = ROOT/'tests'/'browser'/'node_modules'
FIGURE = ROOT/'figures'/'widgets_browser.png'
THUMB_COLOURS = [(200, 60, 60), (60, 160, 60), (60, 90, 200)]  # first fake_candidates thumbnails


def _photo():
    yy, xx = np.mgrid[:120, :160]
    return Image.fromarray(np.stack([xx * 1.5, yy * 2, (xx + yy)], -1).clip(0, 255).astype(np.uint8))


def _explorer(**kw):
    return CloakExplorer(_photo(), learner=fake_learner, candidates=fake_candidates, scorer=fake_scorer,
                         thresholds={'model_a': 0.5}, background=False, **{'leakage_weight': 0.5, **kw})   # the fake learner shows the weight


# ---------------------------------------------------------------- headless

def test_slider_updates_outputs_and_cache():
    ex = _explorer(epsilon=8)            # below learn_mask's default (12), to step up from
    before = (ex.protected.value, ex.mask_view.value, ex.quality.value, {k: b.value for k, b in ex.bars.items()})
    ex.epsilon.value = 14
    assert ex.calls == 2 and ex.shown == ('anchor_0', 14, 30, 0.5)
    assert ex.protected.value != before[0] and ex.mask_view.value != before[1] and ex.quality.value != before[2]
    assert all(ex.bars[k].value < v for k, v in before[3].items())
    assert ex.bars['model_a'].bar_style in ('danger', 'success')
    ex.epsilon.value = 3
    ex.epsilon.value = 14            # back: from the cache, no learner call
    assert ex.calls == 3 and ex.history[-1] == (('anchor_0', 14, 30, 0.5), 'cached')
    assert ex.protected.value == ex.cache[('anchor_0', 14, 30, 0.5)]['protected']


def test_anchor_choice_runs_a_preview():
    seen = []
    def learner(photo, **kw):
        seen.append((kw['anchor']['name'], kw['steps'])); return fake_learner(photo, **kw)
    ex = CloakExplorer(_photo(), learner=learner, candidates=fake_candidates, scorer=fake_scorer, thresholds={},
                       background=False, preview_steps=4, steps=25)
    ex.anchor.value = 3
    assert seen == [('anchor_0', 4), ('anchor_3', 4)]
    assert ex.progress.value == ex.progress.max == 4
    ex.steps.value = 12
    assert seen[-1] == ('anchor_3', 12)


def test_cancel_stops_the_learner_and_caches_nothing():
    ex = _explorer(steps=50)
    shown, img = ex.shown, ex.protected.value
    steps_done = []
    def learner(photo, *, callback, **kw):
        def cb(t, n):
            steps_done.append(t)
            if t == 4: ex.cancel.click()
            callback(t, n)
        return fake_learner(photo, callback=cb, **kw)
    ex.learner = learner
    ex.leakage_weight.value = 1.0
    assert steps_done == [1, 2, 3, 4] and ex.history[-1][1] == 'cancelled'
    assert ex.shown == shown and ex.protected.value == img and ex.key() not in ex.cache
    with pytest.raises(Cancelled):
        ex._cancel.set(); ex._callback(1, 2)


def test_default_learner_passes_the_controls_to_learn_mask_unchanged(monkeypatch):
    "The slider's leakage_weight is learn_mask's leakage_weight (no translation), and Cancel's callback goes through."
    import facecloak.widgets as Wd
    seen = []
    monkeypatch.setattr(Wd, 'learn_mask', lambda photo, **kw: seen.append((photo, kw)))
    cb = lambda t, n: None
    Wd.default_learner('me.jpg', anchor={'name': 'Ann', 'similarity': -0.1}, epsilon=6 / 255, steps=7, leakage_weight=0.8, callback=cb)
    assert seen == [('me.jpg', dict(epsilon=6 / 255, anchor='Ann', steps=7, leakage_weight=0.8, callback=cb, progress=False))]
    seen.clear(); Wd.default_learner('me.jpg')          # no controls: the 'quick' preset (20 steps) on learn_mask's own defaults
    from facecloak.cloak import preset
    assert seen == [('me.jpg', dict(preset('quick'), anchor=None, callback=None, progress=False))] and seen[0][1]['steps'] == 20
    ex = _explorer(leakage_weight=0.2)
    assert ex.leakage_weight.value == 0.2 and ex.leakage_weight.description == 'leakage_weight' and ex.shown[3] == 0.2


def test_embed_html_holds_the_current_state(tmp_path):
    ex = _explorer()
    ex.epsilon.value = 11
    page = embed_html(ex, tmp_path/'w.html', cdn=True).read_text()
    assert ex.widget.model_id in page and f'"value": 11' in page


# ---------------------------------------------------------------- browser

def _chromium():
    for name in (os.environ.get('CHROMIUM'), 'chromium', 'chromium-browser', 'google-chrome'):
        if name and shutil.which(name): return shutil.which(name)
    return None


def _run_chromium(exe, url, *args, timeout=120):
    with tempfile.TemporaryDirectory() as profile:
        cmd = [exe, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
               '--disable-background-networking', '--disable-component-update', '--disable-sync',
               '--disable-dev-shm-usage', '--hide-scrollbars', f'--user-data-dir={profile}',
               '--allow-file-access-from-files', '--virtual-time-budget=15000', *args, url]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _near(a: np.ndarray, rgb, tol=12) -> int:
    return int((np.abs(a.astype(int) - np.array(rgb)).max(-1) <= tol).sum())


@pytest.mark.skipif(_chromium() is None, reason='chromium not installed (Debian: apt-get install -y chromium)')
@pytest.mark.skipif(not (NODE_MODULES/'@jupyter-widgets'/'html-manager'/'dist'/'embed-amd.js').exists()
                    or not (NODE_MODULES/'requirejs'/'require.js').exists(),
                    reason='widget renderer not installed: run `npm ci` in tests/browser')
def test_widgets_notebook_draws_in_headless_chromium(tmp_path):
    exe = _chromium()
    scripts = renderer_scripts(NODE_MODULES, search=False)
    assert scripts['embed'].startswith('file://')                   # local files, never the CDN
    nb = ROOT/'nbs'/'07_widgets.ipynb'
    full = notebook_html(nb, tmp_path/'07_widgets.html', node_modules=NODE_MODULES)
    page = full.read_text()
    assert '<script src="http' not in page and page.count('<script src="file://') == 2   # no network
    # 1. the DOM the renderer built from the saved state
    r = _run_chromium(exe, full.as_uri(), '--dump-dom')
    dom = r.stdout
    assert r.returncode == 0, r.stderr[-2000:]
    for cls, n in [('widget-slider', 3), ('widget-toggle-buttons', 1), ('widget-image', 3 + 3),
                   ('widget-hprogress', 1 + 3), ('jupyter-button', 2)]:
        assert dom.count(cls) >= n, f'{cls}: {dom.count(cls)} < {n} in the rendered DOM'
    assert 'ε (/255)' in dom and 'Cancel' in dom and 'PSNR' in dom
    # 2. the pixels: a screenshot of the widget outputs of the same notebook
    outs = notebook_html(nb, tmp_path/'07_outputs.html', outputs_only=True, node_modules=NODE_MODULES)
    shot = tmp_path/'shot.png'
    r = _run_chromium(exe, outs.as_uri(), f'--screenshot={shot}', '--window-size=1100,540')
    assert shot.exists(), r.stderr[-2000:]
    a = np.asarray(Image.open(shot).convert('RGB'))
    assert a.shape[:2] == (540, 1100)
    assert (a.min(-1) < 235).mean() > 0.08, 'the page is (almost) blank: the widgets did not draw'
    for rgb in THUMB_COLOURS:                                          # anchor thumbnails drawn (Image widgets)
        assert _near(a, rgb) > 500, f'no thumbnail of colour {rgb} in the screenshot'
    # the blank page for comparison: same renderer, no widget views
    blank = tmp_path/'blank.html'
    blank.write_text(page.split('<body>')[0] + '<body></body></html>')
    shot0 = tmp_path/'blank.png'
    _run_chromium(exe, blank.as_uri(), f'--screenshot={shot0}', '--window-size=1100,540')
    a0 = np.asarray(Image.open(shot0).convert('RGB'))
    assert (a0.min(-1) < 235).mean() < 0.01 and np.abs(a.astype(int) - a0).mean() > 5
    FIGURE.parent.mkdir(exist_ok=True)
    shutil.copy(shot, FIGURE)

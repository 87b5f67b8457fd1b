"""`facecloak app` in a real browser: the page served by the CLI and driven by Debian's headless Chromium.

One session, in the order a person uses the page: it starts, a photo of you goes in through the page's own
file picker (the FileUpload widget; files set by the DevTools protocol, `DOM.setFileInputFiles`), learning starts,
is cancelled and starts again (25 learning steps: `facecloak app --steps 25`, a weak but real cloak), the cloak is
downloaded; two LFW photos, a text file and a decompression bomb are protected in the strong mode; each bad file
gets its line and the photos their before/after rows and check sentence; the zip is downloaded and compared, byte
for byte, with what `facecloak apply` writes with the downloaded cloak and the same mode; a second tab starts
fresh and leaves the first one's state alone; the first tab then protects again in the fast mode (byte for byte
again), now with a one-second clip too: its row (two players the browser can play, the magnifier, the difference and
one sentence), and the protected clip in the zip is the one `facecloak apply` writes (frame for frame: see
`_same_clip`). Every request the page makes goes to localhost. Screenshots of each step go to figures/app_*.png.
Voilà's page links a stylesheet on a CDN: the page's policy (`facecloak.app_launch.CSP`) stops it, and the check
below would fail if any request left. It skips, saying why, only when chromium is missing (CI installs it)."""
import base64, io, itertools, json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request, zipfile
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image

from facecloak.testing import lfw_photo, bomb_png
from facecloak.video import read_frames, synthetic_clip

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT/'figures'
STEPS = 25                     # learning steps on the page (`facecloak app --steps 25`): ~15 s, not half a minute, and long enough that
                               # Cancel lands while it learns (3 steps ended in 4 s, before the click reached the kernel on a loaded machine)
PAGE_WAIT = 180.0              # seconds the test waits for the page (a wait, not a speed goal: `benchmarks/bench_app.py` times start-up); the 10 s holds on 2 idle
                               # cores (measured 6-9 s); a loaded CI machine gets slack, a page that works before it shows does not


def _chromium():
    for name in (os.environ.get('CHROMIUM'), 'chromium', 'chromium-browser', 'google-chrome'):
        if name and shutil.which(name): return shutil.which(name)
    return None


pytestmark = pytest.mark.skipif(_chromium() is None, reason='chromium not installed (Debian: apt-get install -y chromium)')


def _free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def _wait(cond, timeout, what, every=0.2):
    t0 = time.time()
    while time.time() - t0 < timeout:
        v = cond()
        if v: return v
        time.sleep(every)
    raise AssertionError(f'timed out after {timeout} s waiting for {what}')


# a file picker the page opens is kept in the document, where DevTools can set its files (ipywidgets' FileUpload
# creates its <input type=file> detached and clicks it)
KEEP_PICKER = """(() => { if (window.__fcKeep) return; window.__fcKeep = true;
  const click = HTMLInputElement.prototype.click;
  HTMLInputElement.prototype.click = function () {
    if (this.type !== 'file') return click.call(this);
    document.querySelectorAll('input[data-fc-picker]').forEach(e => e.removeAttribute('data-fc-picker'));
    this.setAttribute('data-fc-picker', '1'); this.style.display = 'none'; document.body.appendChild(this); }; })()"""


class Chromium:
    "Headless Chromium driven over the DevTools protocol (websocket-client); one page per `tab()`."
    def __init__(self, exe, downloads: Path, size=(1200, 1500)):
        self.port, self.profile, self.events = _free_port(), tempfile.mkdtemp(), []
        self.proc = subprocess.Popen([exe, '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-dev-shm-usage',
                                      '--disable-background-networking', '--disable-component-update', '--disable-sync',
                                      '--hide-scrollbars', f'--user-data-dir={self.profile}', f'--remote-debugging-port={self.port}',
                                      f'--window-size={size[0]},{size[1]}', 'about:blank'],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f'http://127.0.0.1:{self.port}/json/version'
        try: ver = _wait(lambda: self._try_json(url), 120, 'chromium to listen')
        except AssertionError: self.close(); raise
        import websocket
        self.ws = websocket.create_connection(ver['webSocketDebuggerUrl'], timeout=120, suppress_origin=True)
        self.ids = itertools.count(1)
        self.send('Browser.setDownloadBehavior', behavior='allow', downloadPath=str(downloads))

    @staticmethod
    def _try_json(url):
        try: return json.load(urllib.request.urlopen(url, timeout=2))
        except Exception: return None

    def send(self, method, session=None, **params):
        i = next(self.ids)
        self.ws.send(json.dumps(dict(id=i, method=method, params=params, **({'sessionId': session} if session else {}))))
        while True:
            r = json.loads(self.ws.recv())
            if r.get('id') != i: self.events.append(r); continue
            if 'error' in r: raise RuntimeError(f'{method}: {r["error"]}')
            return r.get('result', {})

    def tab(self, url) -> 'Tab':
        t = self.send('Target.createTarget', url='about:blank')['targetId']
        s = self.send('Target.attachToTarget', targetId=t, flatten=True)['sessionId']
        for d in ('Runtime', 'Page', 'Network', 'DOM'): self.send(f'{d}.enable', session=s)
        self.send('Page.navigate', session=s, url=url)
        return Tab(self, s)

    def requests(self) -> list[str]:
        "The URLs the pages asked for, less those the page's Content-Security-Policy stopped before they were sent."
        blocked = {e['params']['requestId'] for e in self.events if e.get('method') == 'Network.loadingFailed'
                   and e['params'].get('blockedReason') == 'csp'}
        return [e['params']['request']['url'] for e in self.events if e.get('method') == 'Network.requestWillBeSent'
                and e['params']['requestId'] not in blocked]

    def close(self):
        self.proc.kill(); self.proc.wait(); shutil.rmtree(self.profile, ignore_errors=True)


class Tab:
    def __init__(self, browser, session): self.b, self.s = browser, session

    def js(self, expr):
        r = self.b.send('Runtime.evaluate', session=self.s, expression=expr, returnByValue=True, awaitPromise=True)
        if 'exceptionDetails' in r: raise RuntimeError(f'{expr[:80]}: {r["exceptionDetails"]}')
        return r['result'].get('value')

    def front(self):
        "Make this the tab in front, as a person going back to it does (Chromium does not load a background tab's videos)."
        self.b.send('Page.bringToFront', session=self.s)

    def text(self, css): return self.js(f"Array.from(document.querySelectorAll({json.dumps(css)})).map(e => e.innerText).join('\\n')")

    def wait_text(self, css, needle, timeout=120):
        try: return _wait(lambda: needle in (self.text(css) or '') and self.text(css), timeout, f'{needle!r} in {css}')
        except AssertionError as e: raise AssertionError(f'{e}; it read: {self.text(css)!r}') from None

    def click(self, css):
        assert self.js(f"(() => {{ const e = document.querySelector({json.dumps(css)}); if (!e) return false; e.click(); return true; }})()"), css

    def click_text(self, css, text):
        assert self.js(f"(() => {{ const e = Array.from(document.querySelectorAll({json.dumps(css)})).find(e => e.innerText.includes({json.dumps(text)})); "
                       "if (!e) return false; e.click(); return true; })()"), (css, text)

    def upload(self, button_css, paths):
        "Choose `paths` in the FileUpload widget `button_css` through its own file picker."
        self.js(KEEP_PICKER); self.click(button_css)
        root = self.b.send('DOM.getDocument', session=self.s, depth=0)['root']['nodeId']
        node = self.b.send('DOM.querySelector', session=self.s, nodeId=root, selector='input[data-fc-picker]')['nodeId']
        assert node, 'the file picker did not open'
        self.b.send('DOM.setFileInputFiles', session=self.s, nodeId=node, files=[str(p) for p in paths])

    def shot(self, path, css=None):
        "A PNG of the page (or of the element `css`, whole, scrolled or not) at `path`; its pixels as an array."
        clip = None
        if css:
            self.js(f"document.querySelector({json.dumps(css)}).scrollIntoView()"); time.sleep(0.5)   # drawn where it is seen
            r = self.js(f"(() => {{ const r = document.querySelector({json.dumps(css)}).getBoundingClientRect(); "
                        "return [r.left + scrollX, r.top + scrollY, r.width, r.height]; })()")
            clip = dict(x=r[0], y=r[1], width=r[2], height=r[3], scale=1)
        data = self.b.send('Page.captureScreenshot', session=self.s, format='png', captureBeyondViewport=True,
                           **({'clip': clip} if clip else {}))['data']
        Path(path).write_bytes(base64.b64decode(data))
        return np.asarray(Image.open(path).convert('RGB'))


def _drawn(a: np.ndarray) -> float:
    "The share of pixels that are not (near) white: a page whose widgets did not draw is almost blank."
    return float((a.min(-1) < 235).mean())


def _downloaded(folder: Path, name: str, timeout=60) -> bytes:
    p = folder/name
    _wait(lambda: p.exists() and not list(folder.glob('*.crdownload')), timeout, f'the download {name}')
    return p.read_bytes()


def _cli_apply(mask: Path, photos, out: Path, refine: int, env) -> dict:
    cmd = [sys.executable, '-c', 'import sys; from facecloak.cli import main; sys.exit(main())', 'apply', str(mask),
           *map(str, photos), '-o', str(out), '--refine', str(refine), '-q']
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return {p.name: p.read_bytes() for p in out.iterdir()}


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255 ** 2 / max(float(((a - b) ** 2).mean()), 1e-12)))


def _same_clip(got: bytes, want: Path, original: Path, tmp: Path):
    """The page's clip is the CLI's, frame for frame. Not byte for byte: x264 as PyAV drives it gives other bytes for
    the very same frames from run to run (two CLI runs too: the frames handed to the encoder hash the same, the packet
    sizes differ from the second frame on), a few pixels of a frame by up to 30 grey levels, ~55 dB apart, where the
    cloak itself is ~38 dB from the original. So: the same frames, far closer to each other than to the original."""
    (tmp/'page.mp4').write_bytes(got)
    page, cli, orig = (np.stack(list(read_frames(p))).astype(np.float32) for p in (tmp/'page.mp4', want, original))
    assert page.shape == cli.shape == orig.shape, (page.shape, cli.shape, orig.shape)
    assert _psnr(page, cli) > 45 > _psnr(cli, orig) + 3, f'page vs CLI {_psnr(page, cli):.1f} dB, CLI vs original {_psnr(cli, orig):.1f} dB'


def _zip_files(data: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(data)) as z: return {n: z.read(n) for n in z.namelist()}


@pytest.fixture(scope='module')
def env():
    return {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}      # the page's kernel and the CLI alike


def _tail(path: Path, n=4000) -> str:
    return path.read_text(errors='replace')[-n:] if path.exists() else ''


@pytest.fixture(scope='module')
def server(env, tmp_path_factory):
    """`facecloak app --steps 25 --no-browser` on a free localhost port; (url, seconds until it listened, process, log).
    The server's and its kernels' output go to a file: a pipe nobody reads fills up and stops them mid-page."""
    port = _free_port()
    cmd = [sys.executable, '-c', 'import sys; from facecloak.cli import main; sys.exit(main())',
           'app', '--port', str(port), '--no-browser', '--steps', str(STEPS)]
    log = tmp_path_factory.mktemp('app')/'server.log'
    t0 = time.time()
    with open(log, 'w') as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                                start_new_session=True)
    try:
        _wait(lambda: proc.poll() is not None or socket.socket().connect_ex(('127.0.0.1', port)) == 0, 60, 'facecloak app to listen')
        assert proc.poll() is None, _tail(log)
        yield f'http://127.0.0.1:{port}/', t0, proc, log
    finally:
        proc.terminate()                      # `facecloak app` stops its server, which stops its kernels
        try: proc.wait(30)
        except subprocess.TimeoutExpired: pass
        try: os.killpg(proc.pid, 9)           # whatever of that session is left (its own process group)
        except ProcessLookupError: pass


def test_the_page_in_a_browser(server, env, tmp_path):
    from facecloak.apply import DEFAULT_REFINE
    url, t0, _, log = server
    FIGURES.mkdir(exist_ok=True)
    downloads = tmp_path/'downloads'; downloads.mkdir()
    picked = tmp_path/'picked'; picked.mkdir()          # what a person picks: files in a folder of theirs, copied from the data
    me, *photos = [Path(shutil.copy(lfw_photo('Colin_Powell', i), picked)) for i in (1, 2, 3)]
    clip = synthetic_clip(photos, picked/'holiday.mp4', fps=10, seconds=0.5, size=(160, 160))     # 1 s, 10 frames
    bad = tmp_path/'bad'; bad.mkdir()
    (bad/'notes.txt').write_text('not a photo'); (bad/'huge.png').write_bytes(bomb_png(20000, 20000))
    b = Chromium(_chromium(), downloads)
    try:
        tab = b.tab(url)
        # 1. it starts: the page with its photo picker (its start-up time is a benchmark's, not this test's)
        _wait(lambda: tab.js("!!document.querySelector('.fc-me-upload')"), PAGE_WAIT, 'the page')
        started = time.time() - t0
        print(f'facecloak app: page ready {started:.1f} s after the command')
        assert 'Everything stays on this computer' in tab.text('.fc-app') and 'localhost' in tab.text('.fc-app')
        assert 'in our tests (24 people)' in tab.text('.fc-tradeoff')
        assert _drawn(tab.shot(FIGURES/'app_1_start.png', '.fc-app')) > 0.05
        _learn(tab, me, downloads)
        mask = downloads/'my.mask'
        _protect_and_compare(tab, photos, bad, downloads, mask, 'strong', DEFAULT_REFINE, tmp_path, env, shots=True)
        _second_tab(b, tab, url)
        tab.front()                                                   # back to the first tab
        (downloads/'protected.zip').unlink()
        tab.click_text('.fc-mode button', 'Fast')                    # the first tab goes on: fast mode
        _protect_and_compare(tab, photos, bad, downloads, mask, 'fast', 0, tmp_path, env, clip=clip)
        hosts = {urlparse(u).hostname for u in b.requests() if urlparse(u).scheme in ('http', 'https', 'ws', 'wss')}
        assert hosts == {'127.0.0.1'}, f'the page made requests outside this computer: {hosts}'
    except AssertionError as e: raise AssertionError(f'{e}\n--- facecloak app output (end) ---\n{_tail(log)}') from None
    finally: b.close()


def _learn(tab, me, downloads):
    "A photo of you, learning cancelled then run; the cloak downloaded."
    tab.upload('.fc-me-upload', [me])
    tab.wait_text('.fc-me-upload', '(1)', 120)                 # the browser read the file and the widget holds it
    tab.wait_text('.fc-learn-status', 'one face found', 300)   # the kernel loads the detector first: slow on a loaded machine
    tab.click('.fc-learn')
    tab.wait_text('.fc-learn-status', 'Making your cloak', 120)
    tab.click('.fc-learn + .fc-cancel')
    tab.wait_text('.fc-learn-status', 'Cancelled', 600)           # at the first step, after the models load
    assert not tab.js("!!document.querySelector('.fc-mask-download')")        # no cloak from a cancelled run
    tab.click('.fc-learn')
    tab.wait_text('.fc-learn-status', 'Your cloak is ready', 600)
    assert _drawn(tab.shot(FIGURES/'app_2_cloak.png', '.fc-step-cloak')) > 0.05
    tab.click('.fc-mask-download')
    _downloaded(downloads, 'my.mask')
    from facecloak.cloak import Mask
    assert Mask.load(downloads/'my.mask').epsilon == 12 / 255                 # the dial's default setting (learn_mask's)


def _protect_and_compare(tab, photos, bad, downloads, mask, mode, refine, tmp_path, env, shots=False, clip=None):
    """Protect two photos, two bad files and `clip` (a video, when given); per-file lines, rows and sentences (the
    clip's row: both clips playable, its magnifier and difference; a screenshot); the zip against `facecloak apply`."""
    files = [*photos, bad/'notes.txt', bad/'huge.png', *([clip] if clip else [])]
    tab.upload('.fc-files-upload', files)
    tab.wait_text('.fc-protect-status', f'{len(files)} file(s) chosen', 120)
    tab.click('.fc-protect')
    tab.wait_text('.fc-protect-status', 'Checking', 600)          # this run's words, not the last run's 'Done'
    tab.wait_text('.fc-protect-status', 'Done:', 600)
    notes, done = tab.text('.fc-notes'), [*photos, *([clip] if clip else [])]
    assert 'notes.txt: not an image' in notes and 'huge.png: image too large' in notes, notes
    assert notes.count('Skipped; the other files are not affected') == 2 and notes.count('protected as') == len(done), notes
    sentences = tab.text('.fc-sentence').splitlines()
    assert len(sentences) == len(done) and all('face-recognition model' in s and 'SSIM' in s for s in sentences), sentences
    n = len(done)
    assert tab.js("document.querySelectorAll('.fc-row .fc-mag').length") == n == tab.js("document.querySelectorAll('.fc-row .fc-diff').length")
    assert tab.js("Array.from(document.querySelectorAll('.fc-row .fc-mag, .fc-row .fc-diff')).every(i => i.naturalWidth > 0 && "
                  "i.getBoundingClientRect().width == i.naturalWidth)"), 'a face or difference view not shown at 100 %'
    if shots:
        assert _drawn(tab.shot(FIGURES/'app_3_protect.png', '.fc-step-protect')) > 0.02
        assert _drawn(tab.shot(FIGURES/'app_4_results.png', '.fc-step-results')) > 0.1
    if clip: _video_row(tab, clip)
    tab.click('.fc-zip-link a')
    got = _zip_files(_downloaded(downloads, 'protected.zip'))
    want = _cli_apply(mask, done, tmp_path/f'cli_{mode}', refine, env)
    assert sorted(got) == sorted(want) == sorted(p.name for p in done)
    for p in photos: assert got[p.name] == want[p.name], f'{mode}: {p.name} differs from facecloak apply --refine {refine}'
    for p in photos: assert not Image.open(io.BytesIO(got[p.name])).getexif(), 'EXIF left in a protected photo'
    if clip: _same_clip(got[clip.name], tmp_path/f'cli_{mode}'/clip.name, clip, tmp_path)


def _video_row(tab, clip):
    "The clip's row: its name, two players whose clips the browser decodes, the magnifier, the difference, one sentence; a screenshot."
    row = '.fc-video-row'
    assert tab.js(f"document.querySelectorAll('{row}').length") == 1
    assert clip.name in tab.text(row) and 'face-recognition model' in tab.text(f'{row} .fc-sentence')
    assert tab.js(f"document.querySelectorAll('{row} .fc-mag').length") == 1 == tab.js(f"document.querySelectorAll('{row} .fc-diff').length")
    assert tab.js(f"document.querySelectorAll('{row} video').length") == 2
    _wait(lambda: tab.js(f"Array.from(document.querySelectorAll('{row} video')).every(v => v.readyState >= 2 && v.videoWidth == 160)"),
          60, 'both clips to load in their players')            # the browser decodes them: a first frame to show
    assert _drawn(tab.shot(FIGURES/'app_5_video.png', row)) > 0.1


def _second_tab(b, tab, url):
    "A second tab: a fresh page of its own (its own kernel); a bad photo there leaves the first tab as it was."
    before = tab.text('.fc-app')
    tab2 = b.tab(url)
    _wait(lambda: tab2.js("!!document.querySelector('.fc-me-upload')"), 60, 'the second page')
    assert tab2.text('.fc-results') == '' and 'Your cloak is ready' not in tab2.text('.fc-app')
    notes = Path(tempfile.mkdtemp())/'notes.txt'; notes.write_text('not a photo')
    tab2.upload('.fc-me-upload', [notes])
    tab2.wait_text('.fc-learn-status', 'notes.txt: not an image', 300)
    tab2.click('.fc-protect')
    tab2.wait_text('.fc-protect-status', 'First make your cloak', 120)
    assert tab.text('.fc-app') == before, 'the first tab changed when the second one was used'

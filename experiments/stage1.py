"""Stage 1 under the shipped `learn_mask`: which training set (and which identity reference) protects a
person's *other* photos, and how far each synthetic operation moves an image away from the person.
The experiment behind experiments/stage1.md; its records are data/eval/stage1_dev.jsonl (`--seed 0`),
data/eval/stage1_heldout.jsonl (`--seed 1`) and data/eval/stage1_drift_heldout.json (`drift --seed 1`).

    # protection of training sets, each "name;set[;key=value...]" (values are Python literals)
    python experiments/stage1.py protect 'aug;aug15' 'syn;syn15' 'real;real4' 'syn_refreal;syn15;reference="real4"' \
        --people 12 --out /tmp/stage1.jsonl
    # identity drift of each offline operation, measured against the centre of the person's other photos
    python experiments/stage1.py drift --people 12

Sets are '+'-joined parts after the aligned photo, which always comes first: `augN` (N 2D augmentations,
`facecloak.cloak.augment_set`), `synN[@strength[@max_yaw[@p_occlude]]]` (N offline synthetic images,
`facecloak.synth.generate`), `realN` (N more real photos of the person), `selN` (the N of 3N offline images closest to the photo
on the surrogates: the least drift), or one operation alone, N times:
`trN` (transfer-bank variation), `poN` (3D pose), `rlN` (relight), `exN` (expression); and oracle transfers
from the person's own N other photos onto the photo: `ogN` (their pose/expression), `olN` (their light), `oaN` (both);
and blends `moN@alpha` / `mrN@alpha`: the photo mixed (weight alpha, default 0.3) with one photo each of N LFW
look-alikes (nearest on the surrogates) / N random LFW people, warped onto its landmarks. `reference=` takes a set
spec too (e.g. "real4", "photo") and is passed to `learn_mask(reference=...)`.

Protocol: `facecloak.evaluate` (JPEG q=90 probes, faces detected again, gallery of the subjects' gallery photos
plus `--distractors` LFW distractors, ε = 8/255, surrogates `SURROGATES`, black-box = the other targets).
`--seed 0` draws `--people` of the 20 evaluation subjects of `06_evaluate` (the development set);
`--seed K > 0` takes the first `--people` of `subjects(60, seed=K)` that are NOT among those 20 (a held-out set;
seeds overlap, so take more held-out people with `--offset`: `--seed 1 --offset 12` is the next 12).
One JSON line per (set, person) is appended to `--out` (resumable); a summary is printed as JSON.
"""
import argparse, ast, json, sys, time, hashlib
from pathlib import Path
import numpy as np, torch, torch.nn.functional as F
from facecloak import evaluate as E, synth as S
from facecloak.cloak import aligned_images, augment_set, bank_similarity, build_anchor_bank, learn_mask
from facecloak.models import embed, load_model, resolve_surrogates, TARGETS


def people(n, seed, offset=0):
    subs = E.subjects(20, max_probes=8, seed=0)
    if seed == 0: gallery, pick = subs, [subs[i] for i in np.random.default_rng(1).permutation(20)[offset:offset + n]]
    else:
        dev = {s.name for s in subs}
        gallery = pick = [s for s in E.subjects(60, max_probes=8, seed=seed) if s.name not in dev][offset:offset + n]
    if len(pick) < n: raise SystemExit(f'only {len(pick)} people at --seed {seed} --offset {offset}, {n} asked for')
    return gallery, pick


def one_op(fc, kind, n, strength, bank):
    yaws = np.random.default_rng(0).permutation(np.linspace(-20, 20, max(n, 2)))
    out = []
    for i in range(n):
        rng = np.random.default_rng([0, i])
        if kind == 'tr': f, _ = S.transfer(fc, bank, strength * rng.uniform(0.6, 1.), rng=rng)
        elif kind == 'po': f, _ = S.pose(fc, strength, yaw=float(yaws[i]), rng=rng)
        elif kind == 'rl': f, _ = S.relight(fc, strength * rng.uniform(0.4, 1.), rng=rng)
        elif kind == 'ex': f, _ = S.expression(fc, strength * rng.uniform(0.4, 1.), rng=rng)
        else: raise ValueError(f'unknown operation {kind!r}')
        out.append(S.finish(f))
    return torch.cat(out)


@torch.no_grad()
def most_like_photo(photo, n, k=3):
    "The `n` of `k*n` offline synthetic images whose surrogate embeddings are closest to the photo's (least identity drift)."
    g = S.generate(photo, n * k, seed=0, device='cpu').images
    _, mods = resolve_surrogates(None, 'cpu')
    score = torch.stack([F.normalize(m(g), dim=-1) @ F.normalize(m(g[:1]), dim=-1)[0] for m in mods]).mean(0)
    return g[score[1:].argsort(descending=True)[:n] + 1]


def own_transfer(photo, reals, geometry=True, light=True):
    "Oracle transfer: the photo moved by the pose/expression (`geometry`) and light changes of the person's OWN other photos."
    fc = S.prepare(photo, device='cpu')
    acc = dict(src=[], dst=[], ratio=[], gain=[])
    for r in reals:
        try: c = S.prepare(r, device='cpu')
        except (ValueError, OSError): continue
        pr = S.bank_pairs([fc, c], max_median=1., max_point=10.)
        if pr['src']:
            for k in acc: acc[k].append(pr[k][0])      # the first pair is photo -> real
    if not acc['src']: return torch.zeros(0, 3, 112, 112)
    bank = S.TransferBank(*(torch.stack(acc[k]) for k in ('src', 'dst', 'ratio', 'gain')))
    return torch.cat([S.finish(S.transfer(fc, bank, 1., index=i, geometry=geometry, light=light, max_disp=1.)[0])
                      for i in range(len(bank))])


def identity_centre(mods, names, x) -> dict:
    "{surrogate: (1,D)} normalised mean embedding of the aligned images `x`: the identity `learn_mask` pushes away from."
    return {n: F.normalize(e.mean(0, keepdim=True), dim=-1).cpu() for n, e in zip(names, embed(mods, x))}


def morphs(photo, n, alpha, exclude=(), nearest=True):
    "The photo blended (weight `alpha`) with one photo each of `n` LFW look-alikes (or random people), warped onto its landmarks."
    names, mods = resolve_surrogates(None, 'cpu')
    bank = build_anchor_bank(None, 'lfw', exclude=exclude, device='cpu', progress=False)
    fc = S.prepare(photo, device='cpu')
    sim = bank_similarity(identity_centre(mods, names, S.finish(fc)), bank)
    order = sim.argsort(descending=True).tolist() if nearest else np.random.default_rng(0).permutation(len(sim)).tolist()
    out = []
    for j in order:
        if len(out) == n: break
        try: c = S.prepare(bank.sources[j][0], device='cpu')
        except (ValueError, OSError): continue
        if c.landmarks != 'pfld': continue
        w = S.tps_warp(c.image, c.lm, fc.lm)
        out.append(S.finish(fc.replace((1 - alpha) * fc.image + alpha * w)))
    if len(out) < n: raise ValueError(f'only {len(out)} of {n} bank people have usable landmarks')
    return torch.cat(out)


class Sets:
    "Training sets of one person, built from a spec and cached on disk."
    def __init__(self, cache): self.cache = Path(cache); self.cache.mkdir(parents=True, exist_ok=True)
    def _cached(self, key, fn):
        p = self.cache / (hashlib.md5(key.encode()).hexdigest()[:12] + '.pt')
        if p.exists(): return torch.load(p, weights_only=True)
        x = fn(); torch.save(x, p); return x
    def build(self, s, spec):
        x0 = self._cached(f'{s.name}|photo', lambda: aligned_images(s.learn)[:1])
        parts = [x0]
        for p in spec.split('+'):
            if p == 'photo': continue
            if p.startswith('aug'): parts.append(augment_set(x0, int(p[3:]) + 1, seed=0)[1:])
            elif p.startswith('syn'):
                n, *rest = p[3:].split('@')
                kw = {k: float(v) for k, v in zip(('strength', 'max_yaw', 'p_occlude'), rest) if v}
                parts.append(self._cached(f'{s.name}|{p}', lambda: S.generate(s.learn, int(n), seed=0, device='cpu', **kw).images[1:]))
            elif p.startswith('sel'):
                parts.append(self._cached(f'{s.name}|{p}', lambda: most_like_photo(s.learn, int(p[3:]))))
            elif p.startswith('real'): parts.append(self._cached(f'{s.name}|real', lambda: aligned_images(list(s.extra)))[:int(p[4:])])
            elif p[:2] in ('mo', 'mr'):
                n, _, al = p[2:].partition('@')
                parts.append(self._cached(f'{s.name}|{p}', lambda: morphs(s.learn, int(n), float(al or 0.3), exclude=[s.name],
                                                                          nearest=p[1] == 'o')))
            elif p[:2] in ('og', 'ol', 'oa'):
                parts.append(self._cached(f'{s.name}|{p}', lambda: own_transfer(s.learn, list(s.extra)[:int(p[2:])],
                                                                                 geometry=p[1] in 'ga', light=p[1] in 'la')))
            elif p[:2] in ('tr', 'po', 'rl', 'ex'):
                n, _, st = p[2:].partition('@')
                parts.append(self._cached(f'{s.name}|{p}', lambda: one_op(S.prepare(s.learn, device='cpu'), p[:2], int(n),
                                                                            float(st or 1), S.load_bank())))
            else: raise ValueError(f'unknown set part {p!r}')
        return torch.cat(parts)


def protect(a):
    subs, pick = people(a.people, a.seed, a.offset)
    models = {t: load_model(t, device=a.device) for t in TARGETS}
    gal = E.Gallery(models, subs, n_distractors=a.distractors, seed=0)
    sets, out = Sets(a.cache), Path(a.out)
    done = {(r['set'], r['person']) for r in map(json.loads, out.read_text().splitlines())} if out.exists() else set()
    for item in a.sets:
        name, spec, *kv = item.split(';')
        kw = {k: ast.literal_eval(v) for k, v in (i.split('=', 1) for i in kv)}
        for s in pick:
            if (name, s.name) in done: continue
            x = sets.build(s, spec)
            lk = dict(kw)
            if isinstance(lk.get('reference'), str): lk['reference'] = sets.build(s, lk['reference'])
            E.METHODS['_stage1'] = lambda sub, eps, sur, dev, **k: learn_mask(sub.learn, images=x, epsilon=eps, surrogates=sur,
                                                                              device=dev, progress=False, **{**lk, **k})
            t = time.time()
            recs = E.evaluate_subject(s, '_stage1', a.eps / 255, targets=list(TARGETS), surrogates=None, gallery=gal,
                                      models=models, lpips_net=None, device=a.device)
            P = {r['target']: (r['top1'], r['box']) for r in recs if r['kind'] == 'protection'}
            q = next(r for r in recs if r['kind'] == 'quality')
            row = dict(set=name, spec=spec, kw={k: str(v) for k, v in kw.items()}, person=s.name, seed=a.seed, n=len(x),
                       seconds=round(time.time() - t, 1), ssim_face=q['ssim_face'], per_target=P,
                       black=float(np.mean([v for v, b in P.values() if b == 'black'])),
                       white=float(np.mean([v for v, b in P.values() if b == 'white'])))
            with open(out, 'a') as f: f.write(json.dumps(row) + '\n')
            print(name, s.name, f"black {row['black']:.3f} white {row['white']:.3f} {row['seconds']}s", file=sys.stderr, flush=True)
    rows = [r for r in map(json.loads, out.read_text().splitlines()) if r['person'] in {s.name for s in pick} and r['seed'] == a.seed]
    summ = {}
    for name in dict.fromkeys(r['set'] for r in rows):
        rs = [r for r in rows if r['set'] == name]
        summ[name] = dict(people=len(rs), black_top1=round(float(np.mean([r['black'] for r in rs])), 3),
                          white_top1=round(float(np.mean([r['white'] for r in rs])), 3),
                          ssim_face=round(float(np.mean([r['ssim_face'] for r in rs])), 3))
    print(json.dumps(dict(mode='protect', seed=a.seed, people=[s.name for s in pick], summary=summ)))


OPS = {
    'pose': lambda fc, r, b: S.pose(fc, 1., rng=r)[0],
    'expression': lambda fc, r, b: S.expression(fc, r.uniform(0.4, 1), rng=r)[0],
    'relight': lambda fc, r, b: S.relight(fc, r.uniform(0.4, 1), rng=r)[0],
    'transfer': lambda fc, r, b: S.transfer(fc, b, r.uniform(0.6, 1), rng=r)[0],
    'transfer_geometry': lambda fc, r, b: S.transfer(fc, b, r.uniform(0.6, 1), rng=r, light=False)[0],
    'transfer_light': lambda fc, r, b: S.transfer(fc, b, r.uniform(0.6, 1), rng=r, geometry=False)[0],
    'camera': lambda fc, r, b: S.camera(fc, r.uniform(0.2, 0.8), rng=r)[0],
    'occlude': lambda fc, r, b: S.occlude(fc, r.uniform(0.2, 0.6), rng=r)[0],
}


@torch.no_grad()
def drift(a):
    "Mean change of the cosine to the centre of the person's other photos: each operation vs the photo, real photos vs the photo."
    _, pick = people(a.people, a.seed, a.offset)
    ms = {t: load_model(t, device='cpu') for t in a.models.split(',')}
    bank = S.load_bank()
    KEYS = [*OPS, 'real photos', 'own transfer, geometry', 'own transfer', 'look-alike morph (0.3)', 'offline set (15)']
    R = {(k, t): [] for k in KEYS for t in ms}
    for s in pick:
        fc = S.prepare(s.learn, device='cpu')
        probes, ok = E.attacker_align(s.probes)
        real = aligned_images(list(s.extra))
        xs = {k: torch.cat([S.finish(f(fc, np.random.default_rng([7, i]), bank)) for i in range(a.samples)]) for k, f in OPS.items()}
        xs['real photos'] = real
        xs['own transfer, geometry'] = own_transfer(fc, list(s.extra), light=False)
        xs['own transfer'] = own_transfer(fc, list(s.extra))
        xs['look-alike morph (0.3)'] = morphs(fc, a.samples, 0.3, exclude=[s.name])
        xs['offline set (15)'] = S.generate(fc, 15, seed=0, device='cpu').images[1:]
        for t, m in ms.items():
            c = F.normalize(F.normalize(m(probes[ok]), dim=-1).mean(0), dim=0)
            e0 = float(F.normalize(m(S.finish(fc)), dim=-1)[0] @ c)
            for k, x in xs.items():
                if len(x): R[k, t].append(float((F.normalize(m(x), dim=-1) @ c).mean()) - e0)
    out = {k: {t: round(float(np.mean(R[k, t])), 3) for t in ms} for k in KEYS}
    print(json.dumps(dict(mode='drift', seed=a.seed, people=[s.name for s in pick], samples=a.samples, dcos_to_centre=out)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('mode', choices=['protect', 'drift'])
    ap.add_argument('sets', nargs='*', default=['aug;aug15', 'syn;syn15', 'real;real4'])
    ap.add_argument('--people', type=int, default=12); ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--offset', type=int, default=0, help='skip this many people of the drawn list (more held-out people)')
    ap.add_argument('--eps', type=float, default=8.); ap.add_argument('--distractors', type=int, default=1000)
    ap.add_argument('--out', default='stage1.jsonl'); ap.add_argument('--device', default=None)
    ap.add_argument('--cache', default=None, help='where built sets are kept (default: cache_dir()/stage1)')
    ap.add_argument('--models', default='mobilefacenet_ms1m,edgeface_xs'); ap.add_argument('--samples', type=int, default=5)
    a = ap.parse_args(argv)
    if a.cache is None:
        from facecloak.assets import cache_dir
        a.cache = str(cache_dir() / 'stage1')
    (protect if a.mode == 'protect' else drift)(a)


if __name__ == '__main__': main()

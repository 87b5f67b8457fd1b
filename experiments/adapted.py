"""Issue #38: a recogniser adapted to cloaks. An attacker who downloaded facecloak cloaks photos of OTHER people with
its default, fine-tunes one black-box model (EdgeFace-XS) to see through those cloaks, then attacks with it.

    python experiments/adapted.py prepare --people 64      # other people's clean + cloaked crops (resumable)
    python experiments/adapted.py train --minutes 15       # the fine-tune (resumable; keeps the best held-out step)
    python experiments/adapted.py lfw                      # clean LFW accuracy, base vs adapted; the FAR thresholds
    facecloak eval --split test --subjects 24 --probes 5 --sweep '' --conditions clean --distractors 500 \\
        --methods 'none,facecloak,facecloak[refine=20],pgd' --targets edgeface_xs,edgeface_xs_adapted \\
        --plugins experiments/adapted.py --out data/eval/test_adapted.json.gz
    python experiments/adapted.py table data/eval/test_adapted.json.gz

Imported as an eval plugin (`--plugins experiments/adapted.py`) it registers the model `edgeface_xs_adapted` (loader,
asset, LFW thresholds once `lfw` has measured them) that reads the fine-tuned weights
$FACECLOAK_CACHE_DIR/adapted/edgeface_xs_adapted.safetensors; a missing file is an `AssetNotFoundError` (a
FileNotFoundError) that names the file and the commands that make it.

Data: the other people are LFW people with the 'anchor' role (`facecloak.assets.lfw_roles`: fewer than 10 photos, so
never in the dev/test splits, which need 12; never a gallery distractor, which is the other role) and at least 4
photos. Each person's first photo learns a mask with the 'quick' preset (20 steps, what the widgets use; the full
60-step learn is too slow for this many people on one CPU thread), their photos 2-4 are protected with the default
`Mask.apply` (20 refine steps over the head region), written as JPEG q90 as the eval does, and re-detected and aligned
the way the attacker does (`attacker_align`: MTCNN, ArcFace template, 112x112); the clean photos likewise.
"""
from __future__ import annotations
import argparse, hashlib, json, sys, tempfile, time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from facecloak import models as M
from facecloak.assets import REGISTRY, Asset, AssetNotFoundError, cache_dir, lfw_people, lfw_roles, register as register_asset, sha256sum

NAME, BASE, VARIANT = 'edgeface_xs_adapted', 'edgeface_xs', 'edgenext_x_small'
MIN_PHOTOS, N_PROTECT, VAL_SHARE = 4, 3, 0.15
MAKE = ("python experiments/adapted.py prepare --people 64 && python experiments/adapted.py train --minutes 15 "
        "&& python experiments/adapted.py lfw")


def workdir() -> Path: return cache_dir()/'adapted'
def weights_file() -> Path: return workdir()/f'{NAME}.safetensors'
def meta_file() -> Path: return workdir()/f'{NAME}.json'


# ---------------------------------------------------------------- the plugin: the adapted model as a target
def _load_adapted(path, name):
    path = Path(path)
    if not path.is_file():
        raise AssetNotFoundError(f"{name}: the fine-tuned weights {path} do not exist; make them with: {MAKE}")
    from safetensors.torch import load_file
    net = M.EdgeFace(VARIANT); net.load_state_dict(load_file(str(path)), strict=True)
    return M.FaceModel(net, name, 512, mean=(0.5,) * 3, std=(0.5,) * 3, source=str(path))


def register() -> None:
    "Register `edgeface_xs_adapted`: its loader, its asset (the file under $FACECLOAK_CACHE_DIR/adapted/) and its LFW thresholds."
    f, meta = weights_file(), read_meta()
    base = REGISTRY[BASE]
    register_asset(Asset(NAME, str(f), 'recognition', meta.get('sha256'), None, base.license,
                         f"{BASE} ({base.sha256[:12]}) fine-tuned on cloaked photos of other people: experiments/adapted.py",
                         'EdgeFace-XS adapted to facecloak cloaks (an attacker who adapts, issue #38)', dict(base.inputs),
                         manual=f"make {f} with: {MAKE}"))      # an absolute filename: asset_path looks there and only there
    M.LOADERS[NAME] = _load_adapted
    if 'thresholds' in meta: M.LFW_THRESHOLDS[NAME] = dict(meta['thresholds'])


def read_meta() -> dict:
    try: return json.loads(meta_file().read_text())
    except (FileNotFoundError, ValueError): return {}


def write_meta(**kw) -> dict:
    meta = {**read_meta(), **kw}
    workdir().mkdir(parents=True, exist_ok=True)
    tmp = meta_file().with_suffix('.tmp'); tmp.write_text(json.dumps(meta, indent=1)); tmp.replace(meta_file())
    return meta


register()


# ---------------------------------------------------------------- step 1: other people's clean and cloaked crops
def other_people(n: int | None = None, seed: int = 0) -> list[str]:
    "LFW 'anchor' people (never evaluated, never a gallery distractor) with >= `MIN_PHOTOS` photos, in a seeded order."
    people, roles = lfw_people(), lfw_roles()
    names = sorted(k for k, r in roles.items() if r == 'anchor' and len(people[k]) >= MIN_PHOTOS)
    names = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    return names if n is None else names[:n]


def is_val(name: str) -> bool:
    "The attacker's held-out people (~15 %), by a hash of the name (stable whatever the number prepared)."
    return int(hashlib.sha1(name.encode()).hexdigest(), 16) % 100 < VAL_SHARE * 100


def prepare_person(name: str, tmp: Path) -> dict:
    from facecloak import cloak
    from facecloak.attacker import attacker_align
    ims = lfw_people()[name]
    t0 = time.time()
    mask = cloak.learn_mask(ims[0], progress=False, device='cpu', **cloak.preset('quick'))
    t_learn = time.time() - t0
    clean, prot = [], []
    for p in ims[1:1 + N_PROTECT]:
        try: im = mask.apply(p, device='cpu')        # the default: 20 refine steps over the head region
        except Exception as e: print(f'  {p.name}: not protected ({type(e).__name__}: {e})', flush=True); continue
        out = tmp/f'{p.stem}.jpg'; im.convert('RGB').save(out, 'JPEG', quality=90)     # as the eval writes them
        clean.append(p); prot.append(out)
    xc, fc = attacker_align(clean, cache=True) if clean else (torch.empty(0, 3, 112, 112), torch.empty(0, dtype=torch.bool))
    xp, fp = attacker_align(prot, cache=False) if prot else (torch.empty(0, 3, 112, 112), torch.empty(0, dtype=torch.bool))
    ok = (fc & fp) if len(clean) else fc
    return dict(name=name, clean=xc[ok].half(), cloaked=xp[ok].half(), photos=[p.name for p, o in zip(clean, ok.tolist()) if o],
                learn_photo=ims[0].name, learn_s=t_learn, total_s=time.time() - t0, missed=int((~ok).sum()))


def prepare(n: int, seed: int = 0) -> None:
    d = workdir()/'data'; d.mkdir(parents=True, exist_ok=True)
    names, t0 = other_people(n, seed), time.time()
    for i, name in enumerate(names):
        f = d/f'{name}.pt'
        if f.exists(): continue
        with tempfile.TemporaryDirectory() as tmp: r = prepare_person(name, Path(tmp))
        torch.save(r, f.with_suffix('.tmp')); f.with_suffix('.tmp').replace(f)
        print(f"[{i + 1}/{len(names)}] {name}: {len(r['photos'])} pairs ({r['missed']} missed), learn {r['learn_s']:.1f}s, "
              f"all {r['total_s']:.1f}s; elapsed {(time.time() - t0) / 60:.1f} min", flush=True)


def load_pairs(names=None) -> tuple[dict, dict]:
    "{'train'|'val': (clean, cloaked, person index)} of every prepared person (or `names`), and the people of each."
    files = sorted((workdir()/'data').glob('*.pt'))
    sets = {'train': ([], [], []), 'val': ([], [], [])}
    people = {'train': [], 'val': []}
    for f in files:
        if names is not None and f.stem not in names: continue
        r = torch.load(f, weights_only=True)
        if not len(r['clean']): continue
        k = 'val' if is_val(r['name']) else 'train'
        c, p, i = sets[k]
        c.append(r['clean'].float()); p.append(r['cloaked'].float()); i += [len(people[k])] * len(r['clean'])
        people[k].append(r['name'])
    return {k: (torch.cat(c), torch.cat(p), torch.tensor(i)) for k, (c, p, i) in sets.items() if c}, people


# ---------------------------------------------------------------- step 2: the fine-tune
def _student(teacher: M.FaceModel) -> M.FaceModel:
    net = M.EdgeFace(VARIANT); net.load_state_dict(teacher.backbone.state_dict())
    m = M.FaceModel(net, NAME, 512, mean=(0.5,) * 3, std=(0.5,) * 3)
    for q in m.backbone.parameters(): q.requires_grad_(True)
    return m          # eval mode: EdgeNeXt has LayerNorms only, nothing that batch statistics would change


@torch.no_grad()
def _emb(m, x, bs=64): return torch.cat([m(x[i:i + bs]) for i in range(0, len(x), bs)])


@torch.no_grad()
def held_out(student, teacher, val) -> dict:
    "Mean cosines on the held-out people: the student on cloaked / clean crops against the frozen teacher on the clean crop."
    xc, xp, _ = val
    t, sc, sp = _emb(teacher, xc), _emb(student, xc), _emb(student, xp)
    return dict(cos_cloaked=float((sp * t).sum(1).mean()), cos_clean=float((sc * t).sum(1).mean()))


def train(minutes: float = 20, lr: float = 2e-5, batch: int = 32, seed: int = 0, every: int = 50) -> dict:
    """Fine-tune `edgeface_xs` for `minutes` of wall time (resumable): loss (1-cos(s(cloaked), t(clean))) + (1-cos(s(clean), t(clean))),
    Adam, random flips; every `every` steps the held-out loss is measured and the best step so far is what is saved."""
    data, people = load_pairs()
    (xc, xp, _), val = data['train'], data['val']
    teacher = M.load_model(BASE, device='cpu', cache=False)
    student = _student(teacher)
    opt = torch.optim.Adam([q for q in student.parameters() if q.requires_grad], lr=lr)
    ck = workdir()/'checkpoint.pt'
    t_clean = {False: _emb(teacher, xc), True: _emb(teacher, xc.flip(-1))}        # the teacher's targets, both ways round
    state = dict(step=0, seconds=0.0, log=[])
    best = None            # (held-out loss, step, weights): the attacker keeps the step its own held-out people like best
    if ck.exists():
        c = torch.load(ck, weights_only=True)
        if c['people'] != people['train']: raise SystemExit(f'{ck} was made with other people: delete it to start again')
        student.backbone.load_state_dict(c['student']); opt.load_state_dict(c['opt'])
        state = dict(step=c['step'], seconds=c['seconds'], log=c['log'])
        if 'best' in c: best = (c['best_loss'], c['best_step'], c['best'])
        print(f"resumed at step {state['step']} ({state['seconds'] / 60:.1f} min)", flush=True)
    else:
        before = held_out(teacher, teacher, val)
        state['log'].append(dict(step=0, minutes=0.0, loss=None, **before))
        print(f"{len(xc)} training pairs ({len(people['train'])} people), {len(val[0])} held-out pairs ({len(people['val'])} people); "
              f"before: held-out cos(cloaked, clean) {before['cos_cloaked']:.4f}", flush=True)
    gen = torch.Generator().manual_seed(seed + state['step'])
    t0, losses = time.time() - state['seconds'], []

    def save():
        state['seconds'] = time.time() - t0
        b = {} if best is None else dict(best_loss=best[0], best_step=best[1], best=best[2])
        torch.save(dict(student=student.backbone.state_dict(), opt=opt.state_dict(), people=people['train'], **state, **b), ck.with_suffix('.tmp'))
        ck.with_suffix('.tmp').replace(ck)

    while time.time() - t0 < minutes * 60:
        i = torch.randint(len(xc), (batch,), generator=gen)
        flip = torch.rand(batch, generator=gen) < 0.5
        c, p = xc[i].clone(), xp[i].clone()
        c[flip], p[flip] = c[flip].flip(-1), p[flip].flip(-1)
        t = torch.where(flip[:, None], t_clean[True][i], t_clean[False][i])
        e = student(torch.cat([p, c]))
        loss = (1 - (e[:batch] * t).sum(1)).mean() + (1 - (e[batch:] * t).sum(1)).mean()
        opt.zero_grad(); loss.backward(); opt.step()
        losses.append(loss.item()); state['step'] += 1
        if state['step'] % every == 0:
            h = held_out(student, teacher, val)
            state['log'].append(dict(step=state['step'], minutes=(time.time() - t0) / 60, loss=float(np.mean(losses)), **h)); losses = []
            print(f"step {state['step']} {state['log'][-1]['minutes']:.1f} min: loss {state['log'][-1]['loss']:.4f}, held-out "
                  f"cos(s(cloaked), t(clean)) {h['cos_cloaked']:.4f}, cos(s(clean), t(clean)) {h['cos_clean']:.4f}", flush=True)
            vl = 2 - h['cos_cloaked'] - h['cos_clean']       # the training loss, on the held-out people
            if best is None or vl < best[0]: best = (vl, state['step'], {k: v.clone() for k, v in student.backbone.state_dict().items()})
            save()
    save()
    last = held_out(student, teacher, val)
    if best is not None: student.backbone.load_state_dict(best[2])
    after = held_out(student, teacher, val)
    from safetensors.torch import save_file
    f = weights_file()
    save_file({k: v.detach().contiguous() for k, v in student.backbone.state_dict().items()}, str(f))
    for g in (cache_dir()/'gallery').glob(f'{NAME}-*.pt'): g.unlink()      # galleries embedded by an earlier fine-tune
    meta = write_meta(file=f.name, sha256=sha256sum(f), base=BASE, base_sha256=REGISTRY[BASE].sha256, seed=seed, lr=lr, batch=batch,
                      steps=state['step'], minutes=round(state['seconds'] / 60, 2), threads=torch.get_num_threads(),
                      loss='(1-cos(s(cloaked), t(clean))) + (1-cos(s(clean), t(clean))), flips', cloaks="learn_mask(first photo, "
                      "**preset('quick')) then Mask.apply(photo) (default refine 20), JPEG q90, attacker_align (MTCNN)",
                      people_train=people['train'], people_val=people['val'], pairs_train=len(xc), pairs_val=len(val[0]),
                      kept_step=best[1] if best is not None else state['step'], held_out_before=state['log'][0],
                      held_out_after=after, held_out_last=last, log=state['log'])
    meta.pop('thresholds', None); meta_file().write_text(json.dumps(meta, indent=1))    # thresholds of older weights: measure again (lfw)
    print(f"after {state['step']} steps ({state['seconds'] / 60:.1f} min), kept step {meta['kept_step']}: held-out cos(s(cloaked), t(clean)) "
          f"{state['log'][0]['cos_cloaked']:.4f} -> {after['cos_cloaked']:.4f}, cos(s(clean), t(clean)) {after['cos_clean']:.4f}; wrote {f}", flush=True)
    return meta


# ---------------------------------------------------------------- step 3: clean accuracy on LFW pairs, and the thresholds
def lfw() -> dict:
    register()
    r = M.lfw_verification([BASE, NAME], device='cpu', progress=False)
    keep = ('n_pairs', 'acc', 'acc_std', 'acc_best', 'tar@far1e-3', 'tar@far1e-2', 'thr@far1e-2', 'thr@far1e-3')
    out = {m: {k: v[k] for k in keep} for m, v in r.items()}
    write_meta(lfw=out, thresholds={'far1e-2': round(out[NAME]['thr@far1e-2'], 4), 'far1e-3': round(out[NAME]['thr@far1e-3'], 4)})
    register()
    print(lfw_markdown(out))
    return out


def lfw_markdown(out: dict) -> str:
    rows = ['| model | LFW pairs | accuracy (10-fold) | TAR@FAR1e-3 | TAR@FAR1e-2 | threshold FAR1e-2 | threshold FAR1e-3 |', '|---|---|---|---|---|---|---|']
    for m in (BASE, NAME):
        v = out[m]
        rows.append(f"| {m} | {v['n_pairs']} | {v['acc']:.4f} ± {v['acc_std']:.4f} | {v['tar@far1e-3']:.4f} | {v['tar@far1e-2']:.4f} | "
                    f"{v['thr@far1e-2']:.4f} | {v['thr@far1e-3']:.4f} |")
    return '\n'.join(rows)


# ---------------------------------------------------------------- step 5: protection against the adapted model, paired
METHOD_NAMES = {'none': 'none', 'facecloak': 'plain mask', 'facecloak[refine=20]': 'default (refine 20)', 'pgd': 'per-photo PGD'}


def paired_table(rec, base: str = BASE, adapted: str = NAME, condition: str = 'clean') -> list[dict]:
    "Per method: mean top-1 protection against `base` and `adapted` over the people who have both, the paired difference ± SE."
    top = {}
    for r in rec['records']:
        if r['kind'] == 'protection' and r.get('condition', 'clean') == condition and r['target'] in (base, adapted):
            top[(r['method'], r['person'], r['target'])] = r['top1']
    methods = list(dict.fromkeys(m for m, _, _ in top))
    methods = [m for m in METHOD_NAMES if m in methods] + [m for m in methods if m not in METHOD_NAMES]
    rows = []
    for m in methods:
        people = sorted(p for (mm, p, t) in top if mm == m and t == base and (m, p, adapted) in top)
        b = np.array([top[(m, p, base)] for p in people]); a = np.array([top[(m, p, adapted)] for p in people])
        d = a - b
        rows.append(dict(method=m, people=len(people), base=float(b.mean()), adapted=float(a.mean()), diff=float(d.mean()),
                         se=float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float('nan'),
                         up=int((d > 0).sum()), down=int((d < 0).sum())))
    return rows


def markdown(rec) -> str:
    rows = paired_table(rec)
    out = [f'| method | people | protection vs {BASE} | protection vs {NAME} | adapted − base (± SE) | people up / down |',
           '|---|---|---|---|---|---|']
    for r in rows:
        out.append(f"| {METHOD_NAMES.get(r['method'], r['method'])} | {r['people']} | {r['base']:.3f} | {r['adapted']:.3f} | "
                   f"{r['diff']:+.3f} ± {r['se']:.3f} | {r['up']} / {r['down']} |")
    return '\n'.join(out)


# ---------------------------------------------------------------- the command line
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = ap.add_subparsers(dest='step', required=True)
    p = sub.add_parser('prepare', help="other people's clean and cloaked crops (resumable)")
    p.add_argument('--people', type=int, default=64); p.add_argument('--seed', type=int, default=0)
    p = sub.add_parser('train', help='fine-tune edgeface_xs (resumable from its checkpoint)')
    p.add_argument("--minutes", type=float, default=20); p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--batch", type=int, default=32); p.add_argument('--seed', type=int, default=0)
    sub.add_parser('lfw', help='clean LFW verification of edgeface_xs and edgeface_xs_adapted; stores the FAR thresholds')
    p = sub.add_parser('table', help='the paired protection table of an eval record')
    p.add_argument('record')
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    if a.step == 'prepare': prepare(a.people, a.seed)
    elif a.step == 'train': train(a.minutes, a.lr, a.batch, a.seed)
    elif a.step == 'lfw': lfw()
    else:
        from facecloak.report import load_record
        print(markdown(load_record(a.record)))


if __name__ == '__main__':
    main()

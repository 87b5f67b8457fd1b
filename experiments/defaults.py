"""Issue #36's table: the candidate defaults on one evaluation record, paired against a base method.

    python experiments/defaults.py data/eval/dev24_default.json.gz [--base facecloak] [--complete]

For each method: black-box top-1 protection (clean, and after JPEG q75 when recorded), white-box, face SSIM on the
LFW probes, the full-size face SSIM (and JOD when recorded) on the portraits, seconds per photo (apply, detection
included, on the evaluation's busy CPU), and the black-box difference to --base per person (mean ± standard error,
people up / down). `--complete`: only the people every method has (the paired figures always are)."""
import argparse, sys
import numpy as np
from facecloak.report import load_record, per_person, paired


def _mean_quality(rec, method, key, people):
    v = [r[key] for r in rec['records'] if r['kind'] == 'quality' and r['method'] == method and key in r and r['person'] in people]
    return float(np.mean(v)) if v else float('nan')


def _fmt(v: float) -> str: return '–' if np.isnan(v) else f'{v:.2f}'    # not recorded (records before the JOD)


REAL_TOOL = 'face_recognition'     # the attacker-only target: reported beside the models, never in their black-box mean


def table(rec: dict, base: str, complete: bool = False) -> str:
    methods = list(dict.fromkeys(r['method'] for r in rec['records']))
    conds = {r['condition'] for r in rec['records'] if r['kind'] == 'protection'}
    models = sorted({r['target'] for r in rec['records'] if r['kind'] == 'protection' and r['target'] != REAL_TOOL})
    real = any(r.get('target') == REAL_TOOL for r in rec['records'])
    people = {m: set(per_person(rec, m)) for m in methods}
    common = set.intersection(*people.values()) if complete else None
    head = ('| method | people | black-box | JPEG q75 | white-box | ' + ('face_recognition | ' if real else '') +
            'face SSIM (LFW) | face SSIM (full size) | JOD (full size) '
            f'| apply s/photo | black-box vs `{base}` ± SE (up / down) |')
    lines = [head, '|' + '---|' * (head.count('|') - 1)]
    for m in methods:
        who = common if complete else people[m]
        bb = per_person(rec, m, targets=models); bb = [bb[p] for p in who if p in bb]
        q75 = per_person(rec, m, condition='jpeg75', targets=models) if 'jpeg75' in conds else {}
        fr = per_person(rec, m, targets=[REAL_TOOL])
        wb = per_person(rec, m, box='white')
        cell = lambda d: f'{np.mean([d[p] for p in who if p in d]):.3f}' if any(p in d for p in who) else '–'
        pr = '—' if m == base else (lambda d: f"{d['diff']:+.3f} ± {d['se']:.3f} ({d['up']} / {d['down']}, n {d['n']})")(paired(rec, base, m, targets=models))
        lines.append(f'| `{m}` | {len(bb)} | {np.mean(bb):.3f} | {cell(q75)} | {cell(wb)} | ' + (f'{cell(fr)} | ' if real else '') +
                     f'{_mean_quality(rec, m, "ssim_face", who):.3f} '
                     f'| {_mean_quality(rec, m, "portrait_ssim_face", who):.3f} | {_fmt(_mean_quality(rec, m, "portrait_jod_face", who))} '
                     f'| {_mean_quality(rec, m, "apply_s", who):.2f} | {pr} |')
    return '\n'.join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('record'); ap.add_argument('--base', default='facecloak'); ap.add_argument('--complete', action='store_true')
    a = ap.parse_args(argv)
    rec = load_record(a.record)
    if rec is None: sys.exit(f'{a.record}: no record there')
    print(table(rec, a.base, a.complete))


if __name__ == '__main__':
    main()

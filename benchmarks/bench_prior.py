"""The cross-identity prior (issue #13, lever 1): learn it and print one JSON object.

    python benchmarks/bench_prior.py [--people 1000] [--steps 600] [--batch 16] [--eps 8] [--seed 0]
                                     [--device cpu] [--set KEY=VALUE ...] [--init zero|prior|MASK] [--surrogates A,B]
                                     [--out facecloak/prior.mask]

One photo each of --people LFW anchor-pool people (`facecloak.cloak.prior_photos`: never an evaluation subject
nor a gallery distractor) is aligned, and `facecloak.cloak.learn_prior` learns one universal mask that pushes
each photo away from its own identity with the default surrogates, or those of --surrogates (a prior per surrogate
family), with no anchor and a uniform budget. The mask file is
written to --out (atomically; an existing file is kept unless --overwrite) with the command in its metadata.
`--set` takes any `CloakConfig` option as `facecloak learn --set` does (e.g. `--set parameterisation=smooth --set
band=0.5` for a band-limited prior, issue #14). The JSON has the wall time, the mean cosine of each training photo
to its own identity per surrogate before and after, and the file's path. This is the command that made the shipped `facecloak/prior.mask`.
"""
import argparse, json, sys, time
from pathlib import Path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--people', type=int, default=1000); ap.add_argument('--steps', type=int, default=600)
    ap.add_argument('--batch', type=int, default=16); ap.add_argument('--eps', type=float, default=8)
    ap.add_argument('--seed', type=int, default=0); ap.add_argument('--device', default=None)
    ap.add_argument('--out', default='prior.mask'); ap.add_argument('--overwrite', action='store_true')
    ap.add_argument('--set', action='append', default=[], metavar='KEY=VALUE', help='a CloakConfig option (repeatable)')
    ap.add_argument('--init', default='zero', help="where it starts: 'zero', 'prior' (the shipped prior) or a mask file")
    ap.add_argument('--surrogates', default=None, help='comma-separated model names to learn with (default: the default surrogates)')
    a = ap.parse_args(argv)
    from facecloak.cli import config_options
    try: options = config_options(a.set)
    except (TypeError, ValueError) as e: sys.exit(f'--set: {e}')
    out = Path(a.out)
    if out.exists() and not a.overwrite: sys.exit(f'{out} exists (use --overwrite to replace it)')
    if a.people < 2 or a.steps < 1 or a.batch < 1: sys.exit('--people must be >= 2, --steps and --batch >= 1')
    from facecloak.cloak import learn_prior, prior_photos, load_prior, MaskFileError
    from facecloak.models import LOADERS
    surrogates = None if a.surrogates is None else [n.strip() for n in a.surrogates.split(',') if n.strip()]
    unknown = [n for n in surrogates or () if n not in LOADERS]
    if surrogates is not None and (not surrogates or unknown):
        sys.exit(f'--surrogates: unknown model(s) {unknown or a.surrogates!r}; known: {", ".join(LOADERS)}')
    if a.init != 'zero':                    # a start that cannot be read is refused before any photo is aligned
        try: load_prior(a.init)
        except (OSError, MaskFileError) as e: sys.exit(f'--init: {e}')
    t0 = time.time()
    photos = prior_photos(a.people, seed=a.seed)
    prior = learn_prior(photos, epsilon=a.eps / 255, steps=a.steps, batch_size=a.batch, seed=a.seed, device=a.device,
                        progress=sys.stderr.isatty(), init=a.init, surrogates=surrogates, **options)
    prior.meta['provenance'] = dict(command='python benchmarks/bench_prior.py ' + ' '.join(argv if argv is not None else sys.argv[1:]),
                                    people=len(photos), pool='LFW anchor pool (facecloak.assets.lfw_roles)', seed=a.seed)
    prior.save(out)
    print(json.dumps(dict(out=str(out), seconds=round(time.time() - t0, 1), people=len(photos), steps=a.steps,
                          batch=a.batch, epsilon=a.eps, options=options, n_images=prior.meta['n_images'], final=prior.meta['final'],
                          device=prior.meta['device'])))


if __name__ == '__main__':
    main()

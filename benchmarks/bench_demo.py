"""Time the first run a new user makes: a cold `facecloak demo` (empty FACECLOAK_CACHE_DIR) and print JSON.

Runs the real console command in a fresh process with a temporary cache folder, so every cache the
demo relies on (face detections, gallery embeddings, the anchor bank) is built from scratch, and
reports its wall-clock seconds, the machine's load average before and after (the goal, <= 2 minutes,
is for 2 otherwise idle CPU cores), its verdict line, what it printed (stdout) and its log (stderr: one
line per phase when not on a terminal; `progress_redraws` counts carriage-return bar updates, 0 is the aim).
On a machine shared with other busy processes prefer `--threads 1`: two OpenMP threads competing for two
busy cores run several times slower than one.

    python benchmarks/bench_demo.py [--threads 2] [-- demo options, e.g. --distractors 500]
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--threads', type=int, default=2, help='torch/OpenMP threads of the demo process (default 2)')
    ap.add_argument('--keep', action='store_true', help='keep the temporary cache folder (and say where it is)')
    ap.add_argument('demo_args', nargs='*', help='options passed on to `facecloak demo` (after --)')
    a = ap.parse_args(argv)
    cache = tempfile.mkdtemp(prefix='bench_demo_cache_')
    env = dict(os.environ, FACECLOAK_CACHE_DIR=cache, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads))
    cmd = [sys.executable, '-c', 'import sys; from facecloak.cli import main; sys.exit(main())', 'demo', *a.demo_args]
    load0, t0 = os.getloadavg(), time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True)        # bytes: keep the carriage returns to count them
    seconds, load1 = time.perf_counter() - t0, os.getloadavg()
    stdout, stderr = r.stdout.decode(errors='replace'), r.stderr.decode(errors='replace')
    out = stdout.strip().splitlines()
    res = dict(benchmark='cold facecloak demo', seconds=round(seconds, 1), exit_code=r.returncode,
               verdict=out[-1] if out else None, output=out, progress_redraws=stderr.count('\r'),
               log=[l.split('\r')[-1] for l in stderr.strip().split('\n')],
               demo_args=a.demo_args, threads=a.threads, cpus=os.cpu_count(),
               load_average_before=[round(x, 2) for x in load0], load_average_after=[round(x, 2) for x in load1],
               goal='<= 120 s on 2 idle CPU cores, cold cache')
    if a.keep: res['cache'] = cache
    else: shutil.rmtree(cache, ignore_errors=True)
    print(json.dumps(res, indent=1))
    return r.returncode


if __name__ == '__main__': sys.exit(main())

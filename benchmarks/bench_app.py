"""Benchmark `facecloak app`'s start-up (issue #39: ≤ 10 s on 2 CPU cores): seconds from the command to the rendered
page (Voilà has executed the page's notebook and answers with it), and print one JSON object.

    python benchmarks/bench_app.py [--runs 3]

Each run starts `facecloak app --no-browser` on a free localhost port, asks for the page until it comes back
whole (HTTP 200 with the page's widget state), and stops the server. Run it on an idle machine.
"""
import argparse, json, os, platform, signal, subprocess, sys, time, urllib.request


def start_once(timeout: float = 300.0) -> float:
    from facecloak.app_launch import free_port
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, '-c', 'from facecloak.cli import main; raise SystemExit(main())',
                             'app', '--no-browser', '--port', str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while time.perf_counter() - t0 < timeout:
            try:
                with urllib.request.urlopen(f'http://127.0.0.1:{port}/', timeout=timeout) as r:
                    if r.status == 200 and b'application/vnd.jupyter.widget' in r.read(): return time.perf_counter() - t0
            except OSError: time.sleep(0.2)
        raise TimeoutError(f'the page did not come within {timeout:.0f} s')
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try: proc.wait(30)
        except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--runs', type=int, default=3)
    a = ap.parse_args(argv)
    if a.runs < 1: raise SystemExit('--runs must be >= 1')
    times = [round(start_once(), 2) for _ in range(a.runs)]
    print(json.dumps(dict(start_s=times, median_s=sorted(times)[len(times) // 2], cpus=os.cpu_count(), machine=platform.machine())))


if __name__ == '__main__':
    main()

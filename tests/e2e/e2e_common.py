"""Helpers shared by the end-to-end scripts of tests/e2e (web_page_test.py, openai_client_test.py).

Contract:
  - Each script is run as `python3 tests/e2e/<script>.py` (also by ctest) or collected by pytest.
    It imports this module after putting its own directory on sys.path (see the scripts' top),
    so the import works however it was started, also after re-executing itself with .venv-test's
    Python.
  - A test that cannot run here (a missing package, browser or binary) raises Skip; the script
    then prints "SKIP: <reason>" and exits with SKIP_EXIT_CODE (77, ctest's SKIP_RETURN_CODE).
    A failure is an AssertionError; the script prints "FAIL: <message>" and exits 1.
  - reexec_in_venv(script, flag) replaces the process with .venv-test's Python running `script`
    (same arguments) when that environment exists, is not the running one and `flag` is not yet
    set in the environment (it is set before the exec, so this happens at most once); otherwise
    it returns and the caller raises Skip.
  - The server under test is `<binary> serve --data <dir> --host 127.0.0.1 --port <port> <extra>`
    on a free loopback port (free_port), its output in a log file; wait_for_health waits for
    /healthz to answer {"status": "ok"} and stop_server ends it (SIGTERM, SIGKILL after 15 s).

Standard library only: it is imported before the scripts know which Python they will run in.
"""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
# sys.prefix tells the environment apart: its bin/python is a link to the very interpreter
# that created it, so comparing executables cannot.
VENV_DIR = os.path.join(REPO, '.venv-test')
VENV_PYTHON = os.path.join(VENV_DIR, 'bin', 'python')
SKIP_EXIT_CODE = 77


class Skip(Exception):
    """The test cannot run here (a missing package, browser or server binary)."""


def reexec_in_venv(script, flag):
    """Re-executes `script` with .venv-test's Python (the same arguments) when that environment
    exists, is not the running one and the environment variable `flag` is unset; sets `flag`
    first so the re-executed script does not try again. Returns when it does not re-execute."""
    if os.access(VENV_PYTHON, os.X_OK) \
            and os.path.realpath(sys.prefix) != os.path.realpath(VENV_DIR) \
            and not os.environ.get(flag):
        os.environ[flag] = '1'
        sys.stdout.flush()
        os.execv(VENV_PYTHON, [VENV_PYTHON, os.path.abspath(script)] + sys.argv[1:])


def find_binary():
    """The `rag` binary: $RAG_BINARY (an AssertionError when it is not executable), else build/rag
    of this repository; Skip when neither."""
    binary = os.environ.get('RAG_BINARY')
    if binary:
        if not os.access(binary, os.X_OK):
            raise AssertionError(f'RAG_BINARY={binary} is not an executable file')
        return binary
    default = os.path.join(REPO, 'build', 'rag')
    if os.access(default, os.X_OK):
        return default
    raise Skip('no server binary: set RAG_BINARY or build build/rag')


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_for_health(base, proc, timeout):
    """Polls base + '/healthz' until it answers {"status": "ok"} and returns that body; an
    AssertionError when the server process `proc` exits first or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f'the server exited with status {proc.returncode} before /healthz answered')
        try:
            with urllib.request.urlopen(base + '/healthz', timeout=2) as r:
                body = json.loads(r.read().decode('utf-8'))
                if body.get('status') == 'ok':
                    return body
                last = body
        except (urllib.error.URLError, OSError, ValueError) as e:
            last = e
        time.sleep(0.25)
    raise AssertionError(f'/healthz did not answer "ok" within {timeout}s (last: {last})')


def serve_command(binary, data, port, extra):
    """The command line of `rag serve` on 127.0.0.1:port with the data folder `data`, then `extra`."""
    return [binary, 'serve', '--data', data, '--host', '127.0.0.1', '--port', str(port)] + list(extra)


def spawn_server(cmd, log_path):
    """Starts `cmd` (see serve_command) with stdout and stderr into log_path (truncated), no stdin."""
    with open(log_path, 'wb') as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def stop_server(proc):
    """SIGTERM, then SIGKILL when the server has not exited within 15 s; waits for it."""
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def print_log_tail(log_path, limit):
    """Prints the last `limit` bytes of the server log to stderr, framed."""
    with open(log_path, 'rb') as f:
        tail = f.read()[-limit:].decode('utf-8', 'replace')
    print('--- server log (tail) ---\n' + tail + '\n---', file=sys.stderr)


def run_as_script(main):
    """Exits with main()'s status; an AssertionError is printed as "FAIL: ..." and exits 1."""
    try:
        sys.exit(main())
    except AssertionError as e:
        print(f'FAIL: {e}', file=sys.stderr)
        sys.exit(1)

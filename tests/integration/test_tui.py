# SPDX-License-Identifier: GPL-2.0
"""Live view (TUI) tests, driven through tmux.

Each test starts memtrace -p on one or two tests/workloads/tui_grow
processes inside a private tmux server, waits for the table, makes the
workloads allocate, then sends keys and reads the screen back with
capture-pane.  tui_grow holds 8 MiB from grow_big() and 1 MiB from
grow_small() by default (sizes in MiB on its command line).

tests/run.py imports this module and runs TESTS; a test raises Skip when
it cannot run here (not root, no tmux, nothing built).
"""
import os
import re
import select
import shutil
import tempfile
import subprocess
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
MEMTRACE = os.environ.get('MEMTRACE') or os.path.join(REPO, 'memtrace')
WORKLOAD = os.path.join(REPO, 'build', 'workloads', 'tui_grow')
TIMEOUT = 15  # seconds for anything to show up (BPF load included)


class Skip(Exception):
    pass


def skip(reason):
    raise Skip(reason)


def _require():
    if os.geteuid() != 0:
        skip('needs root (memtrace loads BPF programs)')
    if not shutil.which('tmux'):
        skip('tmux is not installed (apt-get install -y tmux)')
    for path in (MEMTRACE, WORKLOAD):
        if not os.access(path, os.X_OK):
            skip('%s is not built (make build-tests)' % path)


class Workload:
    """A tui_grow process that allocates when trigger() is called."""

    def __init__(self, big=8, small=1, name=None):
        args = [WORKLOAD, str(big), str(small)] + ([name] if name else [])
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)
        self.pid = self.proc.pid

    def trigger(self):
        self.proc.stdin.write(b'\n')
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], TIMEOUT)
        if not ready or b'ready' not in self.proc.stdout.readline():
            raise AssertionError('workload %d did not allocate' % self.pid)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass


class Pane:
    """memtrace in a detached tmux session on a private server."""

    count = 0

    def __init__(self, args, width=120, height=40, env=''):
        Pane.count += 1
        self.sock = 'mt-test-%d-%d' % (os.getpid(), Pane.count)
        # record the tty modes before and compare after: restored or not
        script = ('ulimit -c 0; S=$(stty -g); %s %s %s; echo MT_EXITED $?; '
                  '[ "$(stty -g)" = "$S" ] && echo TTY_RESTORED; sleep 60'
                  % (env, MEMTRACE, ' '.join(args)))
        self._tmux('new-session', '-d', '-s', 'mt', '-x', str(width),
                   '-y', str(height), script)

    def _tmux(self, *args):
        r = subprocess.run(['tmux', '-L', self.sock, '-f', '/dev/null'] +
                           list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=10)
        if r.returncode:
            raise AssertionError('tmux %s failed: %s' % (args[0], r.stderr))
        return r.stdout

    def screen(self, escapes=False):
        args = ['capture-pane', '-p', '-t', 'mt'] + (['-e'] if escapes else [])
        return self._tmux(*args)

    def keys(self, *keys):
        self._tmux('send-keys', '-t', 'mt', *keys)

    def literal(self, text):
        self._tmux('send-keys', '-t', 'mt', '-l', text)

    def resize(self, width, height):
        self._tmux('resize-window', '-t', 'mt', '-x', str(width),
                   '-y', str(height))

    def memtrace_pid(self):
        shell = int(self._tmux('display-message', '-p', '-t', 'mt',
                               '#{pane_pid}'))
        with open('/proc/%d/task/%d/children' % (shell, shell)) as f:
            kids = [int(p) for p in f.read().split()]
        for pid in kids:
            try:
                with open('/proc/%d/comm' % pid) as f:
                    # comm: the binary's name (MEMTRACE may rename it)
                    if f.read().strip() == \
                            os.path.basename(MEMTRACE)[:15]:
                        return pid
            except OSError:
                pass
        raise AssertionError('memtrace is not running in the pane')

    def wait(self, pred, what, timeout=TIMEOUT, escapes=False):
        """Poll the screen until pred(screen) is true; return the screen."""
        end = time.time() + timeout
        while True:
            s = self.screen(escapes)
            if pred(s):
                return s
            if time.time() > end:
                raise AssertionError('%s: not seen within %ds; screen:\n%s'
                                     % (what, timeout, s))
            time.sleep(0.1)

    def wait_text(self, text, timeout=TIMEOUT):
        return self.wait(lambda s: text in s, repr(text), timeout)

    def close(self):
        subprocess.run(['tmux', '-L', self.sock, 'kill-server'],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _header(screen):
    for line in screen.splitlines():
        if re.match(r'\s*PID\s+COMM\b', line):
            return line
    return None


def _row(screen, pid):
    for line in screen.splitlines():
        m = re.match(r'\s*(\d+)!?\s', line)
        if m and int(m.group(1)) == pid:
            return line
    return None


def _cell(screen, pid, title):
    """Text of a right-aligned column: it ends where its title ends."""
    head, row = _header(screen), _row(screen, pid)
    if head is None or row is None or title not in head:
        return None
    end = head.index(title) + len(title)
    return row[:end].split()[-1] if row[:end].split() else ''


def _row_index(screen, pid):
    for i, line in enumerate(screen.splitlines()):
        if _row(line + '\n', pid):
            return i
    return -1


def _start(works, width=120, height=40, extra=()):
    pids = ','.join(str(w.pid) for w in works)
    pane = Pane(['-d', '0.5'] + list(extra) + ['-p', pids], width, height)
    for w in works:
        pane.wait(lambda s, w=w: _row(s, w.pid) is not None,
                  'row of pid %d' % w.pid)
    return pane


def _live(pane, w, value):
    return pane.wait(lambda s: _cell(s, w.pid, 'LIVE') == value,
                     'LIVE %s for pid %d' % (value, w.pid))


def _quit(pane):
    pane.keys('q')
    return pane.wait_text('MT_EXITED')


def test_live_row():
    _require()
    w, pane = Workload(), None
    try:
        pane = _start([w])
        s = pane.screen()
        for text in ('procs 1', 'refresh 0.5s', 'sort live', 'lost 0',
                     'tracing since', 'mem '):
            assert text in s, 'header lacks %r:\n%s' % (text, s)
        w.trigger()
        s = _live(pane, w, '9.0M')
        assert 'grow_big' in _row(s, w.pid), \
            'TOP SITE is not grow_big:\n%s' % s
        assert 'tui_grow' in _row(s, w.pid), 'COMM missing:\n%s' % s
    finally:
        if pane:
            pane.close()
        w.kill()


def test_drilldown():
    _require()
    w, pane = Workload(), None
    try:
        pane = _start([w])
        w.trigger()
        _live(pane, w, '9.0M')
        pane.keys('Enter')
        s = pane.wait(lambda s: 'grow_big' in s and 'grow_small' in s and
                      'ALLOCS' in s, 'sites of the workload')
        lines = s.splitlines()
        big = [i for i, l in enumerate(lines) if l.endswith('grow_big')]
        small = [i for i, l in enumerate(lines) if l.endswith('grow_small')]
        assert big and small and big[0] < small[0], \
            'grow_big is not listed above grow_small:\n%s' % s
        assert lines[big[0]].split()[0] == '8.0M', \
            'grow_big does not hold 8.0M:\n%s' % s
        assert lines[small[0]].split()[0] == '1.0M', \
            'grow_small does not hold 1.0M:\n%s' % s
        # the selected (first) site expands to its full stack
        pane.keys('Enter')
        s = pane.wait(lambda s: re.search(r'#0 .*grow_big\+0x', s) and
                      re.search(r'#1 .*main\+0x', s), 'stack of grow_big')
        assert 'tui_grow.c:' in s, 'frames lack file:line:\n%s' % s
        pane.keys('Escape')
        pane.wait(lambda s: 'ALLOCS' in s, 'back to the sites')
        pane.keys('Down', 'Right')
        pane.wait(lambda s: re.search(r'#0 .*grow_small\+0x', s),
                  'stack of grow_small')
        pane.keys('Left')
        pane.wait(lambda s: 'ALLOCS' in s, 'back to the sites')
        pane.keys('BSpace')
        pane.wait(lambda s: _header(s) is not None, 'back to the table')
    finally:
        if pane:
            pane.close()
        w.kill()


def _order(pane, first, second, what):
    return pane.wait(lambda s: 0 <= _row_index(s, first.pid) <
                     _row_index(s, second.pid),
                     '%s: pid %d above pid %d' % (what, first.pid, second.pid))


def test_sort_keys():
    _require()
    big, small, pane = Workload(8, 1, 'mt_big'), Workload(2, 1, 'mt_small'), None
    try:
        pane = _start([big, small])
        big.trigger()
        small.trigger()
        _live(pane, big, '9.0M')
        _live(pane, small, '3.0M')
        _order(pane, big, small, 'sort by live')
        pane.keys('R')
        s = _order(pane, small, big, 'reversed live')
        assert 'sort live (reversed)' in s, 'header lacks reversal:\n%s' % s
        # the selection (first row, mt_big) followed its pid to the bottom
        s = pane.screen(escapes=True)
        sel = [l for l in s.splitlines() if '\x1b[7m' in l and
               re.search(r'\b%d\b' % big.pid, l)]
        assert sel, 'selection did not follow pid %d:\n%r' % (big.pid, s)
        pane.keys('r')
        s = _order(pane, big, small, 'sort by RSS')
        assert 'sort rss' in s and 'reversed' not in s, \
            'header does not show the RSS sort:\n%s' % s
        pane.keys('R')
        _order(pane, small, big, 'reversed RSS')
        for key, name in (('g', 'growth'), ('a', 'alloc/s'),
                          ('m', 'limit%'), ('l', 'live')):
            pane.keys(key)
            pane.wait(lambda s, n=name: re.search(r'\bsort %s(  |$)'
                                                  % re.escape(n), s, re.M),
                      'sort %s in the header' % name)
        _order(pane, big, small, 'back to live')
    finally:
        if pane:
            pane.close()
        big.kill()
        small.kill()


def test_filter():
    _require()
    big, small, pane = Workload(8, 1, 'mt_big'), Workload(2, 1, 'mt_small'), None
    try:
        pane = _start([big, small])
        pane.keys('/')
        pane.wait_text('filter (command or cgroup):')
        pane.literal('mt_small')
        pane.keys('Enter')
        s = pane.wait(lambda s: _row(s, big.pid) is None and
                      _row(s, small.pid) is not None, 'only mt_small shown')
        assert 'filter "mt_small" (1 shown)' in s, \
            'header does not show the filter:\n%s' % s
        # an empty filter shows everything again
        pane.keys('/', 'C-u', 'Enter')
        s = pane.wait(lambda s: _row(s, big.pid) is not None and
                      _row(s, small.pid) is not None, 'both rows again')
        assert 'filter "' not in s, 'filter not cleared:\n%s' % s
    finally:
        if pane:
            pane.close()
        big.kill()
        small.kill()


def test_keys_misc():
    _require()
    w, pane = Workload(), None
    dumps = tempfile.mkdtemp(prefix='mt-tui-dump-')
    try:
        pane = _start([w], extra=['--dump-dir', dumps, '--no-core'])
        pane.keys('p')
        pane.wait_text('PAUSED')
        pane.keys('p')
        pane.wait(lambda s: 'PAUSED' not in s, 'PAUSED gone')
        pane.keys('d')
        # the status line says so, soon replaced by the capture's notice
        pane.wait(lambda s: ('dump: pid %d: capture started' % w.pid) in s or
                  ('memtrace: pid %d' % w.pid) in s, 'capture message')
        deadline = time.time() + 10
        while time.time() < deadline:
            done = [d for d in os.listdir(dumps)
                    if '-%d-' % w.pid in d and not d.startswith('.')]
            if done and os.path.exists(os.path.join(dumps, done[0], 'report.txt')):
                break
            time.sleep(0.1)
        else:
            raise AssertionError('no capture of pid %d in %s: %s'
                                 % (w.pid, dumps, os.listdir(dumps)))
        pane.keys('?')
        pane.wait_text('any key closes this help')
        pane.keys('x')
        pane.wait(lambda s: 'any key closes' not in s, 'help closed')
    finally:
        if pane:
            pane.close()
        w.kill()
        shutil.rmtree(dumps, ignore_errors=True)


def test_quit_restores_terminal():
    _require()
    w, pane = Workload(), None
    try:
        pane = _start([w])
        s = _quit(pane)
        assert 'MT_EXITED 0' in s, 'q did not exit with 0:\n%s' % s
        s = pane.wait_text('TTY_RESTORED', timeout=3)
        assert _header(s) is None, 'table left on the screen:\n%s' % s
    finally:
        if pane:
            pane.close()
        w.kill()


def _signal_restores(sig, status):
    _require()
    w, pane = Workload(), None
    try:
        pane = _start([w])
        os.kill(pane.memtrace_pid(), sig)
        s = pane.wait_text('MT_EXITED')
        assert 'MT_EXITED %d' % status in s, \
            'exit status is not %d:\n%s' % (status, s)
        pane.wait_text('TTY_RESTORED', timeout=3)
    finally:
        if pane:
            pane.close()
        w.kill()


def test_sigterm_restores_terminal():
    _signal_restores(15, 0)


def test_crash_restores_terminal():
    # the handler restores the terminal, then dies of the same signal
    _signal_restores(11, 128 + 11)


def test_evil_comm():
    _require()
    w, pane = Workload(1, 1, 'evil\x1b[2Jx'), None
    try:
        pane = _start([w])
        s = pane.screen()
        row = _row(s, w.pid)
        assert 'evil\\x1b[2Jx' in row, \
            'control characters not escaped in COMM: %r' % row
        assert 'tracing since' in s, 'the screen was cleared:\n%s' % s
    finally:
        if pane:
            pane.close()
        w.kill()


def test_narrow_and_resize():
    _require()
    w, pane = Workload(), None
    try:
        pane = _start([w], 80, 24)
        w.trigger()
        s = _live(pane, w, '9.0M')
        head = _header(s)
        for title in ('PID', 'COMM', 'LIVE', 'GROW/s', 'RSS', 'TOP SITE'):
            assert title in head, '%s missing at 80 columns: %r' % (title, head)
        assert 'CGROUP' not in head, 'CGROUP kept at 80 columns: %r' % head
        assert 'grow_big' in _row(s, w.pid), 'TOP SITE cut away:\n%s' % s
        pane.resize(160, 40)
        s = pane.wait(lambda s: 'CGROUP' in (_header(s) or ''),
                      'all columns after growing to 160')
        assert 'PF/s' in _header(s) and _cell(s, w.pid, 'LIVE') == '9.0M', \
            'bad table at 160 columns:\n%s' % s
        pane.resize(50, 12)
        s = pane.wait(lambda s: _header(s) and 'TOP SITE' not in _header(s),
                      'columns dropped at 50')
        assert _cell(s, w.pid, 'LIVE') == '9.0M', \
            'LIVE lost at 50 columns:\n%s' % s
    finally:
        if pane:
            pane.close()
        w.kill()


def test_exited_row_dimmed():
    _require()
    w, pane = Workload(), None
    try:
        pane = _start([w])
        w.kill()
        # SGR 2 (dim) on the row, then the row goes after a few refreshes
        pane.wait(lambda s: any(str(w.pid) in l and '\x1b[2m' in l
                                for l in s.splitlines()),
                  'exited row dimmed', escapes=True)
        pane.wait(lambda s: _row(s, w.pid) is None, 'exited row expired')
    finally:
        if pane:
            pane.close()
        w.kill()


def test_no_terminal_fallback():
    _require()
    w, pane = Workload(), None
    try:
        pane = Pane(['-n', '1', '-p', str(w.pid)], env='TERM=dumb')
        s = pane.wait_text('MT_EXITED')
        assert ('memtrace: cannot start the live view (TERM=dumb): '
                'falling back to --batch') in s, \
            'no fallback message:\n%s' % s
    finally:
        if pane:
            pane.close()
        w.kill()


def test_command_output_kept_off_the_table():
    """-- CMD in the live view: the command's output goes to a file named
    on exit, not over the table; it reads /dev/null, not our keys."""
    _require()
    pane = None
    try:
        pane = Pane(['-d', '0.5', '--', 'sh', '-c',
                     '"echo hello-from-cmd; echo err-from-cmd >&2; '
                     'read x; echo read-gave-\\$?; sleep 30"'])
        s = pane.wait(lambda s: _header(s) is not None, 'table header')
        time.sleep(1)
        s = pane.screen()
        assert 'from-cmd' not in s, 'command output on the table:\n%s' % s
        s = _quit(pane)
        m = re.search(r'output of sh is in (/tmp/memtrace-cmd\.\w+)', s)
        assert m, 'no output file named:\n%s' % s
        with open(m.group(1)) as f:
            out = f.read()
        os.unlink(m.group(1))
        assert 'hello-from-cmd' in out and 'err-from-cmd' in out, out
        assert 'read-gave-1' in out, 'stdin is not /dev/null: %r' % out
    finally:
        if pane:
            pane.close()


TESTS = [
    ('tui_live_row', test_live_row),
    ('tui_drilldown', test_drilldown),
    ('tui_sort_keys', test_sort_keys),
    ('tui_filter', test_filter),
    ('tui_keys_misc', test_keys_misc),
    ('tui_quit_restores_terminal', test_quit_restores_terminal),
    ('tui_sigterm_restores_terminal', test_sigterm_restores_terminal),
    ('tui_crash_restores_terminal', test_crash_restores_terminal),
    ('tui_evil_comm', test_evil_comm),
    ('tui_narrow_and_resize', test_narrow_and_resize),
    ('tui_exited_row_dimmed', test_exited_row_dimmed),
    ('tui_no_terminal_fallback', test_no_terminal_fallback),
    ('tui_command_output_kept_off_the_table',
     test_command_output_kept_off_the_table),
]

if __name__ == '__main__':
    failed = 0
    for name, fn in TESTS:
        try:
            fn()
            print('ok', name)
        except Skip as e:
            print('skip', name + ':', e)
        except AssertionError as e:
            failed += 1
            print('not ok', name + ':', e)
    raise SystemExit(1 if failed else 0)

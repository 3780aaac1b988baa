#!/usr/bin/env python3
"""rusage: run a command and write its peak RSS and CPU time when it exits.

    python3 bench/rusage.py OUT PIDFILE -- COMMAND [ARG...]

Forks, execs COMMAND, writes the child's pid to PIDFILE (signal that pid
to stop the command; SIGINT/SIGTERM sent to this wrapper are passed on),
waits for it with wait4() and writes one line to OUT:

    maxrss_kb=N utime_s=X stime_s=Y wall_s=Z

CPU times come from wait4(), the kernel's exact accounting of the process
(every thread). Peak RSS is VmHWM from /proc/PID/status, the high-water
mark of the command's own address space, read every 20 ms until it exits
(VmHWM only grows, so a late read loses at most a peak reached in the
last 20 ms of its life). ru_maxrss is not used: after fork+exec it keeps
the high-water mark of the pre-exec copy of this Python process (~10 MB).
Exits with the command's status. Python 3 standard library only.
"""
import os
import signal
import sys
import time


def main():
    if len(sys.argv) < 5 or sys.argv[3] != "--":
        sys.stderr.write("usage: rusage.py OUT PIDFILE -- COMMAND [ARG...]\n")
        return 2
    out, pidfile, cmd = sys.argv[1], sys.argv[2], sys.argv[4:]
    t0 = time.monotonic()
    # The pipe's write end closes on exec: EOF tells the parent that the
    # child runs COMMAND now, so VmHWM no longer describes our own copy.
    rfd, wfd = os.pipe()
    os.set_inheritable(wfd, False)
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    os.close(wfd)
    os.read(rfd, 1)
    os.close(rfd)
    with open(pidfile + ".tmp", "w") as f:
        f.write("%d\n" % pid)
    os.rename(pidfile + ".tmp", pidfile)

    def forward(sig, _frame):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    hwm = 0
    while True:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        hwm = max(hwm, int(line.split()[1]))
        except OSError:
            pass
        wpid, status, ru = os.wait4(pid, os.WNOHANG)
        if wpid == pid:
            break
        time.sleep(0.02)
    wall = time.monotonic() - t0
    with open(out, "w") as f:
        f.write("maxrss_kb=%d utime_s=%.3f stime_s=%.3f wall_s=%.3f\n"
                % (hwm, ru.ru_utime, ru.ru_stime, wall))
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return 128 + os.WTERMSIG(status)


if __name__ == "__main__":
    sys.exit(main())

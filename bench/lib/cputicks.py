"""cputicks.py PID...: the CPU time, in clock ticks, of each PID's process tree, summed:
utime + stime + cutime + cstime (fields 14-17 of /proc/PID/stat) of the process and of all its
live descendants. cutime/cstime hold the children already reaped, e.g. the CGI programs a
web server forked. Prints 0 for a PID that is gone."""

import os
import sys


def stat_of(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    rest = text[text.rindex(")") + 2 :].split()  # field 3 onwards; comm may hold spaces
    ppid = int(rest[1])
    ticks = sum(int(x) for x in rest[11:15])
    return ppid, ticks


def main():
    procs = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            s = stat_of(name)
            if s:
                procs[int(name)] = s
    children = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    total = 0
    seen = set()
    todo = [int(p) for p in sys.argv[1:]]
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in procs:
            continue
        seen.add(pid)
        total += procs[pid][1]
        todo.extend(children.get(pid, []))
    print(total)


main()

#!/usr/bin/env python3
"""Start real loopback listeners for portaudit's tests and benchmark, and say what they are.

Two ways to describe the population:

  --socket SPEC (repeatable), each one process ("unit") holding one socket:
      KIND[:PORT][,fork=W][,reuseport=K]
      KIND is tcp4, tcp6, udp4 or udp6; PORT 0 or absent means an ephemeral port.
      fork=W      the unit forks W-1 workers after binding, so the socket has W holders
                  (the nginx master/worker shape).
      reuseport=K K sockets on the same address and port with SO_REUSEPORT, each held by
                  its own unit.

  -n N -m M [...], a generated population of N sockets spread over M processes, with
      shared (forked) groups, SO_REUSEPORT groups, idle processes holding many regular
      file descriptors, and established "noise" connections that must not be reported.

SIGUSR1 sent to a unit's first process (a manifest entry's "pid") makes it fork one more
worker that shares its sockets: a new holder of an already-known socket.

When every socket is bound it writes a JSON manifest (to --manifest FILE atomically, or
to stdout), then waits until SIGTERM/SIGINT or --seconds, and kills and reaps everything.
Only 127.0.0.1 and ::1 are ever used. Children die with the supervisor (PR_SET_PDEATHSIG).
"""
import argparse
import ctypes
import json
import os
import signal
import socket
import sys
import tempfile
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
KINDS = {
    "tcp4": (socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1"),
    "tcp6": (socket.AF_INET6, socket.SOCK_STREAM, "::1"),
    "udp4": (socket.AF_INET, socket.SOCK_DGRAM, "127.0.0.1"),
    "udp6": (socket.AF_INET6, socket.SOCK_DGRAM, "::1"),
}
libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent():
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def open_socket(kind, port, reuseport=False, backlog=128):
    family, type_, addr = KINDS[kind]
    s = socket.socket(family, type_)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, port))
    if type_ == socket.SOCK_STREAM:
        s.listen(backlog)
    return s


def describe(kind, s):
    return {
        "proto": kind[:3],
        "family": "inet6" if kind.endswith("6") else "inet",
        "addr": KINDS[kind][2],
        "port": s.getsockname()[1],
        "fd": s.fileno(),
        "inode": os.fstat(s.fileno()).st_ino,
    }


def start_unit(specs, width, report, backlog):
    """Fork a unit: it binds `specs` [(kind, port, reuseport, group)], forks width-1 workers,
    and reports {"pid", "pids", "sockets"} on the `report` pipe."""
    pid = os.fork()
    if pid:
        return pid
    try:
        die_with_parent()
        sockets = [(kind, open_socket(kind, port, reuse, backlog), group) for kind, port, reuse, group in specs]
        pids = [os.getpid()]
        for _ in range(width - 1):
            worker = os.fork()
            if worker == 0:
                die_with_parent()
                while True:
                    signal.pause()
            pids.append(worker)
        def fork_worker(*_):
            # A holder that appears after the population started: it shares every socket of
            # the unit at the same descriptor numbers, as a late-forked server worker does.
            worker = os.fork()
            if worker == 0:
                signal.signal(signal.SIGUSR1, signal.SIG_IGN)
                die_with_parent()
                while True:
                    signal.pause()
            pids.append(worker)
        signal.signal(signal.SIGUSR1, fork_worker)
        entries = []
        for kind, s, group in sockets:
            entry = describe(kind, s)
            entry.update(pid=os.getpid(), pids=pids, group=group)
            entries.append(entry)
        os.write(report, (json.dumps({"pid": os.getpid(), "pids": pids, "sockets": entries}) + "\n").encode())
        while True:
            signal.pause()
    except BaseException as error:  # report and leave: the supervisor gives up on a short read
        sys.stderr.write(f"listeners.py: unit failed: {error}\n")
        os._exit(1)


def start_idle(count, fds, tmpdir):
    pids = []
    path = os.path.join(tmpdir, "idle-file")
    with open(path, "w") as f:
        f.write("x")
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            die_with_parent()
            held = [os.open(path, os.O_RDONLY) for _ in range(fds)]
            while True:
                signal.pause()
        pids.append(pid)
    return pids


def start_noise(pairs):
    """One process holding established TCP pairs and connected UDP sockets: never listeners."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_end)
        os.read(read_end, 1)
        os.close(read_end)
        return pid
    die_with_parent()
    held = []
    server = open_socket("tcp4", 0)
    port = server.getsockname()[1]
    for _ in range(pairs):
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        held += [client, accepted]
        u1 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u1.bind(("127.0.0.1", 0))
        u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u2.bind(("127.0.0.1", 0))
        u1.connect(u2.getsockname())
        u2.connect(u1.getsockname())
        held += [u1, u2]
    server.close()
    os.write(write_end, b"1")
    while True:
        signal.pause()


def reserve_port(kind):
    """A placeholder with SO_REUSEPORT that fixes the port of a reuseport group."""
    s = open_socket(kind, 0, reuseport=True) if kind.startswith("udp") else None
    if s is None:
        family, type_, addr = KINDS[kind]
        s = socket.socket(family, type_)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((addr, 0))
    return s


def plan_from_specs(specs):
    """[(unit specs, width)] from --socket arguments."""
    units, placeholders = [], []
    for n, text in enumerate(specs):
        head, *options = text.split(",")
        kind, _, port = head.partition(":")
        if kind not in KINDS:
            sys.exit(f"listeners.py: unknown kind {kind!r} in {text!r}")
        port = int(port or 0)
        opts = dict(o.split("=", 1) for o in options)
        width = int(opts.get("fork", 1))
        reuse = int(opts.get("reuseport", 0))
        group = f"spec{n}"
        if reuse:
            if port == 0:
                holder = reserve_port(kind)
                placeholders.append(holder)
                port = holder.getsockname()[1]
            for _ in range(reuse):
                units.append(([(kind, port, True, group)], width))
        else:
            units.append(([(kind, port, False, group)], width))
    return units, placeholders


def plan_generated(a):
    kinds = []
    for item in (a.mix or "tcp4:1,tcp6:1,udp4:1,udp6:1").split(","):
        kind, _, weight = item.partition(":")
        kinds += [kind] * int(weight or 1)
    next_port = {k: a.port_base for k in KINDS}

    def port_for(kind):
        if not a.port_base:
            return 0
        next_port[kind] += 1
        return next_port[kind] - 1

    # Units: shared groups take group-width processes each, the rest are solo.
    solo = max(1, a.procs - a.shared_groups * a.group_width)
    units = [([], a.group_width) for _ in range(a.shared_groups)] + [([], 1) for _ in range(solo)]
    placeholders = []
    count = 0
    for g in range(a.reuseport_groups):
        kind = kinds[g % len(kinds)]
        holder = reserve_port(kind) if not a.port_base else None
        port = holder.getsockname()[1] if holder else port_for(kind)
        if holder:
            placeholders.append(holder)
        for k in range(a.reuseport_width):
            units[(g * a.reuseport_width + k) % len(units)][0].append((kind, port, True, f"reuseport{g}"))
            count += 1
    i = 0
    while count < a.sockets:
        kind = kinds[i % len(kinds)]
        unit = units[i % len(units)]
        group = f"shared{i % len(units)}" if unit[1] > 1 else "solo"
        unit[0].append((kind, port_for(kind), False, group))
        count += 1
        i += 1
    return [u for u in units if u[0]], placeholders


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--socket", action="append", default=[], help="KIND[:PORT][,fork=W][,reuseport=K]")
    p.add_argument("-n", "--sockets", type=int, default=0, help="generate this many sockets")
    p.add_argument("-m", "--procs", type=int, default=10, help="over this many processes")
    p.add_argument("--mix", help="kind weights, e.g. tcp4:2,udp6:1")
    p.add_argument("--shared-groups", type=int, default=0)
    p.add_argument("--group-width", type=int, default=4)
    p.add_argument("--reuseport-groups", type=int, default=0)
    p.add_argument("--reuseport-width", type=int, default=4)
    p.add_argument("--port-base", type=int, default=0)
    p.add_argument("--backlog", type=int, default=128)
    p.add_argument("--idle", type=int, default=0, help="idle processes holding --idle-fds files each")
    p.add_argument("--idle-fds", type=int, default=200)
    p.add_argument("--noise", type=int, default=0, help="established TCP pairs and connected UDP sockets")
    p.add_argument("--manifest", default="-")
    p.add_argument("--seconds", type=float, default=0)
    a = p.parse_args()

    # A parent such as a test runner may have started us with signals blocked or ignored.
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    units, placeholders = plan_from_specs(a.socket) if a.socket else plan_generated(a)
    read_end, write_end = os.pipe()
    children = [start_unit(specs, width, write_end, a.backlog) for specs, width in units]
    os.close(write_end)
    reports, buffer = [], b""
    with os.fdopen(read_end, "rb") as pipe:
        while len(reports) < len(units):
            line = pipe.readline()
            if not line:
                for pid in children:
                    os.kill(pid, signal.SIGKILL)
                sys.exit("listeners.py: a unit failed to start")
            reports.append(json.loads(line))
    for holder in placeholders:
        holder.close()
    tmpdir = tempfile.mkdtemp(prefix="portaudit-listeners-")
    idle = start_idle(a.idle, a.idle_fds, tmpdir)
    noise = start_noise(a.noise) if a.noise else None

    sockets = [s for r in reports for s in r["sockets"]]
    manifest = {
        "supervisor": os.getpid(),
        "sockets": sockets,
        "units": [r["pids"] for r in reports],
        "idle_pids": idle,
        "noise_pid": noise,
        "counts": {"sockets": len(sockets), "holder_refs": sum(len(s["pids"]) for s in sockets)},
    }
    text = json.dumps(manifest)
    if a.manifest == "-":
        print(text, flush=True)
    else:
        tmp = a.manifest + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, a.manifest)

    def stop(*_):
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for pid in [pid for r in reports for pid in r["pids"]] + idle + ([noise] if noise else []):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        while True:
            try:
                os.wait()
            except ChildProcessError:
                break
        os.unlink(os.path.join(tmpdir, "idle-file"))
        os.rmdir(tmpdir)
        sys.exit(0)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    if a.seconds:
        signal.signal(signal.SIGALRM, stop)
        signal.setitimer(signal.ITIMER_REAL, a.seconds)
    while True:
        signal.pause()


if __name__ == "__main__":
    main()

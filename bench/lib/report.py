"""report.py: the tables and plots of bench/run, as Markdown on stdout.

    report.py RUNS TARGETS LABELS CLK IMG_DIR IMG_LINK

RUNS: one line per wrk run: path, c, backend, round, wrk output file, backend CPU ticks,
nginx worker CPU ticks (or -), tab-separated. TARGETS: path, c, backend, and "ok" or why the
target was not measured. LABELS: backend id, its label. CLK: clock ticks per second.
IMG_DIR: where the plots go (PNG; skipped, with a note, when matplotlib is missing);
IMG_LINK: the same directory as the Markdown links it (relative to the document)."""

import math
import os
import re
import statistics
import sys

UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}

# family: title, its paths (id, heading), the ceiling (path, backend, name) or None
FAMILIES = [
    ("fastcgi", "nginx → FastCGI", [
        ("fcgi-tcp-close", "TCP, a connection per request"),
        ("fcgi-tcp-keep", "TCP, kept connections (`keepalive 32` + `fastcgi_keep_conn on`)"),
        ("fcgi-unix-close", "Unix socket, a connection per request"),
        ("fcgi-unix-keep", "Unix socket, kept connections"),
    ], "null"),
    ("scgi", "nginx → SCGI", [
        ("scgi-tcp", "TCP (SCGI: a connection per request)"),
        ("scgi-unix", "Unix socket"),
    ], "null"),
    ("http", "Direct HTTP/1.1 (wrk → server, keep-alive)", [
        ("http", "loopback TCP"),
    ], "nginx_return"),
    ("cgi", "CGI (a process per request)", [
        ("cgi-apache", "Apache (event MPM, mod_cgid) → CGI"),
        ("cgi-fcgiwrap", "nginx → fcgiwrap (4 processes, Unix socket) → CGI"),
    ], None),
]
# Not peers: the ceilings, and gatekit's own rows.
NOT_PEERS = {"null", "nginx_return", "gatekit", "gatekit_sdk", "gatekit_cgi", "gatekit_fcgi_ref"}


def parse_wrk(path):
    try:
        text = open(path, encoding="utf-8", errors="replace").read()
    except OSError:
        text = ""

    def num(pat):
        m = re.search(pat, text)
        return float(m.group(1)) if m else 0.0

    def pct(p):
        m = re.search(rf"^\s*{p}%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M)
        return float(m.group(1)) * UNIT_MS[m.group(2)] if m else math.nan

    se = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    conn, rd, wr, to = map(int, se.groups()) if se else (0, 0, 0, 0)
    return {
        "rps": num(r"Requests/sec:\s*([\d.]+)"),
        "reqs": int(num(r"(\d+) requests in")),
        "p50": pct(50),
        "p99": pct(99),
        "timeouts": to,
        "errors": conn + rd + wr + int(num(r"Non-2xx or 3xx responses: (\d+)")),
    }


def read_tsv(path):
    try:
        with open(path, encoding="utf-8") as f:
            return [line.rstrip("\n").split("\t") for line in f if line.strip()]
    except OSError:
        return []


def pyplot():
    """matplotlib.pyplot with the Agg backend, or None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def main():
    runs_path, targets_path, labels_path, clk, img_dir, img_link = sys.argv[1:7]
    clk = int(clk)
    labels = dict((row[0], row[1]) for row in read_tsv(labels_path))
    order = [row[0] for row in read_tsv(labels_path)]
    status = {(p, int(c), b): s for p, c, b, s in read_tsv(targets_path)}
    raw = {}
    for path, c, b, rnd, out, bt, nt in read_tsv(runs_path):
        d = parse_wrk(out)
        d["round"] = rnd
        d["bticks"] = int(bt) if bt != "-" else None
        d["nticks"] = int(nt) if nt != "-" else None
        raw.setdefault((path, int(c), b), []).append(d)

    def agg(key):
        rs = raw.get(key)
        if not rs:
            return None
        reqs = sum(d["reqs"] for d in rs)

        def per(k):
            if reqs == 0 or any(d[k] is None for d in rs):
                return None
            return sum(d[k] for d in rs) / clk * 1e6 / reqs

        med = lambda k: statistics.median(d[k] for d in rs)
        return {
            "rps": med("rps"), "p50": med("p50"), "p99": med("p99"),
            "timeouts": sum(d["timeouts"] for d in rs), "errors": sum(d["errors"] for d in rs),
            "bcpu": per("bticks"), "ncpu": per("nticks"), "n": len(rs),
        }

    res = {k: agg(k) for k in raw}

    def per_round(key, ref):
        """The median over rounds of key's req/s over ref's in the same round:
        interleaved runs of one round share the machine's state, so this moves
        less with the load of the moment than a ratio of two medians."""
        mine = {d["round"]: d["rps"] for d in raw.get(key, [])}
        theirs = {d["round"]: d["rps"] for d in raw.get(ref, [])}
        ratios = [mine[r] / theirs[r] for r in mine if r in theirs and theirs[r] > 0]
        return statistics.median(ratios) if len(ratios) >= 2 else None
    plt = pyplot()
    conns = sorted({k[1] for k in status})
    ms = lambda x: "–" if x is None or math.isnan(x) else (f"{x:.2f} ms" if x < 10 else f"{x:,.0f} ms")
    cpu = lambda x: "–" if x is None else f"{x:.1f}"
    label = lambda b: labels.get(b, b)

    def ceiling(fam_ceiling, path, c):
        if fam_ceiling == "nginx_return":
            return res.get(("return", c, "nginx_return"))
        if fam_ceiling:
            return res.get((path, c, fam_ceiling))
        return None

    def best_peer(path, c):
        best = None
        for (p, cc, b), a in res.items():
            if p == path and cc == c and b not in NOT_PEERS and a and a["rps"] > 0:
                if best is None or a["rps"] > best[1]["rps"]:
                    best = (b, a)
        return best

    out = []
    summary = []
    plots = {}
    for fam, title, paths, fam_ceiling in FAMILIES:
        fam_has = [p for p, _ in paths if any(k[0] == p for k in status)]
        if not fam_has:
            continue
        ceil_name = {"null": "null responder", "nginx_return": "nginx `return 200`"}.get(fam_ceiling)
        out.append(f"### {title}\n")
        for path, heading in paths:
            if path not in fam_has:
                continue
            out.append(f"#### {heading}\n")
            cols = "| c | backend | req/s | p50 | p99 | timeouts / errors | backend CPU µs/req | nginx CPU µs/req | × best peer |"
            cols += f" × {ceil_name} |" if ceil_name else ""
            out.append(cols)
            out.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if ceil_name else ""))
            rows_for_plot = []
            for c in conns:
                keys = [k for k in status if k[0] == path and k[1] == c]
                if fam == "http" and ("return", c, "nginx_return") in status:
                    keys.append(("return", c, "nginx_return"))
                if fam == "scgi":
                    ref = ("fcgi-" + path.split("-", 1)[1] + "-close", c, "gatekit")
                    if ref in status:
                        keys.append(ref)
                keys.sort(key=lambda k: order.index(k[2]) if k[2] in order else 99)
                best = best_peer(path, c)
                ceil = ceiling(fam_ceiling, path, c)
                for k in keys:
                    b = k[2]
                    name = label(b)
                    if k[0] != path and k[0] != "return":
                        name = f"{label(b)} FastCGI, same socket, no keep-conn (reference)"
                    a = res.get(k)
                    if not a:
                        why = status.get(k, "not run")
                        why = "not measured" if why == "ok" else why
                        out.append(f"| {c} | {name} | {why} | | | | | | |" + (" |" if ceil_name else ""))
                        continue
                    rb = f"{a['rps'] / best[1]['rps']:.2f}" if best and b != best[0] else ("1" if best else "–")
                    rc = f"{a['rps'] / ceil['rps']:.2f}" if ceil and ceil["rps"] else "–"
                    line = (f"| {c} | {name} | {a['rps']:,.0f} | {ms(a['p50'])} | {ms(a['p99'])} | "
                            f"{a['timeouts']} / {a['errors']} | {cpu(a['bcpu'])} | {cpu(a['ncpu'])} | {rb} |")
                    out.append(line + (f" {rc} |" if ceil_name else ""))
                    if k[0] == path or k[0] == "return":
                        rows_for_plot.append((c, name, a["rps"], b))
                gkey = (path, c, "gatekit_cgi" if fam == "cgi" else "gatekit")
                g = res.get(gkey)
                if g:
                    ckey = ("return", c, "nginx_return") if fam_ceiling == "nginx_return" else (path, c, fam_ceiling)
                    pr = per_round(gkey, ckey) if ceil else None
                    summary.append((title, heading, c, g, best, ceil, ceil_name, pr))
            out.append("")
            plots.setdefault(fam, []).append((heading, rows_for_plot))
        if fam == "fastcgi":
            out.append("Rows: gatekit = `examples/hello_fastcgi`; gatekit sdk = `examples/hello_fastcgi_sdk`."
                       " × best peer: req/s over the fastest peer that is neither gatekit nor the null responder,"
                       " on the same path and c.\n")
        if fam == "scgi":
            out.append("The reference row is gatekit's FastCGI hello on the same socket type without kept"
                       " connections, from the FastCGI tables: the other one-connection-per-request gateway.\n")
        if plt:
            out.append(f"![{title}: requests/s]({img_link}/bench-{fam}.png)\n")

    # The summary, first.
    head = ["### gatekit against the best peer, at a glance\n",
            "| path | c | gatekit req/s | best peer | its req/s | × best peer | × ceiling | × ceiling, per round |",
            "|---|---:|---:|---|---:|---:|---:|---:|"]
    for title, heading, c, g, best, ceil, ceil_name, pr in summary:
        short = f"{title}: {heading.split(' (')[0]}"
        bp = f"{label(best[0])} | {best[1]['rps']:,.0f} | {g['rps'] / best[1]['rps']:.2f}" if best else "– | – | –"
        rc = f"{g['rps'] / ceil['rps']:.2f} ({ceil_name})" if ceil and ceil["rps"] else "–"
        prs = f"{pr:.2f}" if pr is not None else "–"
        head.append(f"| {short} | {c} | {g['rps']:,.0f} | {bp} | {rc} | {prs} |")
    head.append("")
    if not plt:
        out.append("(no plots: matplotlib is not installed)\n")
    print("\n".join(head + out))
    if not plt:
        return
    os.makedirs(img_dir, exist_ok=True)
    colors = {32: "#4c72b0", 256: "#dd8452"}
    for fam, title, _paths, _c in FAMILIES:
        panels = plots.get(fam)
        if not panels:
            continue
        n = len(panels)
        cols = 2 if n > 1 else 1
        rows = (n + cols - 1) // cols
        names_max = max((len({r[1] for r in p[1]}) for p in panels), default=1)
        fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 0.5 + rows * (0.55 * names_max + 1.2)), squeeze=False)
        for ax in axes.flat[n:]:
            ax.axis("off")
        for ax, (heading, rows_) in zip(axes.flat, panels):
            names = []
            for _c, name, _r, _b in rows_:
                if name not in names:
                    names.append(name)
            cs = sorted({r[0] for r in rows_})
            h = 0.8 / max(len(cs), 1)
            for j, c in enumerate(cs):
                ys, xs, hatches = [], [], []
                for c2, name, rps, b in rows_:
                    if c2 == c:
                        ys.append(names.index(name) + j * h - 0.4 + h / 2)
                        xs.append(rps)
                        hatches.append("//" if b.startswith("gatekit") else "")
                bars = ax.barh(ys, xs, height=h, color=colors.get(c, None))
                for bar, hatch in zip(bars, hatches):
                    bar.set_hatch(hatch)
            ax.set_yticks(range(len(names)))
            ax.set_yticklabels([re.sub(r"`", "", x) for x in names], fontsize=8)
            ax.invert_yaxis()
            ax.set_xlabel("requests/s (median)", fontsize=8)
            ax.tick_params(axis="x", labelsize=8)
            ax.set_title(re.sub(r"\s*\(.*", "", heading.replace("`", "")), fontsize=9)
            ax.grid(axis="x", alpha=0.3)
            from matplotlib.patches import Patch

            ax.legend(handles=[Patch(color=colors.get(c), label=f"c={c}") for c in cs], fontsize=7, loc="lower right")
        fig.suptitle(f"{title.replace('`', '')}: hello world, requests/s (gatekit hatched)", fontsize=10)
        fig.tight_layout()
        fig.savefig(os.path.join(img_dir, f"bench-{fam}.png"), dpi=90)
        plt.close(fig)


main()

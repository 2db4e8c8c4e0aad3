#!/usr/bin/env python3
"""Checks of docker/ that need no container runtime (run by docker_lint_test.sh).

  docker_lint.py dockerfile DOCKERFILE SOURCE_DIR   the Dockerfile against the repository
  docker_lint.py topology CONFIG DOCKERFILE         compose's resolved config (the output of
                                                    `docker-compose config`, every profile on)
  docker_lint.py packages DOCKERFILE STAGE          the packages STAGE installs, one a line

Each problem is one line on stdout; the exit status is 1 when there is any.
"""
import fnmatch
import json
import os
import re
import shlex
import sys

BASE_IMAGE = re.compile(r"^debian:bookworm(-slim)?$")
# What a runtime stage must not carry.
BUILD_ONLY = re.compile(r"^(g\+\+|gcc|clang|cmake|ninja-build|make|build-essential|.*-dev)$")


def instructions(path):
    """(line number, INSTRUCTION, rest) with continuations joined, comments dropped."""
    out, buf, start = [], "", 0
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            stripped = line.strip()
            if not buf and (not stripped or stripped.startswith("#")):
                continue
            if buf and stripped.startswith("#"):
                continue  # a comment inside a continued instruction
            if not buf:
                start = n
            if stripped.endswith("\\"):
                buf += stripped[:-1] + " "
                continue
            buf += stripped
            word, _, rest = buf.partition(" ")
            out.append((start, word.upper(), rest.strip()))
            buf = ""
    return out


def stages(path):
    """[{name, base, lines: [(n, INSTR, rest)]}] in order."""
    result = []
    for n, instr, rest in instructions(path):
        if instr == "FROM":
            words = rest.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            result.append({"name": name, "base": words[0], "line": n, "lines": []})
        elif result:
            result[-1]["lines"].append((n, instr, rest))
    return result


def copy_parts(rest):
    """(flags, sources, destination) of a COPY/ADD, shell or JSON form."""
    words = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
    flags = [w for w in words if w.startswith("--")]
    paths = [w for w in words if not w.startswith("--")]
    return flags, paths[:-1], paths[-1] if paths else None


def apt_packages(rest):
    """Packages named after `apt-get install` in a RUN line."""
    pkgs = []
    for part in re.split(r"&&|;|\|\|", rest):
        words = part.split()
        if "apt-get" in words and "install" in words:
            for w in words[words.index("install") + 1:]:
                if not w.startswith("-"):
                    pkgs.append(w)
    return pkgs


def ignored(source, patterns):
    """Whether .dockerignore drops SOURCE (or a folder holding it) from the context."""
    parts = source.strip("/").split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    hit = False
    for p in patterns:
        negate = p.startswith("!")
        p = p.lstrip("!").strip("/")
        if any(fnmatch.fnmatchcase(pre, p) or fnmatch.fnmatchcase(pre, p.replace("**/", ""))
               for pre in prefixes):
            hit = not negate
    return hit


def check_dockerfile(dockerfile, src):
    problems = []
    say = problems.append
    cmake = open(os.path.join(src, "CMakeLists.txt"), encoding="utf-8").read()
    options = set(re.findall(r"option\((\w+)", cmake))
    ignore_file = os.path.join(src, ".dockerignore")
    patterns = []
    if os.path.exists(ignore_file):
        for line in open(ignore_file, encoding="utf-8"):
            line = line.strip()
            if line and not line.startswith("#"):
                patterns.append(line)

    all_stages = stages(dockerfile)
    if not all_stages:
        say("no FROM line")
    seen = []
    for st in all_stages:
        where = f"FROM at line {st['line']}"
        if st["base"] not in seen and not BASE_IMAGE.match(st["base"]):
            say(f"{where}: base image {st['base']} is not Debian 12 (debian:bookworm[-slim])")
        if st["name"]:
            if st["name"] in seen:
                say(f"{where}: stage name {st['name']} used twice")
            seen.append(st["name"])
        user = None
        copied_to = []
        for n, instr, rest in st["lines"]:
            if instr in ("COPY", "ADD"):
                flags, sources, dest = copy_parts(rest)
                copied_to.append(dest)
                frm = [f.split("=", 1)[1] for f in flags if f.startswith("--from=")]
                if frm:
                    earlier = seen[:-1] if st["name"] else seen
                    if frm[0] not in earlier:
                        say(f"line {n}: COPY --from={frm[0]} names no earlier stage")
                    continue
                for s in sources:
                    if not os.path.exists(os.path.join(src, s)):
                        say(f"line {n}: {instr} source {s} does not exist in the repository")
                    elif s not in (".", "./") and ignored(s, patterns):
                        say(f"line {n}: {instr} source {s} is excluded by .dockerignore")
            elif instr == "RUN":
                for script in re.findall(r"(?<![\w/.])scripts/[\w./-]+", rest):
                    p = os.path.join(src, script)
                    if not (os.path.isfile(p) and os.access(p, os.X_OK)):
                        say(f"line {n}: RUN uses {script}, not an executable file of the repository")
                for opt in re.findall(r"-D(RANGEKV_\w+)=", rest):
                    if opt not in options:
                        say(f"line {n}: -D{opt} is no option() of CMakeLists.txt")
            elif instr == "USER":
                user = rest.split(":")[0]
            elif instr == "ENTRYPOINT":
                words = json.loads(rest) if rest.startswith("[") else rest.split()
                if not rest.startswith("["):
                    say(f"line {n}: ENTRYPOINT in shell form would not pass signals on")
                if words and words[0].startswith("/") and words[0] not in copied_to:
                    say(f"line {n}: ENTRYPOINT {words[0]} is copied into this stage by no COPY")
        if st["name"] != "build":
            if user in (None, "root", "0"):
                say(f"{where}: stage {st['name']} runs as root (no USER naming another user)")
            for n, instr, rest in st["lines"]:
                if instr == "RUN":
                    for pkg in apt_packages(rest):
                        if BUILD_ONLY.match(pkg):
                            say(f"line {n}: stage {st['name']} installs build-only package {pkg}")
    for want in ("build", "zookeeper", "runtime"):
        if want not in seen:
            say(f"no stage named {want}")
    if seen and seen[-1] != "runtime":
        say("the last stage (the default target) is not runtime")
    runtime = next((s for s in all_stages if s["name"] == "runtime"), None)
    if runtime:
        text = " ".join(rest for _, _, rest in runtime["lines"])
        if "--from=build" not in text:
            say("runtime copies nothing from the build stage")
    build = next((s for s in all_stages if s["name"] == "build"), None)
    if build:
        text = " ".join(rest for _, _, rest in build["lines"])
        for prog in ("kvnode", "kvcoord", "kvrepl", "kvbench"):
            if not re.search(rf"build/\w+/{prog}\b", text):
                say(f"the build stage does not take out {prog}")
        for script in ("scripts/setup", "scripts/build"):
            if not re.search(rf"(^|[\s;&]){re.escape(script)}\b", text):
                say(f"the build stage does not run {script}")
    return problems


def check_topology(config_path, dockerfile):
    import yaml
    problems = []
    say = problems.append
    with open(config_path, encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    services = cfg.get("services") or {}
    volumes = set((cfg.get("volumes") or {}).keys())
    stage_names = {s["name"] for s in stages(dockerfile)}

    def env(svc):
        e = services[svc].get("environment") or {}
        if isinstance(e, list):
            e = dict(x.split("=", 1) for x in e)
        return {k: "" if v is None else str(v) for k, v in e.items()}

    def role(svc):
        s = services[svc]
        words = list(s.get("entrypoint") or []) + list(s.get("command") or [])
        if "zookeeper" == (s.get("build") or {}).get("target"):
            return "zk"
        for r in ("node", "coord", "repl", "bench"):
            if r in words:
                return r
        return None

    by_role = {}
    for svc in services:
        by_role.setdefault(role(svc), []).append(svc)
        build = services[svc].get("build") or {}
        if build.get("target") and build["target"] not in stage_names:
            say(f"{svc}: build target {build['target']} is no stage of the Dockerfile")
        for dep in services[svc].get("depends_on") or {}:
            if dep not in services:
                say(f"{svc}: depends on {dep}, which is no service")
        for v in services[svc].get("volumes") or []:
            name = (v.get("source") if isinstance(v, dict) else v.split(":")[0])
            if name and not name.startswith(("/", ".")) and name not in volumes:
                say(f"{svc}: volume {name} is not declared")
    if by_role.get(None):
        say(f"services of no known role: {', '.join(by_role[None])}")

    zks = by_role.get("zk", [])
    if len(zks) < 3 or len(zks) % 2 == 0:
        say(f"the ZooKeeper ensemble has {len(zks)} servers; want an odd count of at least 3")
    ids = {}
    for z in zks:
        e = env(z)
        listed = [s.split(":")[0] for s in re.split(r"[,\s]+", e.get("ZK_SERVERS", "")) if s]
        if sorted(listed) != sorted(zks):
            say(f"{z}: ZK_SERVERS={e.get('ZK_SERVERS')} does not list every ZooKeeper service")
        myid = e.get("ZK_MYID", "")
        if not myid.isdigit() or not 1 <= int(myid) <= len(listed) or listed[int(myid) - 1] != z:
            say(f"{z}: ZK_MYID={myid} is not its place in ZK_SERVERS")
        ids[myid] = z
        if "health" not in " ".join(map(str, (services[z].get("healthcheck") or {}).get("test", []))):
            say(f"{z}: no health check")
    if len(ids) != len(zks):
        say("two ZooKeeper services share a ZK_MYID")

    clusters = set()
    for r in ("node", "coord", "repl", "bench"):
        for svc in by_role.get(r, []):
            e = env(svc)
            clusters.add(e.get("KV_CLUSTER", "default"))
            hosts = sorted(h.split(":")[0] for h in e.get("KV_ZK", "").split(",") if h)
            if hosts != sorted(zks):
                say(f"{svc}: KV_ZK={e.get('KV_ZK')} does not name every ZooKeeper service")
            if r in ("node", "coord"):
                deps = services[svc].get("depends_on") or {}
                for z in zks:
                    if (deps.get(z) or {}).get("condition") != "service_healthy":
                        say(f"{svc}: does not wait for {z} to be healthy")
                if not services[svc].get("healthcheck"):
                    say(f"{svc}: no health check")
    if len(clusters) > 1:
        say(f"services name different clusters: {sorted(clusters)}")

    node_ids, node_volumes = {}, {}
    for svc in by_role.get("node", []):
        e = env(svc)
        listen_port = e.get("KV_LISTEN", "0.0.0.0:7000").rsplit(":", 1)[-1]
        if e.get("KV_ADVERTISE") != f"{svc}:{listen_port}":
            say(f"{svc}: KV_ADVERTISE={e.get('KV_ADVERTISE')}, want {svc}:{listen_port}")
        node_id = e.get("KV_ID")
        if not node_id:
            say(f"{svc}: no KV_ID")
        elif node_id in node_ids:
            say(f"{svc}: KV_ID {node_id} is also {node_ids[node_id]}'s")
        node_ids[node_id] = svc
        data = [v for v in services[svc].get("volumes") or []
                if (v.get("target") if isinstance(v, dict) else v.split(":")[1]) == "/var/lib/rangekv"]
        if not data:
            say(f"{svc}: no volume at /var/lib/rangekv")
        for v in data:
            name = v.get("source") if isinstance(v, dict) else v.split(":")[0]
            if name in node_volumes:
                say(f"{svc}: shares volume {name} with {node_volumes[name]}")
            node_volumes[name] = svc
    if len(by_role.get("coord", [])) < 2:
        say("fewer than two coordinators (no stand-by)")
    # `docker compose up` starts every service without a profile.
    for svc in by_role.get("repl", []) + by_role.get("bench", []):
        if not services[svc].get("profiles"):
            say(f"{svc}: no profile, so `up` would start it")
    if len([s for s in by_role.get("node", []) if not services[s].get("profiles")]) < 3:
        say("fewer than three nodes start with `up`")
    for svc in by_role.get("repl", []):
        s = services[svc]
        if not (s.get("stdin_open") and s.get("tty")):
            say(f"{svc}: wants stdin_open and tty to be attached")
    if not by_role.get("repl"):
        say("no repl service")
    return problems


def main(argv):
    if len(argv) == 4 and argv[1] == "dockerfile":
        problems = check_dockerfile(argv[2], argv[3])
    elif len(argv) == 4 and argv[1] == "topology":
        problems = check_topology(argv[2], argv[3])
    elif len(argv) == 4 and argv[1] == "packages":
        st = next((s for s in stages(argv[2]) if s["name"] == argv[3]), None)
        if st is None:
            print(f"no stage {argv[3]}")
            return 1
        for _, instr, rest in st["lines"]:
            if instr == "RUN":
                for pkg in apt_packages(rest):
                    print(pkg)
        return 0
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

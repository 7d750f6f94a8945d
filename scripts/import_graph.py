#!/usr/bin/env python3
# The import graph of src/ drawn from its own `crate::`, `super::` and `self::` paths (use lines
# and paths inline; comments left out): cycles between files and between top-level modules,
# and the module graph. Issue 19 asks for it before and after a reshaping.
#
#   scripts/import_graph.py            # src/ of this checkout
#   scripts/import_graph.py src node/  # and every edge out of the files under src/node/
import os, re, sys, collections
root = sys.argv[1] if len(sys.argv) > 1 else 'src'
files = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs'):
            p = os.path.join(d, f)
            rel = os.path.relpath(p, root)
            files[rel] = open(p).read()
# module path -> file
mod2file = {}
for rel in files:
    parts = rel[:-3].split('/')
    if parts[-1] == 'mod' or rel == 'lib.rs':
        parts = parts[:-1] if rel != 'lib.rs' else []
    mod2file[tuple(parts)] = rel
def resolve(path):
    # a name the crate root re-exports (`crate::Process`) stands for where it is defined
    if path and path[0] in root_names:
        path = root_names[path[0]] + path[1:]
    # longest prefix that is a module
    for n in range(len(path), -1, -1):
        if tuple(path[:n]) in mod2file:
            return mod2file[tuple(path[:n])]
    return None
def strip_comments(src):
    # unit tests (by convention the file's last module) may reach any layer: left out
    src = re.split(r'#\[cfg\(test\)\]\s*mod \w+', src)[0]
    src = re.sub(r'/\*.*?\*/', '', src, flags=re.S)
    out = []
    for line in src.split('\n'):
        s = line.strip()
        if s.startswith('//'):
            continue
        out.append(line)
    return '\n'.join(out)
def expand(prefix, body):
    # expand a use tree "a::{b, c::{d}}"
    res = []
    body = body.strip()
    m = re.match(r'^([\w:]*?)(::)?\{(.*)\}$', body, flags=re.S)
    if m and body.endswith('}'):
        pre = m.group(1)
        inner = m.group(3)
        depth = 0; cur = ''; items = []
        for ch in inner:
            if ch == '{': depth += 1
            if ch == '}': depth -= 1
            if ch == ',' and depth == 0:
                items.append(cur); cur = ''
            else:
                cur += ch
        items.append(cur)
        np = prefix + [x for x in pre.split('::') if x]
        for it in items:
            if it.strip():
                res += expand(np, it)
        return res
    body = re.sub(r'\s+as\s+\w+$', '', body)
    return [prefix + [x for x in body.split('::') if x]]
root_names = {}
for m in re.finditer(r'\bpub use\s+([^;]+);', strip_comments(files.get('lib.rs', ''))):
    for p in expand([], m.group(1)):
        if len(p) > 1:
            root_names[p[-1]] = p[:-1]
edges = collections.defaultdict(set)
for rel, src in files.items():
    src = strip_comments(src)
    me = rel
    parts = rel[:-3].split('/')
    selfmod = parts[:-1] if parts[-1] == 'mod' else parts
    if rel == 'lib.rs': selfmod = []
    paths = []
    for m in re.finditer(r'\buse\s+([^;]+);', src):
        body = m.group(1)
        for p in expand([], body):
            paths.append(p)
    for m in re.finditer(r'\bcrate::((?:\w+::)*\w+)', src):
        paths.append(['crate'] + m.group(1).split('::'))
    for p in paths:
        if not p: continue
        if p[0] == 'crate':
            q = p[1:]
        elif p[0] == 'super':
            base = selfmod[:]
            while p and p[0] == 'super':
                base = base[:-1]; p = p[1:]
            q = base + p
        elif p[0] == 'self':
            q = selfmod + p[1:]
        else:
            continue
        t = resolve(q)
        if t and t != me:
            edges[me].add(t)
def top(rel):
    parts = rel[:-3].split('/')
    return parts[0] if len(parts) > 1 else rel[:-3]
def scc(nodes, adj):
    idx = {}; low = {}; st = []; on = set(); out = []; c = [0]
    sys.setrecursionlimit(10000)
    def go(v):
        idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
        for w in sorted(adj.get(v, ())):
            if w not in idx:
                go(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], idx[w])
        if low[v] == idx[v]:
            comp = []
            while True:
                w = st.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: out.append(sorted(comp))
    for v in sorted(nodes):
        if v not in idx: go(v)
    return out
print(f"files: {len(files)}, file edges: {sum(len(v) for v in edges.values())}")
print("file-level cycles:")
for comp in scc(files.keys(), edges):
    print("  ", ", ".join(comp))
tadj = collections.defaultdict(set)
for a, bs in edges.items():
    for b in bs:
        if top(a) != top(b) and top(a) != 'lib' and top(b) != 'lib':
            tadj[top(a)].add(top(b))
mods = sorted(set(top(r) for r in files))
print(f"top-level modules: {len(mods)}")
print("module-level cycles:")
for comp in scc(mods, tadj):
    print("  ", ", ".join(comp))
    for a in comp:
        for b in comp:
            if b in tadj[a]:
                ex = sorted(f"{x}->{y}" for x in files for y in edges[x] if top(x)==a and top(y)==b)
                print(f"     {a} -> {b}: {len(ex)} edges: " + "; ".join(ex[:12]) + (" ..." if len(ex)>12 else ""))
print("module graph:")
for m in mods:
    print(f"   {m} -> {', '.join(sorted(tadj[m]))}")
if len(sys.argv) > 2:
    for sub in sys.argv[2:]:
        print(f"edges out of {sub}:")
        for a in sorted(files):
            if a.startswith(sub):
                print("  ", a, "->", ", ".join(sorted(edges[a])))

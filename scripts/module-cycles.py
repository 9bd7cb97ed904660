#!/usr/bin/env python3
"""Import circles between the modules of a crate: `python3 scripts/module-cycles.py migrate-runtime/src [--graph]`.

Reads the non-test code of every file under the folder, resolves each `crate::`, `super::` and child-module path
(in `use` groups too) to the file that defines that module, and prints every cycle (`--graph`: every module's
imports too). Exits 1 when there is a cycle. `.ci/run` runs it on each crate, so one cannot land."""
import os, re, sys
root = sys.argv[1]
show_graph = '--graph' in sys.argv[2:]
files = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs'):
            rel = os.path.relpath(os.path.join(d, f), root)[:-3]
            mod = '' if rel == 'lib' else (rel[:-4] if rel.endswith('/mod') else rel)
            files[mod] = os.path.join(d, f)
def resolve(parts):
    for k in range(len(parts), -1, -1):
        cand = '/'.join(parts[:k])
        if cand in files: return cand
def expand(prefix, body):
    # flatten `a::{b, c::{d}}` into paths
    out, depth, cur = [], 0, ''
    for ch in body + ',':
        if ch == '{': depth += 1
        if ch == '}': depth -= 1
        if ch == ',' and depth == 0:
            cur = cur.strip()
            if cur:
                m = re.match(r'([\w:]*?)::?\{(.*)\}$', cur, re.S)
                if m: out += expand(prefix + [p for p in m.group(1).split('::') if p], m.group(2))
                else: out.append(prefix + [p for p in cur.split(' as ')[0].split('::') if p])
            cur = ''
        else:
            cur += ch
    return out
graph = {m: set() for m in files}
for mod, p in files.items():
    text = open(p).read().split('#[cfg(test)]\nmod tests {')[0]
    text = re.sub(r'//.*', '', text)
    here = mod.split('/') if mod else []
    paths = []
    # Items of this file: `super::` inside an inline `mod x { .. }` names them, not the parent's.
    own = set(re.findall(r'\b(?:fn|struct|enum|static|const|type|trait)\s+(\w+)', text))
    for m in re.finditer(r'\b(crate|super)::(\{[^;]*\}|[\w:]+)', text):
        root_kw, rest = m.group(1), m.group(2)
        names = re.findall(r'\w+', rest)
        if root_kw == 'super' and names and all(n in own for n in names):
            continue
        # `super` of `a/b` (file `a/b.rs` or `a/b/mod.rs`) is `a`, either way.
        start = [] if root_kw == 'crate' else here[:-1]
        if rest.startswith('{'): paths += expand(start, rest[1:-1])
        else: paths.append(start + [x for x in rest.split('::') if x])
    # `use child::...` in a module with children: a path relative to the module itself
    for m in re.finditer(r'^\s*(?:pub(?:\([\w]+\))? )?use (\w+)::(\{[^;]*\}|[\w:]+)', text, re.M):
        first = m.group(1)
        if first in ('crate', 'super', 'self', 'std', 'core'): continue
        child = '/'.join(here + [first])
        if child in files:
            rest = m.group(2)
            if rest.startswith('{'): paths += expand(here + [first], rest[1:-1])
            else: paths.append(here + [first] + [x for x in rest.split('::') if x])
    for path in paths:
        t = resolve(path)
        if t is not None and t != mod: graph[mod].add(t)
cycles, color, stack = [], {}, []
def dfs(u):
    color[u] = 1; stack.append(u)
    for v in sorted(graph[u]):
        if color.get(v) == 1: cycles.append(stack[stack.index(v):] + [v])
        elif not color.get(v): dfs(v)
    stack.pop(); color[u] = 2
for u in sorted(graph):
    if not color.get(u): dfs(u)
if show_graph:
    for mod in sorted(graph):
        print(f"{mod or 'lib'} -> {', '.join(sorted(x or 'lib' for x in graph[mod]))}")
for c in cycles:
    print(f"{root}: import circle: " + " -> ".join(x or 'lib' for x in c))
print(f"{root}: {len(graph)} modules, {sum(len(v) for v in graph.values())} imports, {len(cycles)} circles")
sys.exit(1 if cycles else 0)

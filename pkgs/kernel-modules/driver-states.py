"""The verdicts of pkgs/kernel-modules/driver-states.nix: reads a kernel's .config and
its series' restore plan (JSON), writes rdma-drivers.json and `verdicts`. Mirrors the
Rust planner (src/kernel/restore.rs) for a recipe planned from the source alone."""
import json
import os
import sys

config_path, plan_path, version, out = sys.argv[1:]
values = {}
for line in open(config_path):
    key, eq, value = line.strip().partition("=")
    if eq and key.startswith("CONFIG_"):
        values[key[len("CONFIG_"):]] = value[1:-1] if value.startswith('"') else value
plan = json.load(open(plan_path))


def state(sym):
    return values.get(sym.removeprefix("CONFIG_"), "unset")


def tokens(expr):
    out, i = [], 0
    while i < len(expr):
        c = expr[i]
        if c.isspace():
            i += 1
        elif c in "()":
            out.append(c)
            i += 1
        elif c in "&|!=<>":
            two = expr[i:i + 2]
            if two in ("&&", "||", "!=", "<=", ">="):
                out.append(two)
                i += 2
            else:
                out.append(c)
                i += 1
        elif c == '"':
            j = expr.find('"', i + 1)
            j = len(expr) if j < 0 else j
            out.append(expr[i:j])  # the leading quote marks a string
            i = j + 1
        else:
            j = i
            while j < len(expr) and not expr[j].isspace() and expr[j] not in '()&|!=<>"':
                j += 1
            out.append(expr[i:j])
            i = j
    return out


class Eval:
    """Kconfig's tristate logic: n=0 < m=1 < y=2; `planned` symbols are m."""

    def __init__(self, planned):
        self.planned = planned

    def value(self, sym):
        if sym in ("y", "m", "n"):
            return sym
        if sym.startswith('"'):
            return sym[1:]
        if sym in self.planned:
            return "m"
        v = values.get(sym)
        return "n" if v is None else v

    def tri(self, sym):
        return {"y": 2, "m": 1}.get(self.value(sym), 0)

    def eval(self, expr):
        self.t, self.pos, self.expr = tokens(expr), 0, expr
        v = self.or_()
        if self.pos != len(self.t):
            raise ValueError(f"Kconfig expression {expr!r}: unexpected {self.t[self.pos]!r}")
        return v

    def peek(self):
        return self.t[self.pos] if self.pos < len(self.t) else None

    def or_(self):
        v = self.and_()
        while self.peek() == "||":
            self.pos += 1
            v = max(v, self.and_())
        return v

    def and_(self):
        v = self.not_()
        while self.peek() == "&&":
            self.pos += 1
            v = min(v, self.not_())
        return v

    def not_(self):
        if self.peek() == "!":
            self.pos += 1
            return 2 - self.not_()
        return self.atom()

    def atom(self):
        tok = self.peek()
        if tok is None:
            raise ValueError(f"Kconfig expression {self.expr!r}: ends early")
        self.pos += 1
        if tok == "(":
            v = self.or_()
            if self.peek() != ")":
                raise ValueError(f"Kconfig expression {self.expr!r}: unbalanced parentheses")
            self.pos += 1
            return v
        op = self.peek()
        if op in ("=", "!="):
            rhs = self.t[self.pos + 1]
            self.pos += 2
            return 2 if (self.value(tok) == self.value(rhs)) == (op == "=") else 0
        if op in ("<", ">", "<=", ">="):
            raise ValueError(f"Kconfig expression {self.expr!r}: numeric comparisons are not read")
        return self.tri(tok)


def closure(name):
    """The driver and every driver it needs, transitively."""
    seen, todo = [], [name]
    while todo:
        d = todo.pop()
        if d not in seen:
            seen.append(d)
            todo.extend(plan[d].get("needs", []))
    return seen


def bare(s):
    return s.removeprefix("CONFIG_")


verdicts = {}


def verdict(name):
    if name in verdicts:
        return verdicts[name]
    d = plan[name]
    states = [f"{bare(s)}={state(s)}" for s in d["kconfig"]]
    enabled = [s for s in d["kconfig"] if state(s) in ("y", "m")]
    if "skip" in d:
        v = ("refused", d["skip"])
    elif len(enabled) == len(d["kconfig"]):
        v = ("in-tree", f"built by the kernel already ({', '.join(states)})")
    elif enabled:
        v = ("refused", f"the kernel builds part of it already ({', '.join(states)}); restoring it would replace those modules")
    else:
        v = None
        for n in d.get("needs", []):
            nv = verdict(n)
            if nv[0] == "in-tree":
                v = ("refused", f"needs {n}, which the kernel builds itself; restoring it would replace the kernel's")
            elif nv[0] != "restorable":
                v = ("refused", f"needs {n}, which can't be restored here")
            if v:
                break
        if v is None:
            planned = {bare(s) for x in closure(name) for s in plan[x].get("symbols", {})}
            ev = Eval(planned)
            for r in d.get("requires", []):
                for dep in r["depends"]:
                    try:
                        ok = ev.eval(dep) != 0
                    except ValueError as e:
                        v = ("refused", f"{r['symbol']}: {e}")
                        break
                    if not ok:
                        v = ("refused", f"{r['symbol']} depends on `{dep}`, which this kernel's config does not satisfy")
                        break
                if v is None:
                    for s in r["selects"]:
                        if state(s) not in ("y", "m"):
                            v = ("refused", f"{r['symbol']} selects {s}, which this kernel's config leaves unset")
                            break
                if v:
                    break
        v = v or ("restorable", "")
    verdicts[name] = v
    return v


drivers = {}
for name in sorted(plan):
    d = plan[name]
    syms = {s: state(s) for s in d["kconfig"]}
    st = next((x for x in ("y", "m") if x in syms.values()), "unset")
    v, why = verdict(name)
    drivers[name] = {"state": st, "symbols": syms, "verdict": v, "reason": why}
with open(os.path.join(out, "rdma-drivers.json"), "w") as f:
    json.dump({"kernel": version, "drivers": drivers}, f, indent=1, sort_keys=True)
with open(os.path.join(out, "verdicts"), "w") as f:
    for name, d in drivers.items():
        f.write(f"{name}\t{d['verdict']}\t{d['reason']}\n")

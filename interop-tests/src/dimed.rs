//! A `dimed` for tests against real mail clients: a fresh domain (`example.test`) in a
//! temporary directory, accounts with known passwords, served on loopback ports the system
//! chose (DMTP, and DMAP on implicit TLS and STARTTLS) by a runtime on its own thread. A
//! fixture: it panics, naming the step, when it cannot set up.
#![allow(clippy::expect_used)]

use dime_core::Mailbox;
use dime_core::crypto::default_provider;
use dime_server::config::Config;
use dime_server::setup::{NewDomain, create_domain, files, read_org_keys};
use dime_store::{Accounts, NewAccount, Recovery, Store, StoreConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// The domain every fixture serves.
pub const DOMAIN: &str = "example.test";
/// Its delivery host: the name in its certificate.
pub const HOST: &str = "mx.example.test";

/// A running `dimed`.
pub struct Dimed {
    /// The temporary directory (kept until drop).
    pub dir: tempfile::TempDir,
    /// `dimed.toml`.
    pub config: PathBuf,
    /// DMAP on implicit TLS.
    pub imaps: SocketAddr,
    /// DMAP with STARTTLS.
    pub imap: SocketAddr,
    /// The server's certificate (self-signed, for [`HOST`]): what a client trusts.
    pub cert: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Port 0 of 127.0.0.1: the system picks a free port when dimed binds it, so no other
/// process can take it between a choice and the bind (a free port chosen first could be).
fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Creates `users` (address, password) in the store of `config` (dimed stopped).
pub fn add_users(config: &Path, users: &[(&str, &str)]) {
    let p = default_provider();
    let c = Config::load(config).expect("config");
    let keys = read_org_keys(p, &c, None).expect("org keys");
    let pepper = std::fs::read(c.secret_path(files::PEPPER)).expect("pepper");
    let store = Store::open(
        StoreConfig {
            data_dir: c.data_dir.clone(),
            vault_path: c.secret_path(files::VAULT),
            pepper: dime_core::Secret::new(pepper),
            argon2: dime_core::crypto::Argon2Params::DEFAULT,
            idle_timeout_secs: 900,
        },
        p,
    )
    .expect("store");
    for (address, password) in users {
        let address = Mailbox::parse(address).expect("address");
        store
            .create_account(
                &mut rand_core::OsRng,
                &keys,
                &NewAccount {
                    address: &address,
                    password: password.as_bytes(),
                    recovery: Recovery::None,
                    quota_bytes: 1 << 30,
                },
                dime_server::now(),
            )
            .expect("account");
    }
}

impl Dimed {
    /// A new domain with `users`, served until drop. `extra` is appended to `dimed.toml`
    /// (for example an `[imap]` section).
    pub fn start(users: &[(&str, &str)], extra: &str) -> Dimed {
        let dir = tempfile::tempdir().expect("tempdir");
        let new = NewDomain {
            domain: dime_core::Domain::parse(DOMAIN).expect("domain"),
            host: dime_core::Domain::parse(HOST).expect("host"),
            listen: any_port(),
            // The record is not looked up: the domain delivers to its own listener as bound.
            published_port: 2626,
            dir: dir.path().join("d"),
            imap: Some((any_port(), any_port())),
        };
        let created =
            create_domain(default_provider(), &mut rand_core::OsRng, &new).expect("domain");
        let config = created.config_file;
        if !extra.is_empty() {
            let mut text = std::fs::read_to_string(&config).expect("read config");
            text.push('\n');
            text.push_str(extra);
            std::fs::write(&config, text).expect("write config");
        }
        add_users(&config, users);
        let cert = dir.path().join("d/config").join(files::TLS_CERT);
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let cfg = config.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let c = Config::load(&cfg).expect("config");
                let tls = std::sync::Arc::new(rustls::crypto::ring::default_provider());
                let running = dime_server::daemon::start(&c, default_provider(), tls)
                    .await
                    .expect("dimed start");
                let bound = running.imaps_addr.zip(running.imap_addr).expect("imap listeners");
                let _ = ready_tx.send(bound);
                let _ = stop_rx.await;
                running.shutdown().await;
            });
        });
        let (imaps, imap) = ready_rx.recv().expect("dimed started");
        Dimed { dir, config, imaps, imap, cert, stop: Some(stop), thread: Some(thread) }
    }

    /// Stops the server and waits for it.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Dimed {
    fn drop(&mut self) {
        self.halt();
    }
}

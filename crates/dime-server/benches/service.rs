//! Mail service benchmark (issue 18, `spec/dimed.md` §4), one JSON line per figure:
//! - sending: the origin-side cost of one 4 KiB message, serial, composed and queued durably by
//!   the service (sealed and origin-signed at once) against the path it replaced in the same run
//!   (sealed by the author, then opened as the origin, verified, signed and queued:
//!   `origin::submit_signed_by`);
//! - listing: a user logs in and lists an inbox of 1 and of 1,000 messages, with the default
//!   Argon2id parameters, as `dime inbox` does: the first listing (each message opened through
//!   its slots and verified, its summary stored) and the next ones (from the summaries), and
//!   the ratio of 1,000 messages to 1, login included.
//!
//! `cargo bench -p dime-server --bench service` (`DIME_BENCH_QUICK=1`: 200 messages, not 1,000).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::{NoDirectory, T0, mailbox, p, side_on};
use dime_core::crypto::Argon2Params;
use dime_core::{Mailbox, Secret};
use dime_envelope::{
    ActorKeys, Addressing, Headers, Message, Part, PartInfo, PartKind, Signer, seal_message,
};
use dime_server::origin::submit_signed_by;
use dime_server::service::{Draft, MailService, Password};
use dime_store::{
    Accounts, Deliveries, MailboxId, NewAccount, Recovery, Store, StoreConfig, Timestamp,
};
use std::sync::Arc;
use std::time::Instant;

const AUTHOR: &str = "alice@a.test";

/// Logs `user` in and lists the inbox: (login ms, listing ms, messages listed).
async fn login_and_list(svc: &MailService<NoDirectory>, user: &Mailbox) -> (f64, f64, usize) {
    let start = Instant::now();
    let mut s = svc.login(user, Password::from("pw".to_owned()), T0).await.unwrap();
    let login = start.elapsed().as_secs_f64() * 1e3;
    let listed = svc.list(&mut s, MailboxId::INBOX, T0).await.unwrap();
    let total = start.elapsed().as_secs_f64() * 1e3;
    (login, total - login, listed.len())
}

/// The cost of one 4 KiB message to a local user, `n` serial sends each way, alternating.
async fn send_cost(
    svc: &MailService<NoDirectory>,
    store: &Store,
    local: &dime_server::LocalDomain,
    n: usize,
) {
    let author = mailbox(AUTHOR);
    let to = mailbox("one@a.test");
    let mut session = svc.login(&author, Password::from("pw".to_owned()), T0).await.unwrap();
    let draft = Draft { to: to.clone(), subject: "cost".into(), body: "x".repeat(4096) };
    // The replaced path: the author's keys and signet from the store, sealed by the author,
    // then submitted as the origin (opened, verified, signed, queued).
    let mut keys = store.login(&author, b"pw", T0).unwrap();
    let (_, author_signet) = store.signet(&author).unwrap();
    let (_, to_signet) = store.signet(&to).unwrap();
    let org = ActorKeys::from_signet(&local.org_signet).unwrap();
    let addressing = Addressing {
        author: author.clone(),
        author_keys: ActorKeys::from_signet(&author_signet).unwrap(),
        origin: local.domain.clone(),
        origin_keys: org,
        destination: local.domain.clone(),
        destination_keys: org,
        recipient: to.clone(),
        recipient_keys: ActorKeys::from_signet(&to_signet).unwrap(),
    };
    let message = Message {
        common_headers: Headers::from_pairs([("Subject", "cost")]).unwrap(),
        other_headers: Headers::new(),
        parts: vec![Part {
            kind: PartKind::Display,
            info: PartInfo { content_type: "text/plain".into(), filename: String::new() },
            data: vec![b'x'; 4096],
        }],
    };
    let author_key = author_signet.signing_key().unwrap();
    let (mut new, mut old) = (Vec::new(), Vec::new());
    let mut rng = dime_testkit::seeded_rng(9);
    for _ in 0..n {
        let start = Instant::now();
        svc.send(&mut session, &draft, T0).await.unwrap();
        new.push(start.elapsed().as_secs_f64() * 1e3);
        let start = Instant::now();
        let seed = keys.current_keys().unwrap().signing_seed();
        let sealed =
            seal_message(p(), &mut rng, &addressing, Signer::Author(seed), &message).unwrap();
        submit_signed_by(p(), &mut rng, store, local, &author, &author_key, &sealed, T0).unwrap();
        old.push(start.elapsed().as_secs_f64() * 1e3);
    }
    keys.expire();
    let (new, old) = (median(new), median(old));
    println!(
        "{{\"bench\":\"send_4k\",\"serial\":{n},\"service_ms\":{new:.3},\"open_and_submit_ms\":{old:.3},\"ratio\":{:.2}}}",
        new / old
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::var("DIME_BENCH_QUICK").is_ok();
    let big = if quick { 200 } else { 1000 };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        StoreConfig {
            data_dir: dir.path().join("data"),
            vault_path: dir.path().join("vault.redb"),
            pepper: Secret::new(vec![7; 32]),
            argon2: Argon2Params::DEFAULT,
            idle_timeout_secs: 900,
        },
        p(),
    )
    .unwrap();
    let a = side_on(store, "a.test", 1, AUTHOR);
    let mut rng = dime_testkit::seeded_rng(2);
    let readers = [(mailbox("one@a.test"), 1usize), (mailbox("many@a.test"), big)];
    for (user, _) in &readers {
        let new = NewAccount {
            address: user,
            password: b"pw",
            recovery: Recovery::None,
            quota_bytes: u64::MAX,
        };
        a.store.create_account(&mut rng, a.local.keys(), &new, T0).unwrap();
    }
    let store = Arc::clone(&a.store);
    let local = Arc::clone(&a.local);
    let svc = MailService::new(a.store, a.local, Arc::new(NoDirectory), p());
    send_cost(&svc, &store, &local, if quick { 100 } else { 500 }).await;
    // The mail: 4 KiB texts from one author, sealed by the service, delivered as sealed.
    let mut author =
        svc.login(&mailbox(AUTHOR), Password::from("pw".to_owned()), T0).await.unwrap();
    for (user, n) in &readers {
        for i in 0..*n {
            let draft =
                Draft { to: user.clone(), subject: format!("message {i}"), body: "x".repeat(4096) };
            let composed = svc.compose(&mut author, &draft, T0).await.unwrap();
            store.deliver(user, &composed.envelope, Timestamp(T0.0 + i as u64)).unwrap();
        }
    }

    // The first listing of each inbox (messages opened, summaries made), then rounds that
    // alternate between the two inboxes so that both see the same machine load.
    for (user, n) in &readers {
        let (login, list, listed) = login_and_list(&svc, user).await;
        assert_eq!(listed, *n);
        println!(
            "{{\"bench\":\"first_listing\",\"messages\":{n},\"login_ms\":{login:.1},\"list_ms\":{list:.1}}}"
        );
    }
    // Let the summaries of the first listings be stored.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let rounds = if quick { 5 } else { 11 };
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new(); readers.len()];
    for _ in 0..rounds {
        for (i, (user, _)) in readers.iter().enumerate() {
            let (login, list, _) = login_and_list(&svc, user).await;
            runs[i].push((login, list));
        }
    }
    let mut totals = Vec::new();
    for ((_, n), r) in readers.iter().zip(runs) {
        let login = median(r.iter().map(|x| x.0).collect());
        let list = median(r.iter().map(|x| x.1).collect());
        let total = median(r.iter().map(|x| x.0 + x.1).collect());
        println!(
            "{{\"bench\":\"login_and_list\",\"messages\":{n},\"login_ms\":{login:.1},\"list_ms\":{list:.2},\"total_ms\":{total:.1},\"rounds\":{rounds}}}"
        );
        totals.push(total);
    }
    println!(
        "{{\"bench\":\"login_and_list_ratio\",\"messages\":[1,{big}],\"total_ratio\":{:.2}}}",
        totals[1] / totals[0]
    );
}

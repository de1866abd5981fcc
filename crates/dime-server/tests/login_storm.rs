//! Hostile logins against the mail service (`spec/dimed.md`, Logins; issue 20 items 1, 5, 6):
//! a storm of wrong-password logins stays within the documented memory budget, a wrong
//! password and an unknown user take the same time, failures delay the next login of the
//! account and of the source, and each failure is one audit line of the documented format;
//! the local socket counts each connection as a source and answers a delay with its own error.
//!
//! The tests run one at a time (`SERIAL`): the first two measure the process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use common::{NoDirectory, T0, mailbox, p, side_on, store_config};
use dime_core::crypto::Argon2Params;
use dime_server::service::{LoginError, LoginPolicy, LoginSource, MailService, Password};
use dime_store::{Store, Timestamp};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ALICE: &str = "alice@a.test";
const BOB: &str = "bob@a.test";

/// One test at a time: two of them measure the whole process.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// a.test with alice ("pw") and bob ("bob-pw") under the default Argon2id parameters
/// (19 MiB, t=2), throttled by `policy`.
fn service(dir: &std::path::Path, policy: LoginPolicy) -> MailService<NoDirectory> {
    let config = dime_store::StoreConfig { argon2: Argon2Params::DEFAULT, ..store_config(dir, 1) };
    let a = side_on(Store::open(config, p()).unwrap(), "a.test", 1, ALICE);
    a.add_user(BOB, b"bob-pw");
    MailService::new(a.store, a.local, Arc::new(NoDirectory), p()).with_login_policy(policy)
}

fn pw(s: &str) -> Password {
    Password::from(s.to_owned())
}

fn ip(n: u32) -> LoginSource {
    LoginSource::Ip(IpAddr::V4(Ipv4Addr::from_bits(0x0a00_0000 + n)))
}

/// A field of /proc/self/status, KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The budget of the storm (`spec/dimed.md`, Logins): above the resident size before it, one
/// Argon2id memory per slot and 64 MiB for everything else (threads, allocator slack).
fn budget_kib(slots: usize) -> u64 {
    slots as u64 * u64::from(Argon2Params::DEFAULT.m_kib) + 64 * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_64_concurrent_wrong_logins_stays_within_the_memory_budget() {
    let _one = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let slots = 4;
    // No failure delays: every attempt runs its Argon2id (delays are tested below).
    let policy = LoginPolicy {
        concurrent: slots,
        queue_deadline: Duration::from_secs(120),
        failure_delay_secs: 0,
        ..LoginPolicy::default()
    };
    let svc = Arc::new(service(dir.path(), policy));
    // Warm up: one login of each kind, so that the baseline holds what any login leaves.
    svc.login_from(&mailbox(ALICE), pw("pw"), ip(0), T0).await.unwrap();
    assert!(svc.login_from(&mailbox(BOB), pw("x"), ip(0), T0).await.is_err());

    let before = status_kib("VmRSS:");
    // The peak from here on: VmHWM reset (Linux ≥ 4.0), and VmRSS sampled as a fallback.
    let hwm_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = Arc::clone(&sampling);
        std::thread::spawn(move || {
            let mut most = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                most = most.max(status_kib("VmRSS:"));
                std::thread::sleep(Duration::from_millis(2));
            }
            most
        })
    };

    let started = Instant::now();
    let mut storm = Vec::new();
    for conn in 0..64u32 {
        let svc = Arc::clone(&svc);
        storm.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for round in 0..4u32 {
                // Wrong passwords for alice and unknown users in turn, each from a new address.
                let user = if (conn + round) % 2 == 0 {
                    mailbox(ALICE)
                } else {
                    mailbox(&format!("nobody{conn}x{round}@a.test"))
                };
                let r = svc.login_from(&user, pw("wrong"), ip(1 + conn * 4 + round), T0).await;
                outcomes.push(r.err().map(|e| e.to_string()));
            }
            outcomes
        }));
    }
    // A correct login in the middle of the storm.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = Instant::now();
    let alice = svc.login_from(&mailbox(ALICE), pw("pw"), ip(999), T0).await;
    let correct_ms = t.elapsed().as_millis();
    let mut failed = 0;
    for task in storm {
        for outcome in task.await.unwrap() {
            assert_eq!(outcome.as_deref(), Some("login failed"));
            failed += 1;
        }
    }
    let storm_ms = started.elapsed().as_millis();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let sampled = sampler.join().unwrap();
    let hwm = if hwm_reset { status_kib("VmHWM:") } else { 0 };
    let peak = sampled.max(hwm);
    assert!(alice.is_ok(), "the correct login during the storm: {:?}", alice.err());
    assert_eq!(failed, 256);
    let grew = peak.saturating_sub(before);
    eprintln!(
        "login storm: 256 wrong logins from 64 connections in {storm_ms} ms, {slots} slots; \
         RSS before {before} KiB, peak {peak} KiB (VmHWM reset: {hwm_reset}), grew {grew} KiB, \
         budget {} KiB; a correct login meanwhile took {correct_ms} ms",
        budget_kib(slots)
    );
    assert!(
        grew <= budget_kib(slots),
        "RSS grew {grew} KiB in the storm, over the budget of {} KiB",
        budget_kib(slots)
    );
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_and_an_unknown_user_take_the_same_time() {
    let _one = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let policy = LoginPolicy { failure_delay_secs: 0, ..LoginPolicy::default() };
    let svc = service(dir.path(), policy);
    let (mut wrong, mut unknown) = (Vec::new(), Vec::new());
    // Interleaved, so that a slow spell of the machine falls on both; the first pair warms up.
    for i in 0..26u32 {
        let t = Instant::now();
        let r = svc.login_from(&mailbox(ALICE), pw("wrong"), ip(2 * i), T0).await;
        let w = t.elapsed();
        assert!(matches!(r, Err(LoginError::Failed)));
        let nobody = mailbox(&format!("nobody{i}@a.test"));
        let t = Instant::now();
        let r = svc.login_from(&nobody, pw("wrong"), ip(2 * i + 1), T0).await;
        let u = t.elapsed();
        assert!(matches!(r, Err(LoginError::Failed)));
        if i > 0 {
            wrong.push(w);
            unknown.push(u);
        }
    }
    let (w, u) = (median(wrong), median(unknown));
    let ratio = u.as_secs_f64() / w.as_secs_f64();
    eprintln!(
        "login timing, medians of 25: wrong password {w:?}, unknown user {u:?}, ratio {ratio:.3}"
    );
    assert!((0.7..=1.4).contains(&ratio), "unknown/wrong = {ratio:.3} ({u:?} / {w:?})");
}

/// Captures what `tracing` logs on this thread, formatted as `dimed` formats it.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    fn take(&self) -> Vec<String> {
        let lines = self.lines();
        self.0.lock().unwrap().clear();
        lines
    }
}

/// The fields of an audit line of failure, if `line` is one, checked as the spec's fail2ban
/// filter reads it: `... WARN dimed::auth: login failed account=<16 hex> source=<HOST>
/// reason=<class>`.
fn failure_fields(line: &str) -> Option<(String, String, String)> {
    let (_, rest) = line.split_once(" WARN dimed::auth: login failed ")?;
    let mut fields = rest.split(' ');
    let account = fields.next()?.strip_prefix("account=")?;
    let source = fields.next()?.strip_prefix("source=")?;
    let reason = fields.next()?.strip_prefix("reason=")?;
    assert!(fields.next().is_none(), "{line}");
    assert!(account.len() == 16 && account.bytes().all(|c| c.is_ascii_hexdigit()), "{line}");
    Some((account.to_owned(), source.to_owned(), reason.to_owned()))
}

#[tokio::test]
async fn failures_delay_the_next_login_of_the_account_and_the_source_and_each_is_logged() {
    let _one = SERIAL.lock().await;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _log = tracing::subscriber::set_default(subscriber);
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path(), LoginPolicy::default());
    let at = |s: u64| Timestamp(T0.0 + s);
    let attacker = LoginSource::Ip("192.0.2.7".parse().unwrap());
    let elsewhere = LoginSource::Ip("198.51.100.1".parse().unwrap());

    // 40 wrong passwords: the first is checked and fails; the others are refused unchecked.
    for i in 0..40 {
        let r = svc.login_from(&mailbox(ALICE), pw(&format!("guess{i}")), attacker, at(0)).await;
        match (i, r) {
            (0, Err(LoginError::Failed)) => {}
            (_, Err(LoginError::Delayed { retry_after_secs: 2 })) if i > 0 => {}
            (i, r) => panic!("attempt {i}: {:?}", r.map(|_| ())),
        }
    }
    // The right password is refused during the delay, from this source or another one, and
    // another account from this source is refused too.
    for (who, password, source, when) in
        [(ALICE, "pw", attacker, 0), (ALICE, "pw", elsewhere, 1), (BOB, "bob-pw", attacker, 1)]
    {
        let r = svc.login_from(&mailbox(who), pw(password), source, at(when)).await;
        let e = r.err().unwrap();
        assert!(
            matches!(e, LoginError::Delayed { retry_after_secs } if retry_after_secs == 2 - when)
        );
        assert_eq!(e.to_string(), format!("too many failed logins: retry in {} s", 2 - when));
    }
    // One more failure after the delay doubles it.
    assert!(matches!(
        svc.login_from(&mailbox(ALICE), pw("guess"), elsewhere, at(2)).await,
        Err(LoginError::Failed)
    ));
    assert!(matches!(
        svc.login_from(&mailbox(ALICE), pw("pw"), LoginSource::Unspecified, at(5)).await,
        Err(LoginError::Delayed { retry_after_secs: 1 })
    ));
    // Once it has passed, the right password works, and clears the account's delay.
    svc.login_from(&mailbox(ALICE), pw("pw"), LoginSource::Unspecified, at(6)).await.unwrap();
    // An unknown user fails the same way and is delayed the same way.
    let nobody = mailbox("nobody@a.test");
    let third = LoginSource::Ip("2001:db8::1".parse().unwrap());
    assert!(matches!(
        svc.login_from(&nobody, pw("x"), third, at(6)).await,
        Err(LoginError::Failed)
    ));
    assert!(matches!(
        svc.login_from(&nobody, pw("x"), LoginSource::Unspecified, at(6)).await,
        Err(LoginError::Delayed { .. })
    ));

    let lines = captured.take();
    let failures: Vec<_> = lines.iter().filter_map(|l| failure_fields(l)).collect();
    let tag = |who: &str| hex_tag(&svc, who);
    assert_eq!(
        failures,
        [
            (tag(ALICE), "192.0.2.7".to_owned(), "password".to_owned()),
            (tag(ALICE), "198.51.100.1".to_owned(), "password".to_owned()),
            (tag("nobody@a.test"), "2001:db8::1".to_owned(), "unknown_user".to_owned()),
        ],
        "one audit line per checked failure:\n{}",
        lines.join("\n")
    );
    // Refusals are logged at debug (not matched by the filter), the success at info.
    assert!(lines.iter().any(|l| l.contains(" DEBUG dimed::auth: login refused ")
        && l.contains("source=192.0.2.7 reason=delayed retry_after=2")));
    assert!(lines.iter().any(|l| l.contains(" INFO dimed::auth: login account=")));
    for l in &lines {
        assert!(!l.contains("alice") && !l.contains("nobody") && !l.contains("guess"), "{l}");
        assert!(!l.contains("pw"), "{l}");
    }
}

fn hex_tag(svc: &MailService<NoDirectory>, who: &str) -> String {
    svc.store().login_tag(&mailbox(who)).unwrap().iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_that_waits_past_the_queue_deadline_is_refused_as_busy_not_failed() {
    let _one = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let policy = LoginPolicy {
        concurrent: 1,
        queue_deadline: Duration::from_millis(1),
        failure_delay_secs: 0,
        ..LoginPolicy::default()
    };
    let svc = Arc::new(service(dir.path(), policy));
    let mut logins = Vec::new();
    for i in 0..8u32 {
        let svc = Arc::clone(&svc);
        logins.push(tokio::spawn(async move {
            let who = mailbox(&format!("nobody{i}@a.test"));
            svc.login_from(&who, pw("x"), ip(i), T0).await.err().unwrap()
        }));
    }
    let mut busy = 0;
    for l in logins {
        match l.await.unwrap() {
            LoginError::Failed => {}
            e @ LoginError::Busy => {
                assert_eq!(e.to_string(), "server busy: too many logins at once, retry later");
                busy += 1;
            }
            e => panic!("{e}"),
        }
    }
    // One slot, held ~20 ms by each check: of 8 at once, most cannot wait 1 ms for it.
    assert!((1..8).contains(&busy), "{busy} of 8 busy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_socket_counts_its_connections_as_sources_and_answers_the_delay() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let _one = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path(), LoginPolicy::default());
    let path = dir.path().join("dimed.sock");
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let sub = dime_server::submission::Submission { service: Arc::new(svc) };
    dime_server::submission::serve(&path, Arc::new(sub), stop_rx).unwrap();
    let ask = |req: String| {
        let path = path.clone();
        async move {
            let (r, mut w) = tokio::net::UnixStream::connect(&path).await.unwrap().into_split();
            w.write_all(format!("{req}\n").as_bytes()).await.unwrap();
            let mut answer = String::new();
            BufReader::new(r).read_line(&mut answer).await.unwrap();
            serde_json::from_str::<serde_json::Value>(&answer).unwrap()
        }
    };
    let login = |user: &str, password: &str| {
        serde_json::json!({"op": "login", "user": user, "password": password}).to_string()
    };
    // A wrong password on one connection, then bob on another: the connection is the source,
    // so bob is not refused...
    assert_eq!(ask(login(ALICE, "no")).await["error"], "login failed");
    assert_eq!(ask(login(BOB, "bob-pw")).await["ok"], true);
    // ...but alice's account is, with its own answer, on any connection.
    let e = ask(login(ALICE, "pw")).await;
    let e = e["error"].as_str().unwrap();
    assert!(e.starts_with("too many failed logins: retry in "), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guess_whose_client_hangs_up_is_still_counted() {
    let _one = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let policy = LoginPolicy {
        concurrent: 1,
        queue_deadline: Duration::from_secs(120),
        ..LoginPolicy::default()
    };
    let svc = service(dir.path(), policy);
    // The guess's future is dropped (its client gone) while its check runs.
    let alice = mailbox(ALICE);
    let guess = svc.login_from(&alice, pw("guess"), ip(1), T0);
    assert!(tokio::time::timeout(Duration::from_millis(1), guess).await.is_err());
    // The next login waits for the one slot, then finds the account delayed.
    let r = svc.login_from(&alice, pw("pw"), ip(2), T0).await;
    assert!(matches!(r, Err(LoginError::Delayed { retry_after_secs: 2 })), "{:?}", r.err());
}

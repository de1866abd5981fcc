//! Zero-access checks (`spec/storage.md` §1, §9): canary audit, random bytes instead of
//! ciphertext, crypto-shredding, corruption detection and quarantine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use dime_core::RngCore;
use dime_core::crypto::{Ed25519Seed, X25519Secret, default_provider};
use dime_envelope::{
    ActorKeys, ActorSecret, Addressing, Headers, Message, Part, PartInfo, PartKind, Signer,
};
use dime_signet::EncryptionSecret;
use dime_store::{
    AccountError, Accounts, BackendError, Deliveries, MailboxError, MailboxId, Mailboxes, Queue,
    Recovery, RedbBackend, SpecialUse, Table, Uid,
};

const SUBJECT: &str = "qzSubjectCanary41";
const BODY: &str = "qzBodyCanary73";
const LOCAL: &str = "qzlocalcanary29";
const MBOX: &str = "qzMailboxCanary58";
const FLAG: &str = "$qzFlagCanary16";
/// A mailbox's name before and after a RENAME, a keyword given at APPEND and one by STORE
/// (`spec/storage.md` §5.1-§5.4).
const FIRST_NAME: &str = "qzFirstNameCanary12";
const RENAMED: &str = "qzRenamedCanary77";
const APPEND_FLAG: &str = "$qzAppendCanary35";
const STORED_FLAG: &str = "$qzStoreCanary62";
const APPEND_SUMMARY: &str = "qzSummaryCanary90";

fn actor(rng: &mut dyn dime_core::CryptoRngCore) -> (ActorKeys, Ed25519Seed) {
    let p = default_provider();
    let sign = Ed25519Seed::generate(rng);
    let enc = X25519Secret::generate(rng);
    (
        ActorKeys {
            encryption: p.key_agreement.public_key(&enc),
            signing: p.signature.public_key(&sign),
        },
        sign,
    )
}

#[test]
fn canaries_are_nowhere_in_the_data_directory_or_logs_and_the_recipient_reads_them() {
    let p = default_provider();
    let dir = tempfile::tempdir().unwrap();
    let mut log = String::new();
    let recipient = mailbox(&format!("{LOCAL}@example.org"));
    let org = org(1);
    let mut rng = dime_testkit::seeded_rng(11);
    let sealed;
    {
        let store = open(dir.path());
        let created = create(&store, &org, &recipient, b"pw", Recovery::Code);
        log += &format!("{store:?} {created:?} {:?}\n", config(dir.path()));
        let mut s = store.login(&recipient, b"pw", T0).unwrap();
        let keys = s.current_keys().unwrap();
        let rk = ActorKeys {
            encryption: keys.encryption_secret().public_key(p).unwrap().x25519().copied().unwrap(),
            signing: keys.signing_key(p),
        };
        let (ak, asign) = actor(&mut rng);
        let (ok, _) = actor(&mut rng);
        let (dk, _) = actor(&mut rng);
        let addressing = Addressing {
            author: mailbox("author@example.net"),
            author_keys: ak,
            origin: "example.net".parse().unwrap(),
            origin_keys: ok,
            destination: "example.org".parse().unwrap(),
            destination_keys: dk,
            recipient: recipient.clone(),
            recipient_keys: rk,
        };
        let mut headers = Headers::new();
        headers.push("Subject", SUBJECT).unwrap();
        let message = Message {
            common_headers: headers,
            other_headers: Headers::new(),
            parts: vec![Part {
                kind: PartKind::Display,
                info: PartInfo { content_type: "text/plain".into(), filename: String::new() },
                data: format!("hello {BODY}").into_bytes(),
            }],
        };
        sealed =
            dime_envelope::seal_message(p, &mut rng, &addressing, Signer::Author(&asign), &message)
                .unwrap();
        let d = store.deliver(&recipient, &sealed, T0).unwrap();
        log += &format!("{d:?}\n");
        let m = store.create_mailbox(&mut rng, &mut s, MBOX, T0).unwrap();
        store.set_flags(&mut rng, &mut s, MailboxId::INBOX, d.uid, &[FLAG], T0).unwrap();
        store.copy(d.account, MailboxId::INBOX, &[d.uid], m).unwrap();
        // IMAP's records: a special-use mailbox renamed and unsubscribed, an APPEND with a
        // keyword and a summary, a STORE of another keyword, an expunge (tombstones).
        let sent = store
            .create_mailbox_with(&mut rng, &mut s, FIRST_NAME, Some(SpecialUse::Sent), T0)
            .unwrap();
        store.rename_mailbox(&mut rng, &mut s, sent, RENAMED, T0).unwrap();
        store.set_subscribed(&mut rng, &mut s, sent, false, T0).unwrap();
        let summary = APPEND_SUMMARY.as_bytes();
        let ap = store
            .append(&mut rng, &mut s, sent, &sealed, &[APPEND_FLAG], T0, Some(summary), T0)
            .unwrap();
        store
            .store_flags(
                &mut rng,
                &mut s,
                MailboxId::INBOX,
                &[(d.uid, vec![STORED_FLAG.into()])],
                None,
                T0,
            )
            .unwrap();
        let again = store.append(&mut rng, &mut s, sent, &sealed, &[], T0, None, T0).unwrap();
        store.expunge(d.account, sent, &[again.uid]).unwrap();
        let info = store.mailbox(&mut s, sent, T0).unwrap();
        assert_eq!(
            (info.name.as_str(), info.subscribed, info.special_use),
            (RENAMED, false, Some(SpecialUse::Sent))
        );
        assert_eq!(store.flags(&mut s, sent, ap.uid, T0).unwrap(), [APPEND_FLAG]);
        log += &format!("{ap:?}\n");
        store
            .enqueue(
                &mut rng,
                dime_store::Transport::Smtp,
                d.account,
                "example.net",
                format!("Subject: {SUBJECT}").as_bytes(),
                T0,
            )
            .unwrap();
        log += &format!(
            "{s:?} {:?} {:?}\n",
            store.list(d.account, m).unwrap(),
            store.quota(d.account).unwrap()
        );
        log += &format!("{:?}\n", store.login(&recipient, b"wrong", T0).unwrap_err());
        log += &format!("{}\n", store.login(&recipient, b"wrong", T0).unwrap_err());
        // The recipient, after login, opens the stored mail.
        let fetched = store.fetch(d.account, m, Uid(1)).unwrap();
        let EncryptionSecret::X25519(x) = s.current_keys().unwrap().encryption_secret() else {
            unreachable!()
        };
        let view =
            dime_envelope::open_as_recipient(p, &fetched, &ActorSecret::new(p, x.duplicate()))
                .unwrap();
        let view = view.verify(p, &ak.signing, None).unwrap().into_view();
        assert_eq!(view.message.common_headers.get("Subject"), Some(SUBJECT));
        assert_eq!(view.message.parts[0].data, format!("hello {BODY}").into_bytes());
        let names: Vec<String> =
            store.mailboxes(&mut s, T0).unwrap().into_iter().map(|b| b.name).collect();
        assert!(names.contains(&MBOX.to_string()));
        assert_eq!(store.flags(&mut s, m, Uid(1), T0).unwrap(), [FLAG]);
        // Through the store: the first open writes a read overlay, the second uses it; the
        // overlay is on disk for the audit below.
        let mut orng = dime_testkit::seeded_rng(77);
        for want in [dime_store::OpenedVia::Slots(0), dime_store::OpenedVia::ReadOverlay] {
            let o = store.open_message(&mut orng, &mut s, m, Uid(1), T0).unwrap();
            assert_eq!(o.via, want);
            log += &format!("{:?}\n", o.via);
            let v = o.message.verify(p, &ak.signing, None).unwrap().into_view();
            assert_eq!(v.message.common_headers.get("Subject"), Some(SUBJECT));
        }
    }
    // The canaries are really in the sealed bytes' plaintext, not in the sealed bytes.
    let all = common::files(dir.path());
    assert!(all.len() >= 2);
    for canary in [
        SUBJECT,
        BODY,
        LOCAL,
        MBOX,
        FLAG,
        FIRST_NAME,
        RENAMED,
        APPEND_FLAG,
        STORED_FLAG,
        APPEND_SUMMARY,
    ] {
        for form in [canary.to_string(), canary.to_lowercase(), canary.to_uppercase()] {
            for f in &all {
                let bytes = std::fs::read(f).unwrap();
                assert!(
                    !bytes.windows(form.len()).any(|w| w == form.as_bytes()),
                    "{form} found in {}",
                    f.display()
                );
            }
            assert!(!log.contains(&form), "{form} in the logs");
            assert!(!sealed.windows(form.len()).any(|w| w == form.as_bytes()));
        }
    }
}

#[test]
fn store_works_when_wrapped_keys_and_bodies_are_random_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let alice = mailbox("alice@example.org");
    let a = create(&store, &org(1), &alice, b"pw", Recovery::Code).account;
    let mut rng = dime_testkit::seeded_rng(12);
    // Replace every wrapped key record of the account with random bytes of the same length.
    store
        .backend()
        .write(&mut |t| {
            let mut end = a.0.to_vec();
            end.push(0xff);
            for (k, v) in t.range(Table::Keys, &a.0, &end, usize::MAX)? {
                let mut junk = vec![0u8; v.len()];
                rng.fill_bytes(&mut junk);
                t.put(Table::Keys, &k, &junk)?;
            }
            Ok(())
        })
        .unwrap();
    let mut sizes = Vec::new();
    for i in 0..20 {
        let mut body = vec![0u8; 100 + i * 37];
        rng.fill_bytes(&mut body);
        sizes.push(body.len() as u64);
        store.deliver(&alice, &body, T0).unwrap();
    }
    let list = store.list(a, MailboxId::INBOX).unwrap();
    assert_eq!(list.len(), 20);
    assert_eq!(store.quota(a).unwrap().used, sizes.iter().sum::<u64>());
    let gone: Vec<Uid> = list.iter().take(5).map(|e| e.uid).collect();
    assert_eq!(store.expunge(a, MailboxId::INBOX, &gone).unwrap(), 5);
    assert_eq!(store.quota(a).unwrap().used, sizes[5..].iter().sum::<u64>());
    assert_eq!(store.quota(a).unwrap().messages, 15);
    assert!(store.purge_older_than(a, 0, dime_store::Timestamp(T0.0 + 1)).unwrap() == 15);
    assert!(store.login(&alice, b"pw", T0).is_err());
}

#[test]
fn after_deletion_a_backup_of_the_data_directory_cannot_be_opened() {
    let dir = tempfile::tempdir().unwrap();
    let alice = mailbox("alice@example.org");
    let code;
    let account;
    {
        let store = open(dir.path());
        let c = create(&store, &org(1), &alice, b"pw", Recovery::Code);
        code = c.recovery_code.unwrap();
        account = c.account;
        store.deliver(&alice, b"secret mail", T0).unwrap();
        assert!(store.login(&alice, b"pw", T0).is_ok());
    }
    // The shredding key, as the vault holds it now.
    let shred = {
        let vault = RedbBackend::open(&dir.path().join("vault/vault.redb")).unwrap();
        let mut v = None;
        dime_store::Backend::read(&vault, &mut |t| {
            v = t.get(Table::Vault, &account.0)?;
            Ok(())
        })
        .unwrap();
        v.unwrap()[..32].to_vec()
    };
    let backup = tempfile::tempdir().unwrap();
    copy_dir(&dir.path().join("data"), &backup.path().join("data"));
    {
        let store = open(dir.path());
        store.delete_account(&alice).unwrap();
        assert_eq!(store.login(&alice, b"pw", T0).unwrap_err(), AccountError::UnknownAccount);
    }
    // Everything left on the server: the live data directory, the vault, the pepper.
    for f in common::files(dir.path()) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.windows(32).any(|w| w == shred.as_slice()),
            "shredding key left in {}",
            f.display()
        );
    }
    // The backup, opened with the server's vault and pepper, and even the right password
    // and recovery code: nothing opens.
    let mut cfg = config(backup.path());
    cfg.vault_path = dir.path().join("vault/vault.redb");
    let old = dime_store::Store::open(cfg, default_provider()).unwrap();
    assert_eq!(old.login(&alice, b"pw", T0).unwrap_err(), AccountError::Shredded);
    let mut rng = dime_testkit::seeded_rng(1);
    assert_eq!(
        old.recover_with_code(&mut rng, &alice, &code, b"x", T0).unwrap_err(),
        AccountError::Shredded
    );
    assert_eq!(old.signet(&alice).unwrap_err(), AccountError::Shredded);
}

fn flip_first(store: &dime_store::Store, table: Table, prefix: &[u8], at: usize) -> Vec<u8> {
    let mut key = Vec::new();
    store
        .backend()
        .write(&mut |t| {
            let mut end = prefix.to_vec();
            end.extend_from_slice(&[0xff; 16]);
            let (k, mut v) = t.range(table, prefix, &end, 1)?.remove(0);
            let i = at.min(v.len() - 1);
            v[i] ^= 0x20;
            t.put(table, &k, &v)?;
            key = k;
            Ok(())
        })
        .unwrap();
    key
}

#[test]
fn corrupt_message_index_record_and_wrapped_key_are_quarantined_and_the_store_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let org = org(1);
    let alice = mailbox("alice@example.org");
    let bob = mailbox("bob@example.org");
    let c = create(&store, &org, &alice, b"pw", Recovery::Code);
    create(&store, &org, &bob, b"pw", Recovery::None);
    let a = c.account;
    for i in 0..4u8 {
        store.deliver(&alice, &[i; 64], T0).unwrap();
    }
    // A message body (uid 1).
    flip_first(&store, Table::Blobs, &a.0, 10);
    assert_eq!(
        store.fetch(a, MailboxId::INBOX, Uid(1)).unwrap_err(),
        MailboxError::Backend(BackendError::Corrupt { what: "message" })
    );
    assert_eq!(store.list(a, MailboxId::INBOX).unwrap().len(), 3);
    assert_eq!(store.quota(a).unwrap().used, 3 * 64);
    assert_eq!(store.fetch(a, MailboxId::INBOX, Uid(2)).unwrap(), vec![1u8; 64]);
    // An index record (now uid 2, the first entry left).
    flip_first(&store, Table::Entries, &a.0, 3);
    let left: Vec<Uid> = store.list(a, MailboxId::INBOX).unwrap().iter().map(|e| e.uid).collect();
    assert_eq!(left, [Uid(3), Uid(4)]);
    // A wrapped key (the password wrap is the first key record).
    flip_first(&store, Table::Keys, &a.0, 30);
    assert!(matches!(
        store.login(&alice, b"pw", T0).unwrap_err(),
        AccountError::Backend(BackendError::Corrupt { .. })
    ));
    assert_eq!(
        store.quarantined().unwrap().len(),
        4,
        "blob, message record, index record, wrapped key"
    );
    // The store stays usable: other accounts, deliveries, and recovery of this one.
    assert!(store.login(&bob, b"pw", T0).is_ok());
    assert_eq!(store.deliver(&alice, b"new", T0).unwrap().uid, Uid(5));
    let mut rng = dime_testkit::seeded_rng(3);
    store
        .recover_with_code(&mut rng, &alice, c.recovery_code.as_ref().unwrap(), b"pw2", T0)
        .unwrap();
    assert!(store.login(&alice, b"pw2", T0).is_ok());
}

#[test]
fn a_byte_flipped_on_disk_inside_a_message_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let alice = mailbox("alice@example.org");
    let mut body = vec![0u8; 3000];
    dime_testkit::seeded_rng(5).fill_bytes(&mut body);
    let a;
    {
        let store = open(dir.path());
        a = create(&store, &org(1), &alice, b"pw", Recovery::None).account;
        store.deliver(&alice, &body, T0).unwrap();
        store.deliver(&alice, b"other", T0).unwrap();
    }
    let path = dir.path().join("data/store.redb");
    let mut file = std::fs::read(&path).unwrap();
    // The file may hold stale copies of the page too (copy-on-write): flip the byte in each.
    let copies: Vec<usize> = file
        .windows(64)
        .enumerate()
        .filter(|(_, w)| *w == &body[1000..1064])
        .map(|(at, _)| at)
        .collect();
    assert!(!copies.is_empty(), "body on disk");
    for at in copies {
        file[at + 10] ^= 0x01;
    }
    std::fs::write(&path, &file).unwrap();
    let store = open(dir.path());
    assert_eq!(
        store.fetch(a, MailboxId::INBOX, Uid(1)).unwrap_err(),
        MailboxError::Backend(BackendError::Corrupt { what: "message" })
    );
    assert_eq!(store.fetch(a, MailboxId::INBOX, Uid(2)).unwrap(), b"other");
    assert_eq!(store.deliver(&alice, b"more", T0).unwrap().uid, Uid(3));
}

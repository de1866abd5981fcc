//! Fuzzes dime-store's record codecs (`spec/storage.md` §3-§7.1) through the doc-hidden
//! `dime_store::fuzzing` wrappers (feature `fuzzing`), with the insecure provider.
//!
//! Input: byte 0 picks the codec, the rest is its input. Properties: no input panics; every
//! record decoder is canonical: what decodes encodes back to exactly the input (account,
//! queue schedule, delivery status, mailbox, entry and message records, a mailbox's attributes
//! and tombstones, the keyring, and the field decoder driven by a script); a sealed record
//! opens to its body under its table and key only; a delivery status written by the store
//! reads back equal (its text cut to `MAX_STATUS_TEXT_LEN`).
#![no_main]

use dime_store::fuzzing::{self, TABLES};
use dime_store::{
    AccountId, DeliveryState, DeliveryStatus, MAX_STATUS_TEXT_LEN, QueueId, Timestamp,
};
use dime_testkit::insecure_provider;
use libfuzzer_sys::fuzz_target;

fn canonical(out: Result<Vec<u8>, dime_store::StoreError>, input: &[u8], what: &str) {
    if let Ok(again) = out {
        assert_eq!(again, input, "{what} re-encodes to its input");
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut t = [0u8; 8];
    for (i, x) in b.iter().skip(at).take(8).enumerate() {
        t[i] = *x;
    }
    u64::from_be_bytes(t)
}

/// A status from the input: state, times, attempts, author, then destination and text split at
/// the first NUL (lossy UTF-8).
fn status_of(b: &[u8]) -> DeliveryStatus {
    let head = b.get(..26).unwrap_or(b);
    let tail = b.get(26..).unwrap_or(&[]);
    let (dest, text) = match tail.iter().position(|&c| c == 0) {
        Some(i) => (&tail[..i], &tail[i + 1..]),
        None => (tail, &[][..]),
    };
    let text = String::from_utf8_lossy(text).into_owned();
    let state = match head.first().copied().unwrap_or(0) % 5 {
        0 => DeliveryState::Queued,
        1 => DeliveryState::Deferred { next_attempt: Timestamp(u64_at(head, 1)), reason: text },
        2 => DeliveryState::Delivered { txid: text },
        3 => DeliveryState::Failed { reason: text },
        _ => DeliveryState::Bounced { reason: text },
    };
    let author = head.get(9).is_some_and(|a| a % 2 == 1).then(|| AccountId([head.len() as u8; 16]));
    DeliveryStatus {
        id: QueueId(u64_at(head, 10)),
        author,
        destination: String::from_utf8_lossy(dest).into_owned(),
        queued: Timestamp(u64_at(head, 18)),
        updated: Timestamp(u64_at(head, 2)),
        attempts: u32::from(head.get(1).copied().unwrap_or(0)),
        state,
    }
}

fuzz_target!(|data: &[u8]| {
    let p = insecure_provider();
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 13 {
        0 => canonical(fuzzing::account_record(p, rest), rest, "account record"),
        1 => canonical(fuzzing::queue_record(rest), rest, "queue record"),
        2 => canonical(fuzzing::status_record(rest), rest, "status record"),
        3 => canonical(fuzzing::mailbox_record(rest), rest, "mailbox record"),
        4 => canonical(fuzzing::entry_record(rest), rest, "entry record"),
        5 => canonical(fuzzing::message_record(rest), rest, "message record"),
        6 => canonical(fuzzing::keyring(rest), rest, "keyring"),
        7 => {
            // Script length, script, input.
            let n = usize::from(rest.first().copied().unwrap_or(0) % 32);
            let rest = rest.get(1..).unwrap_or(&[]);
            let (script, input) = rest.split_at(n.min(rest.len()));
            canonical(fuzzing::dec_script(script, input), input, "fields");
        }
        8 => {
            // A stored value under a table and key: open it; seal and open any body.
            let table = TABLES[usize::from(rest.first().copied().unwrap_or(0)) % TABLES.len()];
            let rest = rest.get(1..).unwrap_or(&[]);
            let (key, value) = rest.split_at(rest.len().min(16));
            if let Ok(body) = fuzzing::open_record(p, table, key, value) {
                assert_eq!(fuzzing::seal_record(p, table, key, &body), value);
            }
            let sealed = fuzzing::seal_record(p, table, key, value);
            assert_eq!(fuzzing::open_record(p, table, key, &sealed).as_deref(), Ok(value));
            let other = TABLES[(usize::from(table.code())) % TABLES.len()];
            assert!(fuzzing::open_record(p, other, key, &sealed).is_err(), "table is bound");
        }
        9 => {
            let id = u64_at(rest, 0);
            let _ = fuzzing::load_status_record(p, id, rest.get(8..).unwrap_or(&[]));
        }
        11 => canonical(fuzzing::mailbox_attributes(rest), rest, "mailbox attributes"),
        12 => canonical(fuzzing::tombstone_record(rest), rest, "tombstone record"),
        _ => {
            let s = status_of(rest);
            let mut rng = dime_testkit::seeded_rng(u64::from(which));
            let back = fuzzing::status_round_trip(p, &mut rng, &s)
                .expect("a written status reads back")
                .expect("a written status is there");
            let mut want = s.clone();
            let cut = |t: &mut String| {
                let mut end = t.len().min(MAX_STATUS_TEXT_LEN);
                while !t.is_char_boundary(end) {
                    end -= 1;
                }
                t.truncate(end);
            };
            match &mut want.state {
                DeliveryState::Queued => {}
                DeliveryState::Deferred { reason: t, .. }
                | DeliveryState::Failed { reason: t }
                | DeliveryState::Bounced { reason: t }
                | DeliveryState::Delivered { txid: t } => cut(t),
            }
            assert_eq!(back, want, "status round trip");
        }
    }
});

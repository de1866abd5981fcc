//! Memory: sealing, origin-signing and opening a message with a 100 MiB attachment streams,
//! with a peak heap under 16 MiB for the three stages together (measured with dhat as the
//! global allocator; test-plan.md "bounded"). The stages run as a pipeline of threads joined
//! by bounded channels, so the message is never whole in memory.
//!
//! Size: 100 MiB (a few seconds: the workspace compiles `dime-core`, where the crypto
//! generics are instantiated, at opt-level 2 in the dev profile too). `DIME_MEMORY_TEST_MIB`
//! sets another size.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use common::*;
use dime_core::crypto::default_provider;
use dime_envelope::*;
use dime_testkit::seeded_rng;
use std::io::{Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const BLOCK: usize = 64 * 1024;

/// A deterministic pseudo-random source of `len` octets.
struct Source {
    left: u64,
    block: Vec<u8>,
    pos: usize,
}

impl Source {
    fn new(len: u64) -> Self {
        let block = (0..BLOCK + 251).map(|i| (i * 131 % 251) as u8).collect();
        Source { left: len, block, pos: 0 }
    }
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(BLOCK).min(self.left as usize);
        buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos = (self.pos + n) % 251;
        self.left -= n as u64;
        Ok(n)
    }
}

struct ChanWriter {
    tx: SyncSender<Vec<u8>>,
    buf: Vec<u8>,
}

impl Write for ChanWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= BLOCK {
            self.flush()?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let b = std::mem::replace(&mut self.buf, Vec::with_capacity(BLOCK));
            self.tx.send(b).map_err(|_| std::io::ErrorKind::BrokenPipe)?;
        }
        Ok(())
    }
}

/// Reads from a channel; optionally copies what it reads to another channel (a tee).
struct ChanReader {
    rx: Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    tee: Option<SyncSender<Vec<u8>>>,
}

impl Read for ChanReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(b) => {
                    if let Some(t) = &self.tee {
                        t.send(b.clone()).map_err(|_| std::io::ErrorKind::BrokenPipe)?;
                    }
                    self.cur = b;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

struct HashSink {
    h: Option<Box<dyn dime_core::crypto::HashContext>>,
    len: u64,
}

impl PartSink for HashSink {
    fn begin(&mut self, _: PartKind, _: &PartInfo) -> std::io::Result<()> {
        Ok(())
    }
    fn data(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.len += b.len() as u64;
        self.h.as_mut().unwrap().update(b);
        Ok(())
    }
    fn end(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn hundred_mib_attachment_streams_under_16_mib_of_heap() {
    let mib: u64 =
        std::env::var("DIME_MEMORY_TEST_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let len = mib << 20;
    let profiler = dhat::Profiler::builder().testing().build();
    let p = default_provider();
    let w = std::sync::Arc::new(world(p));

    let (tx1, rx1) = sync_channel::<Vec<u8>>(4);
    let (tx2, rx2) = sync_channel::<Vec<u8>>(4);

    // Stage 1: the author seals, streaming the attachment from a generator.
    let wa = w.clone();
    let author = std::thread::spawn(move || {
        let headers = Headers::from_pairs([("Subject", "big")]).unwrap();
        let other = Headers::new();
        let mut body: &[u8] = b"see attachment";
        let mut src = Source::new(len);
        let content = Content {
            common_headers: &headers,
            other_headers: &other,
            parts: vec![
                PartSource { kind: PartKind::Display, info: PartInfo::default(), data: &mut body },
                PartSource {
                    kind: PartKind::Attachment,
                    info: PartInfo {
                        content_type: "application/octet-stream".into(),
                        filename: "big.bin".into(),
                    },
                    data: &mut src,
                },
            ],
        };
        let out = ChanWriter { tx: tx1, buf: Vec::with_capacity(BLOCK) };
        let mut out = seal(
            p,
            &mut seeded_rng(40),
            &wa.addressing,
            Signer::Author(&wa.author.sign),
            content,
            out,
        )
        .unwrap();
        out.flush().unwrap();
    });

    // Stage 2: the origin reads the message as it passes (tee) and appends its signature.
    let wo = w.clone();
    let origin = std::thread::spawn(move || {
        let reader = ChanReader { rx: rx1, cur: Vec::new(), pos: 0, tee: Some(tx2.clone()) };
        let v = open_as_origin(p, reader, &wo.origin.enc)
            .unwrap()
            .verify(p, &wo.author.keys.signing)
            .unwrap();
        let chunk = v
            .origin_signature_chunk(
                p,
                &mut seeded_rng(41),
                &wo.origin.sign,
                &wo.addressing.origin,
                SIGNED_AT,
            )
            .unwrap();
        tx2.send(chunk).unwrap();
    });

    // Stage 3: the recipient opens the stream and hashes the attachment as it arrives.
    let reader = ChanReader { rx: rx2, cur: Vec::new(), pos: 0, tee: None };
    let mut sink = HashSink { h: Some(p.hash.start()), len: 0 };
    let v = open_streaming(p, reader, &w.recip.enc, ReaderRole::Recipient, &mut sink)
        .unwrap()
        .verify(p, &w.author.keys.signing, Some(&w.origin.keys.signing))
        .unwrap();
    author.join().unwrap();
    origin.join().unwrap();
    assert_eq!(v.message.parts.len(), 2);

    let mut expected = p.hash.start();
    expected.update(b"see attachment");
    let mut src = Source::new(len);
    let mut buf = vec![0u8; BLOCK];
    loop {
        let n = src.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        expected.update(&buf[..n]);
    }
    assert_eq!(sink.len, len + 14);
    assert_eq!(sink.h.take().unwrap().finish(), expected.finish());

    let stats = dhat::HeapStats::get();
    eprintln!(
        "{mib} MiB attachment: peak heap {} KiB over {} allocations",
        stats.max_bytes / 1024,
        stats.total_blocks
    );
    dhat::assert!(stats.max_bytes < 16 << 20, "peak heap {} bytes", stats.max_bytes);
    drop(profiler);
}

//! `dime-interop-tests`: black-box tests of dime against real external peers (knotd, delv,
//! Postfix, Dovecot, mail clients), started by the tests themselves on loopback. The tests live in `tests/` and
//! `benches/`; this library holds the fixtures they share (and that `dime-cli`'s tests reuse):
//! [`dimed`], [`dovecot`], [`knot`], [`postfix`].

pub mod dimed;
pub mod dovecot;
pub mod knot;
pub mod postfix;

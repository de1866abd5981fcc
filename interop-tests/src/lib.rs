//! `dime-interop-tests`: black-box tests of dime against real external peers (knotd, delv),
//! started by the tests themselves on loopback. The tests live in `tests/`; this library is
//! empty.

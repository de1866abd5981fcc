//! The `_dx` DNS management record (`spec/dns-record.md`).

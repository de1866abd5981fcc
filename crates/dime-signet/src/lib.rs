//! `dime-signet`: DIME signets and the `_dx` DNS management record.
//!
//! (Crate docs: owned by the signet work; the `record` module is owned by the record work.)

pub mod record;

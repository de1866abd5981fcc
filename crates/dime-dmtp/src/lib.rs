//! `dime-dmtp`: DMTP, sans-IO (in progress).

//! `dime-net`: DMTP transports over QUIC and TLS (in progress).

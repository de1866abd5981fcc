//! The client driver: QUIC connections (one stream per transaction, many at once) and TLS over
//! TCP connections (transactions in turn), each stream run by a [`dime_dmtp::Client`] machine
//! (`spec/dmtp.md` §2, §7.2).

use crate::NetError;
use dime_core::{Domain, Fingerprint};
use dime_dmtp::limits::{ALPN, HANDSHAKE_TIMEOUT};
use dime_dmtp::{Client, ClientEvent, Greeting, Mode, Outgoing, SignetName, TransactionId};
use rustls_pki_types::ServerName;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;

/// How [`pump`] treats the sending side of its stream.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sending {
    /// It stays open: more commands follow (a TLS connection).
    Open,
    /// It ends as soon as every frame is out (a QUIC stream that carries one command): the end
    /// travels with the last frames, and the server ends its side with its last reply, so
    /// neither side stops or resets the other (`spec/dmtp.md` §2).
    EndWhenSent,
}

/// Drives `c` until `pick` takes an event (returns `Ok`), and returns what it made of it.
/// Refusals and failures that `pick` gives back end it with an error.
async fn pump<R, W, T>(
    c: &mut Client,
    reader: &mut R,
    writer: &mut W,
    sending: Sending,
    mut pick: impl FnMut(ClientEvent) -> Result<T, ClientEvent>,
) -> Result<T, NetError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    let mut ended = false;
    loop {
        if ended {
            // The stream carried one command and nothing follows it; were the machine to
            // queue more, it would have nowhere to go.
            while c.poll_transmit().is_some() {}
        } else if crate::stream::write_frames(writer, || c.poll_transmit()).await? {
            writer.flush().await?;
        }
        if sending == Sending::EndWhenSent && !ended && c.all_sent() {
            writer.shutdown().await?;
            ended = true;
        }
        while let Some(ev) = c.poll_event() {
            match pick(ev) {
                Ok(picked) => return Ok(picked),
                Err(ev) => match ev {
                    ClientEvent::Failed(e) => return Err(NetError::Protocol(e)),
                    ClientEvent::Refused { command, code, text, .. } => {
                        return Err(NetError::Refused { command, code, text });
                    }
                    ClientEvent::Closed => return Err(NetError::Closed),
                    _ => {}
                },
            }
        }
        if c.is_closed() {
            return Err(NetError::Closed);
        }
        match crate::stream::read_until(reader, &mut buf, c.poll_timeout()).await? {
            None => c.handle_timeout(Instant::now()),
            Some(0) => c.handle_end(),
            Some(n) => c.handle_input(buf.get(..n).unwrap_or_default(), Instant::now()),
        }
    }
}

/// Picks the transaction id of `txn`'s delivery.
fn delivered(
    txn: dime_dmtp::TxnHandle,
) -> impl FnMut(ClientEvent) -> Result<TransactionId, ClientEvent> {
    move |ev| match ev {
        ClientEvent::Delivered { txn: t, id } if t == txn => Ok(id),
        other => Err(other),
    }
}

/// Picks a signet's bytes (SGNT).
fn signet(ev: ClientEvent) -> Result<Vec<u8>, ClientEvent> {
    match ev {
        ClientEvent::Signet(s) => Ok(s),
        other => Err(other),
    }
}

/// Picks a chain of signets (HIST).
fn history(ev: ClientEvent) -> Result<Vec<Vec<u8>>, ClientEvent> {
    match ev {
        ClientEvent::History(h) => Ok(h),
        other => Err(other),
    }
}

/// A QUIC client endpoint: opens [`QuicConnection`]s.
#[derive(Debug, Clone)]
pub struct QuicClient {
    endpoint: quinn::Endpoint,
    domain: Domain,
}

impl QuicClient {
    /// An endpoint bound to `bind` (port 0 for any), for our `domain`, with `config` from
    /// [`crate::quic_client_config`].
    ///
    /// # Errors
    /// [`NetError::Io`] when the socket cannot be bound.
    pub fn new(
        bind: SocketAddr,
        config: quinn::ClientConfig,
        domain: Domain,
    ) -> Result<QuicClient, NetError> {
        let mut endpoint = quinn::Endpoint::client(bind)?;
        endpoint.set_default_client_config(config);
        Ok(QuicClient { endpoint, domain })
    }

    /// An endpoint for connecting to `peer`: bound to the unspecified address of `peer`'s IP
    /// family on any port, with the QUIC client configuration over `tls`
    /// ([`crate::quic_client_config`]).
    ///
    /// # Errors
    /// [`NetError::Config`] when `tls` cannot carry QUIC; [`NetError::Io`] when the socket
    /// cannot be bound.
    pub fn for_peer(
        peer: SocketAddr,
        tls: rustls::ClientConfig,
        domain: Domain,
    ) -> Result<QuicClient, NetError> {
        let bind = match peer.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let config = crate::quic_client_config(tls)?;
        QuicClient::new(SocketAddr::new(bind, 0), config, domain)
    }

    /// Connects to `addr`, checking the certificate for `server_name`, within
    /// [`HANDSHAKE_TIMEOUT`].
    ///
    /// # Errors
    /// Connection, handshake (certificate, ALPN) and timeout errors.
    pub async fn connect(
        &self,
        addr: SocketAddr,
        server_name: &str,
    ) -> Result<QuicConnection, NetError> {
        let connecting = self.endpoint.connect(addr, server_name)?;
        let conn = tokio::time::timeout(HANDSHAKE_TIMEOUT, connecting)
            .await
            .map_err(|_| NetError::HandshakeTimeout)??;
        Ok(QuicConnection { conn, domain: self.domain.clone() })
    }
}

/// One QUIC connection to a DMTP server. Cheap to clone; every call uses its own stream, so
/// calls may run concurrently.
#[derive(Debug, Clone)]
pub struct QuicConnection {
    conn: quinn::Connection,
    domain: Domain,
}

impl QuicConnection {
    /// Runs one command on a new stream: `start` gives it to the stream's machine and returns
    /// what picks its answer ([`pump`]). The stream carries that one command: its end goes
    /// with the command's last frame, which ends the server's side too (no QUIT round trip,
    /// `spec/dmtp.md` §2).
    async fn one<T, P>(
        &self,
        mode: Mode,
        start: impl FnOnce(&mut Client) -> P,
    ) -> Result<T, NetError>
    where
        P: FnMut(ClientEvent) -> Result<T, ClientEvent>,
    {
        let (mut send, mut recv) = self.conn.open_bi().await?;
        let domain = (mode == Mode::Transfer).then_some(&self.domain);
        let mut c = Client::new(domain, mode, Instant::now());
        let pick = start(&mut c);
        pump(&mut c, &mut recv, &mut send, Sending::EndWhenSent, pick).await
    }

    /// Delivers one message on a new stream; returns the server's transaction id once the
    /// server has stored it.
    ///
    /// # Errors
    /// [`NetError::Refused`] with the server's code, protocol and transport errors.
    pub async fn send(&self, msg: Outgoing) -> Result<TransactionId, NetError> {
        self.one(Mode::Transfer, |c| delivered(c.send_message(msg, Instant::now()))).await
    }

    /// SGNT on a new stream: the signet's bytes, not yet validated.
    ///
    /// # Errors
    /// [`NetError::Refused`] with the server's code, protocol and transport errors.
    pub async fn lookup_signet(
        &self,
        name: &SignetName,
        pin: Option<&Fingerprint>,
    ) -> Result<Vec<u8>, NetError> {
        self.one(Mode::Lookup, |c| {
            c.lookup_signet(name, pin, Instant::now());
            signet
        })
        .await
    }

    /// HIST on a new stream: the signets of `name` published after the one whose fingerprint
    /// is `from`, oldest first, not yet validated.
    ///
    /// # Errors
    /// [`NetError::Refused`] with the server's code, protocol and transport errors.
    pub async fn history(
        &self,
        name: &SignetName,
        from: &Fingerprint,
    ) -> Result<Vec<Vec<u8>>, NetError> {
        self.one(Mode::Lookup, |c| {
            c.history(name, from, Instant::now());
            history
        })
        .await
    }

    /// Closes the connection.
    pub fn close(&self) {
        self.conn.close(quinn::VarInt::from_u32(0), b"done");
    }

    /// The underlying QUIC connection.
    pub fn quic(&self) -> &quinn::Connection {
        &self.conn
    }
}

/// One TLS-over-TCP connection to a DMTP server: one stream, transactions in turn.
pub struct TlsConnection {
    client: Client,
    reader: ReadHalf<tokio_rustls::client::TlsStream<TcpStream>>,
    writer: WriteHalf<tokio_rustls::client::TlsStream<TcpStream>>,
    greeting: Option<Greeting>,
}

impl std::fmt::Debug for TlsConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConnection").field("greeting", &self.greeting).finish_non_exhaustive()
    }
}

impl TlsConnection {
    /// Drives the connection's machine until `pick` takes an event ([`pump`]); the sending
    /// side stays open for the next command.
    async fn run<T>(
        &mut self,
        pick: impl FnMut(ClientEvent) -> Result<T, ClientEvent>,
    ) -> Result<T, NetError> {
        pump(&mut self.client, &mut self.reader, &mut self.writer, Sending::Open, pick).await
    }

    /// Connects to `addr` over TCP, runs the TLS handshake (certificate checked for
    /// `server_name` by `config`'s verifier, ALPN `dmtp/1`) and HELLO for our `domain`.
    ///
    /// # Errors
    /// Transport, TLS, ALPN, timeout and HELLO refusal errors.
    pub async fn connect(
        addr: SocketAddr,
        server_name: &str,
        config: Arc<rustls::ClientConfig>,
        domain: &Domain,
    ) -> Result<TlsConnection, NetError> {
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| NetError::Config("server name is not a dns name or ip address"))?;
        let connector = tokio_rustls::TlsConnector::from(config);
        let handshake = async {
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            Ok::<_, NetError>(connector.connect(name, tcp).await?)
        };
        let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
            .await
            .map_err(|_| NetError::HandshakeTimeout)??;
        if tls.get_ref().1.alpn_protocol() != Some(ALPN) {
            return Err(NetError::Alpn);
        }
        let (reader, writer) = tokio::io::split(tls);
        let client = Client::new(Some(domain), Mode::Transfer, Instant::now());
        let mut conn = TlsConnection { client, reader, writer, greeting: None };
        let g = conn
            .run(|e| match e {
                ClientEvent::Greeted(g) => Ok(g),
                other => Err(other),
            })
            .await?;
        conn.greeting = Some(g);
        Ok(conn)
    }

    /// What the server said in its greeting.
    pub fn greeting(&self) -> Option<&Greeting> {
        self.greeting.as_ref()
    }

    /// Delivers one message; returns the server's transaction id once stored.
    ///
    /// # Errors
    /// [`NetError::Refused`] with the server's code, protocol and transport errors.
    pub async fn send(&mut self, msg: Outgoing) -> Result<TransactionId, NetError> {
        let txn = self.client.send_message(msg, Instant::now());
        self.run(delivered(txn)).await
    }

    /// SGNT: the signet's bytes, not yet validated.
    ///
    /// # Errors
    /// [`NetError::Refused`] with the server's code, protocol and transport errors.
    pub async fn lookup_signet(
        &mut self,
        name: &SignetName,
        pin: Option<&Fingerprint>,
    ) -> Result<Vec<u8>, NetError> {
        self.client.lookup_signet(name, pin, Instant::now());
        self.run(signet).await
    }

    /// HIST: the signets of `name` published after `from`, oldest first, not yet validated.
    ///
    /// # Errors
    /// [`NetError::Refused`] with the server's code, protocol and transport errors.
    pub async fn history(
        &mut self,
        name: &SignetName,
        from: &Fingerprint,
    ) -> Result<Vec<Vec<u8>>, NetError> {
        self.client.history(name, from, Instant::now());
        self.run(history).await
    }

    /// QUIT, then closes the connection.
    ///
    /// # Errors
    /// Transport errors; a refused QUIT.
    pub async fn quit(mut self) -> Result<(), NetError> {
        self.client.quit(Instant::now());
        let r = self
            .run(|e| match e {
                ClientEvent::Closed => Ok(()),
                other => Err(other),
            })
            .await;
        let _ = self.writer.shutdown().await;
        r
    }
}

/// Whether `err` is worth a retry later (a 4xx, a timeout or a transport failure) rather than
/// a bounce (a 5xx).
pub fn is_temporary(err: &NetError) -> bool {
    match err {
        NetError::Refused { code, .. } => code.is_temporary(),
        NetError::Config(_) | NetError::Misuse(_) => false,
        _ => true,
    }
}

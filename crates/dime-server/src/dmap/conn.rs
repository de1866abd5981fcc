//! One DMAP connection: the loop that feeds the protocol machine, carries out its events and
//! writes its output under the deadlines of `spec/dmap.md` §6.

use super::stream::Stream;
use super::{DmapOptions, Security};
use crate::service::{Directory, LoginError, LoginSource, MailService, Password, UserSession};
use dime_core::Mailbox;
use dime_dmap::{Event, FrameLimits, Selected, Server, ServerConfig, State, Status, Tag};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Octets read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;
/// Octets read at a time in IDLE.
const IDLE_READ_CHUNK: usize = 256;

/// Why a connection ends.
pub(super) enum End {
    /// The client left, or was closed by a deadline or an error.
    Closed,
}

/// Rendered messages the session keeps for its next FETCH, within
/// [`super::DMAP_RENDER_CACHE`] octets (oldest out first).
#[derive(Default)]
pub(super) struct RenderCache {
    map: HashMap<(u32, u32), Arc<crate::service::Rendered>>,
    order: VecDeque<(u32, u32)>,
    octets: usize,
}

impl RenderCache {
    pub(super) fn get(&self, mailbox: u32, uid: u32) -> Option<Arc<crate::service::Rendered>> {
        self.map.get(&(mailbox, uid)).cloned()
    }

    pub(super) fn put(&mut self, mailbox: u32, uid: u32, r: Arc<crate::service::Rendered>) {
        let len = r.bytes.len();
        if len > super::DMAP_RENDER_CACHE / 4 {
            return;
        }
        while self.octets + len > super::DMAP_RENDER_CACHE {
            let Some(k) = self.order.pop_front() else { break };
            if let Some(old) = self.map.remove(&k) {
                self.octets -= old.bytes.len();
            }
        }
        if self.map.insert((mailbox, uid), r).is_none() {
            self.order.push_back((mailbox, uid));
            self.octets += len;
        }
    }

    pub(super) fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
        self.octets = 0;
    }
}

/// A connection's state beyond the protocol machine's.
pub(super) struct Conn<D: Directory> {
    pub(super) server: Server,
    pub(super) stream: Stream,
    pub(super) service: Arc<MailService<D>>,
    pub(super) options: Arc<DmapOptions>,
    pub(super) tls: Arc<rustls::ServerConfig>,
    pub(super) peer: SocketAddr,
    pub(super) session: Option<UserSession>,
    pub(super) selected: Option<Selected>,
    pub(super) changes: Option<watch::Receiver<u64>>,
    pub(super) cache: RenderCache,
    /// The selected mailbox's (UIDNEXT, HIGHESTMODSEQ, messages) when its updates were last
    /// computed, with its id.
    pub(super) seen_state: Option<(u64, (u32, u64, u32))>,
}

/// Serves one accepted connection to its end.
pub(super) async fn serve<D: Directory>(
    tcp: TcpStream,
    peer: SocketAddr,
    security: Security,
    tls: Arc<rustls::ServerConfig>,
    service: Arc<MailService<D>>,
    options: Arc<DmapOptions>,
    mut stopping: watch::Receiver<bool>,
) {
    let stream = match security {
        Security::StartTls => Stream::Plain(tcp),
        Security::ImplicitTls => {
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&tls));
            match tokio::time::timeout(options.handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => Stream::Tls(Box::new(s)),
                _ => return,
            }
        }
    };
    let _counted = crate::metrics::DmapConnection::new(security == Security::ImplicitTls);
    let config = ServerConfig {
        tls: security == Security::ImplicitTls,
        starttls: true,
        append_limit: options.append_limit,
        frame: FrameLimits {
            max_append: usize::try_from(options.append_limit).unwrap_or(usize::MAX),
            ..FrameLimits::default()
        },
    };
    let mut c = Conn {
        server: Server::new(config),
        stream,
        service,
        options,
        tls,
        peer,
        session: None,
        selected: None,
        changes: None,
        cache: RenderCache::default(),
        seen_state: None,
    };
    let _ = c.run(&mut stopping).await;
    if let Some(s) = c.session.take() {
        s.logout();
    }
    let _ = c.stream.shutdown().await;
}

impl<D: Directory> Conn<D> {
    /// Writes what the machine has to say, within the write deadline.
    pub(super) async fn flush(&mut self) -> Result<(), End> {
        let out = self.server.take_output();
        if out.is_empty() {
            return Ok(());
        }
        let out = zeroize::Zeroizing::new(out);
        match tokio::time::timeout(self.options.write_timeout, async {
            self.stream.write_all(&out).await?;
            self.stream.flush().await
        })
        .await
        {
            Ok(Ok(())) => Ok(()),
            _ => Err(End::Closed),
        }
    }

    /// Writes the output when it passed the high-water mark (during a long FETCH).
    pub(super) async fn flush_if_full(&mut self) -> Result<(), End> {
        if self.server.pending_output() >= super::DMAP_OUTPUT_HIGH_WATER {
            self.flush().await
        } else {
            Ok(())
        }
    }

    async fn run(&mut self, stopping: &mut watch::Receiver<bool>) -> Result<(), End> {
        let mut buf = vec![0u8; READ_CHUNK];
        let mut keepalive = tokio::time::interval(Duration::from_secs(60));
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Which command is arriving and when it began to (`spec/dmap.md` §6).
        let mut command_started: Option<(u64, tokio::time::Instant)> = None;
        loop {
            self.flush().await?;
            while let Some(ev) = self.server.poll_event() {
                match ev {
                    Event::Login { tag, username, password } => {
                        self.login(&tag, &username, Password::new(password.0.to_vec())).await;
                    }
                    Event::Command(c) => self.execute(c).await?,
                    Event::IdleDone { tag } => {
                        self.send_updates(true).await;
                        self.server.tagged(&tag, Status::Ok, None, "IDLE terminated");
                    }
                    Event::StartTls => {
                        self.flush().await?;
                        self.start_tls().await?;
                    }
                    Event::Close => {
                        self.flush().await?;
                        return Ok(());
                    }
                }
                self.flush_if_full().await?;
            }
            self.flush().await?;
            let wait = match (self.server.state(), self.server.idling()) {
                (State::NotAuthenticated, _) => self.options.login_timeout,
                (_, true) => self.options.idle_command_timeout,
                _ => self.options.idle_timeout,
            };
            let idling = self.server.idling();
            // An idle session waits with a small buffer (`DONE` is all it expects): a
            // thousand IDLE sessions hold a thousand of these (`spec/dmap.md` §6).
            let size = if idling { IDLE_READ_CHUNK } else { READ_CHUNK };
            if buf.len() != size {
                buf = vec![0u8; size];
            }
            // A command must arrive whole within the command timeout plus its octets at the
            // slowest literal rate from its first octet, however often its octets come.
            let now = tokio::time::Instant::now();
            let mut at = now + wait;
            let mut too_slow = false;
            match self.server.partial_command() {
                Some((number, octets)) => {
                    let started = match command_started {
                        Some((n, t)) if n == number => t,
                        _ => {
                            command_started = Some((number, now));
                            now
                        }
                    };
                    let octets_time = Duration::from_millis(
                        octets.saturating_mul(1000) / self.options.min_literal_rate.max(1),
                    );
                    let whole_by = started + self.options.command_timeout + octets_time;
                    if whole_by < at {
                        at = whole_by;
                        too_slow = true;
                    }
                }
                None => command_started = None,
            }
            let deadline = tokio::time::sleep_until(at);
            tokio::pin!(deadline);
            tokio::select! {
                read = self.stream.read(&mut buf) => match read {
                    Ok(0) | Err(_) => return Err(End::Closed),
                    Ok(n) => self.server.handle_input(&buf[..n]),
                },
                () = &mut deadline => {
                    if too_slow {
                        self.server.bye("command too slow");
                    } else {
                        self.server.bye("autologout: idle too long");
                    }
                }
                _ = changed(&mut self.changes), if idling => {
                    self.send_updates(true).await;
                }
                _ = keepalive.tick(), if idling => {
                    // A client in IDLE is present: its session stays alive (spec/dmap.md §6).
                    let now = crate::now();
                    if let Some(s) = self.session.as_mut()
                        && s.touch(now).is_err()
                    {
                        self.server.bye("session expired");
                    }
                }
                () = async { drop(stopping.wait_for(|s| *s).await) } => {
                    self.server.bye("server shutting down");
                }
            }
        }
    }

    async fn start_tls(&mut self) -> Result<(), End> {
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            return Err(End::Closed);
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&self.tls));
        match tokio::time::timeout(self.options.handshake_timeout, acceptor.accept(tcp)).await {
            Ok(Ok(s)) => {
                self.stream = Stream::Tls(Box::new(s));
                self.server.tls_started();
                Ok(())
            }
            _ => Err(End::Closed),
        }
    }

    async fn login(&mut self, tag: &Tag, username: &str, password: Password) {
        let now = crate::now();
        // A bare local part is of our domain.
        let address = if username.contains('@') {
            username.to_owned()
        } else {
            format!("{username}@{}", self.service.local().domain)
        };
        let failed = "authentication failed";
        let Ok(user) = Mailbox::parse(&address) else {
            // The same answer as a wrong password: after the same throttle and work, through
            // the service, with an address that has no account.
            let nobody = Mailbox::parse(&format!("nobody@{}", self.service.local().domain));
            if let Ok(nobody) = nobody {
                let _ = self
                    .service
                    .login_from(&nobody, password, LoginSource::Ip(self.peer.ip()), now)
                    .await;
            }
            self.server.tagged(tag, Status::No, Some("AUTHENTICATIONFAILED"), failed);
            return;
        };
        match self.service.login_from(&user, password, LoginSource::Ip(self.peer.ip()), now).await {
            Ok(s) => {
                self.changes = Some(self.service.changes().watch(s.account()));
                self.session = Some(s);
                self.server.set_state(State::Authenticated);
                let caps = self.server.capabilities();
                self.server.tagged(
                    tag,
                    Status::Ok,
                    Some(&format!("CAPABILITY {caps}")),
                    "logged in",
                );
            }
            Err(LoginError::Failed) => {
                self.server.tagged(tag, Status::No, Some("AUTHENTICATIONFAILED"), failed);
            }
            Err(LoginError::Delayed { .. } | LoginError::Busy) => {
                self.server.tagged(tag, Status::No, Some("UNAVAILABLE"), "try again later");
            }
            Err(LoginError::Store(e)) => {
                tracing::warn!(error = %e, "imap login: store");
                self.server.tagged(tag, Status::No, Some("SERVERBUG"), "internal error");
            }
        }
    }
}

/// Waits for the next change of the account (never, without a session).
async fn changed(rx: &mut Option<watch::Receiver<u64>>) {
    match rx {
        Some(rx) => {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

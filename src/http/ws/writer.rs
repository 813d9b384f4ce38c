//! The write half of a WebSocket connection: one task writes every frame, in the order given.
//!
//! Text messages are written as a frame header and the message's parts in one vectored write:
//! a live query's shared data goes from its one buffer straight to the socket, with no copy per
//! subscriber (axum's socket needs each message in one buffer, and tungstenite then copies it
//! into its write buffer: two copies of every pushed result, half of the server's time with
//! 10,000 live dashboards). tungstenite still reads the connection and writes its control frames
//! (pongs, pings, close): those reach this task through [`Duplex`], whole frames, in order with
//! ours.
//!
//! (Over HTTP/2 hyper copies each slice into its own DATA frame: correct, just without the gain.)
//!
//! Bounds: [`Outbox::text`] returns once its frame is written, so a connection holds at most one
//! message of ours; tungstenite's frames wait (its write is pending) while more than
//! [`CONTROL_BYTES`] of them are queued. A frame that cannot be written within [`WRITE_TIMEOUT`]
//! ends the connection (the socket is dropped), so a client that stops reading cannot keep it
//! open past its budget; once every handle is gone, what is left gets [`DRAIN_TIMEOUT`].

use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};
use tokio::sync::Notify;

use super::handshake::Connection;

/// The most bytes of tungstenite's own frames queued at once (tungstenite is configured to hold
/// no more than this either: see `super::serve`).
pub(super) const CONTROL_BYTES: usize = 64 * 1024;

/// The longest one frame's write may take before the connection counts as dead (a client that
/// stops reading): the writer then stops and drops the socket, whatever is still queued.
const WRITE_TIMEOUT: Duration = Duration::from_secs(75);

/// Once every handle is gone, the longest each remaining frame (a close, say) and the final
/// shutdown may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The connection's write side: text frames of ours, and tungstenite's bytes through [`Duplex`].
pub struct Outbox {
    shared: Arc<Shared>,
}

/// The writer is gone: the socket failed or closed.
#[derive(Debug)]
pub struct Closed;

struct Shared {
    state: Mutex<State>,
    /// Wakes the writer task: a frame was queued, or every handle is gone.
    queued: Notify,
    /// Wakes senders: a frame was written, or the writer stopped.
    written: Notify,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Frame>,
    /// Bytes of tungstenite's frames in `queue`.
    control_bytes: usize,
    /// Frames queued so far, and written so far (a frame's number is its place in that order).
    pushed: u64,
    done: u64,
    /// The writer stopped (an error, a timeout, or everything written after the last handle
    /// went).
    stopped: bool,
    /// tungstenite queued a close frame.
    closing: bool,
    /// Handles left ([`Outbox`] clones and the [`Duplex`]).
    handles: usize,
    /// tungstenite's write waiting for room.
    waiting: Option<Waker>,
}

struct Frame {
    header: [u8; 10],
    header_len: usize,
    parts: Vec<Bytes>,
    control: usize,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Splits `connection`: the returned [`Duplex`] is what tungstenite reads and writes, the
/// [`Outbox`] where text frames go. The writer task runs until both are dropped and everything
/// queued is written, or until a write fails.
pub fn split<Io>(connection: Io) -> (Duplex<Io>, Outbox)
where
    Io: AsyncRead + AsyncWrite + Send + 'static,
{
    let (read, write) = tokio::io::split(connection);
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            handles: 2,
            ..State::default()
        }),
        queued: Notify::new(),
        written: Notify::new(),
    });
    tokio::spawn(run(shared.clone(), write));
    let duplex = Duplex {
        read,
        outbox: Outbox {
            shared: shared.clone(),
        },
    };
    (duplex, Outbox { shared })
}

impl Outbox {
    /// Writes a text message made of `parts` (valid UTF-8 together) as one frame, and returns
    /// once it is written.
    pub async fn text(&self, parts: Vec<Bytes>) -> Result<(), Closed> {
        let len: usize = parts.iter().map(Bytes::len).sum();
        let (header, header_len) = header(0x1, len);
        let number = {
            let mut state = self.shared.lock();
            if state.stopped || state.closing {
                return Err(Closed);
            }
            state.queue.push_back(Frame {
                header,
                header_len,
                parts,
                control: 0,
            });
            state.pushed += 1;
            state.pushed
        };
        self.shared.queued.notify_one();
        loop {
            let written = self.shared.written.notified();
            {
                let state = self.shared.lock();
                if state.done >= number {
                    return Ok(());
                }
                if state.stopped {
                    return Err(Closed);
                }
            }
            written.await;
        }
    }

    /// Queues tungstenite's bytes (whole frames); `Pending` while too many are queued.
    fn control(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let mut state = self.shared.lock();
        if state.stopped {
            return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
        }
        if state.control_bytes > 0 && state.control_bytes + buf.len() > CONTROL_BYTES {
            state.waiting = Some(cx.waker().clone());
            return Poll::Pending;
        }
        state.control_bytes += buf.len();
        // A close frame (final, opcode 8) is the last: no text of ours may follow it.
        state.closing |= buf.first() == Some(&0x88);
        state.queue.push_back(Frame {
            header: [0; 10],
            header_len: 0,
            parts: vec![Bytes::copy_from_slice(buf)],
            control: buf.len(),
        });
        state.pushed += 1;
        drop(state);
        self.shared.queued.notify_one();
        Poll::Ready(Ok(buf.len()))
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.handles -= 1;
        if state.handles == 0 {
            drop(state);
            self.shared.queued.notify_one();
        }
    }
}

/// A WebSocket frame header from the server (unmasked, final): `opcode` and the payload's length.
fn header(opcode: u8, len: usize) -> ([u8; 10], usize) {
    let mut header = [0u8; 10];
    header[0] = 0x80 | opcode;
    let header_len = if len < 126 {
        header[1] = len as u8;
        2
    } else if let Ok(len) = u16::try_from(len) {
        header[1] = 126;
        header[2..4].copy_from_slice(&len.to_be_bytes());
        4
    } else {
        header[1] = 127;
        header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    (header, header_len)
}

/// The writer task: writes queued frames in order until every handle is gone and the queue is
/// empty, or a write fails or times out; then shuts the write half down.
async fn run<Io: AsyncWrite + Send>(shared: Arc<Shared>, mut io: WriteHalf<Io>) {
    // However the task ends (a panic included), senders learn that it did.
    let _stopped = StopGuard(shared.clone());
    loop {
        let queued = shared.queued.notified();
        let (frame, limit) = {
            let mut state = shared.lock();
            let limit = if state.handles == 0 {
                DRAIN_TIMEOUT
            } else {
                WRITE_TIMEOUT
            };
            match state.queue.pop_front() {
                Some(frame) => (Some(frame), limit),
                None if state.handles == 0 => break,
                None => (None, limit),
            }
        };
        let Some(frame) = frame else {
            queued.await;
            continue;
        };
        let ok = matches!(
            tokio::time::timeout(limit, write(&mut io, &frame)).await,
            Ok(Ok(()))
        );
        let mut state = shared.lock();
        state.control_bytes -= frame.control;
        if ok {
            state.done += 1;
        } else {
            state.stopped = true;
        }
        let waiting = state.waiting.take();
        drop(state);
        if let Some(waker) = waiting {
            waker.wake();
        }
        shared.written.notify_waiters();
        if !ok {
            return;
        }
    }
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, io.shutdown()).await;
}

/// Marks the writer stopped and wakes its senders when dropped.
struct StopGuard(Arc<Shared>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.stopped = true;
        let waiting = state.waiting.take();
        drop(state);
        if let Some(waker) = waiting {
            waker.wake();
        }
        self.0.written.notify_waiters();
    }
}

/// Writes a frame's header and parts, however the socket splits the writes.
async fn write<Io: AsyncWrite>(io: &mut WriteHalf<Io>, frame: &Frame) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(frame.parts.len() + 1);
    if frame.header_len > 0 {
        slices.push(IoSlice::new(&frame.header[..frame.header_len]));
    }
    slices.extend(
        frame
            .parts
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| IoSlice::new(p)),
    );
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        let n = io.write_vectored(slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut slices, n);
    }
    io.flush().await
}

/// What tungstenite runs on: the connection's read half, and the [`Outbox`] for its writes.
pub struct Duplex<Io = Connection> {
    read: ReadHalf<Io>,
    outbox: Outbox,
}

impl<Io: AsyncRead> AsyncRead for Duplex<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl<Io> AsyncWrite for Duplex<Io> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.outbox.control(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::Role;

    use super::*;

    type Socket<Io> = WebSocketStream<Io>;

    /// A server socket over our writer and a client socket, joined by a pipe of `buffer` bytes.
    async fn connected(
        buffer: usize,
    ) -> (
        Socket<Duplex<tokio::io::DuplexStream>>,
        Socket<tokio::io::DuplexStream>,
        Outbox,
    ) {
        let (server_io, client_io) = tokio::io::duplex(buffer);
        let (duplex, outbox) = split(server_io);
        let server = WebSocketStream::from_raw_socket(duplex, Role::Server, None).await;
        let client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        (server, client, outbox)
    }

    #[test]
    fn headers_use_the_shortest_length_encoding() {
        let cases: [(usize, &[u8]); 5] = [
            (0, &[0x81, 0]),
            (125, &[0x81, 125]),
            (126, &[0x81, 126, 0, 126]),
            (65_535, &[0x81, 126, 0xff, 0xff]),
            (65_536, &[0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
        ];
        for (len, expected) in cases {
            let (header, header_len) = header(0x1, len);
            assert_eq!(&header[..header_len], expected, "length {len}");
        }
    }

    /// Messages of ours, made of parts, and tungstenite's pongs reach a WebSocket client whole and
    /// in order, through a pipe that takes 61 bytes at a time (every write is partial).
    #[tokio::test]
    async fn messages_in_parts_arrive_whole_through_partial_writes() {
        let (mut server, mut client, outbox) = connected(61).await;

        let big: String = (0..70_000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let messages = vec![
            vec![
                Bytes::from_static(b"{\"id\":\"1\",\"payload\":"),
                Bytes::from(big.clone()),
                Bytes::from_static(b"}"),
            ],
            vec![
                Bytes::from_static("ünïcødé ".as_bytes()),
                Bytes::new(),
                Bytes::from_static(b"split"),
            ],
            vec![Bytes::from(vec![b'x'; 200])],
        ];
        let expected: Vec<String> = messages
            .iter()
            .map(|parts| String::from_utf8(parts.concat()).expect("utf-8"))
            .collect();

        let reader = tokio::spawn(async move {
            client
                .send(Message::Ping(Bytes::from_static(b"p")))
                .await
                .expect("ping");
            let mut got = Vec::new();
            let mut pong = false;
            while got.len() < 3 {
                match client.next().await.expect("open").expect("frame") {
                    Message::Text(t) => got.push(t.as_str().to_owned()),
                    Message::Pong(p) => pong = p.as_ref() == b"p",
                    other => panic!("unexpected {other:?}"),
                }
            }
            (got, pong, client)
        });
        // The server reads (and so answers the ping) while our messages go out.
        let serve = tokio::spawn(async move { while let Some(Ok(_)) = server.next().await {} });
        for parts in messages {
            outbox.text(parts).await.expect("written");
        }
        let (got, pong, client) = reader.await.expect("reader");
        assert_eq!(got, expected);
        assert!(pong, "the client's ping was answered");
        drop(client);
        drop(outbox);
        serve.await.expect("server");
    }

    /// A client that stops reading: the write cannot finish, and after [`WRITE_TIMEOUT`] the
    /// writer gives up (time is paused: tokio advances it while everything waits).
    #[tokio::test(start_paused = true)]
    async fn a_peer_that_stops_reading_is_dropped_after_the_write_timeout() {
        let (server_io, _client_io) = tokio::io::duplex(64);
        let (_duplex, outbox) = split(server_io);
        let started = tokio::time::Instant::now();
        let sent = outbox.text(vec![Bytes::from(vec![b'z'; 100_000])]).await;
        assert!(sent.is_err());
        assert!(started.elapsed() >= WRITE_TIMEOUT);
        assert!(
            outbox
                .text(vec![Bytes::from_static(b"after")])
                .await
                .is_err()
        );
    }

    /// Once tungstenite has queued a close frame, no text of ours goes after it.
    #[tokio::test]
    async fn nothing_of_ours_follows_a_close() {
        let (mut server, mut client, outbox) = connected(4096).await;
        outbox
            .text(vec![Bytes::from_static(b"before")])
            .await
            .expect("written");
        server
            .send(Message::Close(None))
            .await
            .expect("close queued");
        assert!(
            outbox
                .text(vec![Bytes::from_static(b"after")])
                .await
                .is_err()
        );
        let first = client.next().await.expect("open").expect("frame");
        assert_eq!(first, Message::Text("before".into()));
        let second = client.next().await.expect("open").expect("frame");
        assert!(matches!(second, Message::Close(_)), "{second:?}");
    }

    #[tokio::test]
    async fn a_gone_peer_fails_the_send_instead_of_waiting() {
        let (server_io, client_io) = tokio::io::duplex(64);
        let (_duplex, outbox) = split(server_io);
        drop(client_io);
        let sent = outbox.text(vec![Bytes::from(vec![b'y'; 10_000])]).await;
        assert!(sent.is_err());
        assert!(
            outbox
                .text(vec![Bytes::from_static(b"again")])
                .await
                .is_err()
        );
    }
}

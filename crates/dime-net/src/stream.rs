//! Stream plumbing for the protocol drivers, whatever the protocol: a read bounded by the
//! machine's deadline, and frame writes gathered into few large writes.

/// Reads what `reader` has, waiting at most until the machine's `deadline`: `Some(n)` octets
/// (0 at the end of the stream), or `None` when the deadline came first (the caller then
/// tells its machine the timer fired). The DMTP drivers read this way.
pub(crate) async fn read_until<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
    deadline: Option<std::time::Instant>,
) -> std::io::Result<Option<usize>> {
    use tokio::io::AsyncReadExt;
    let read = reader.read(buf);
    Ok(match deadline {
        Some(d) => match tokio::time::timeout_at(tokio::time::Instant::from_std(d), read).await {
            Ok(r) => Some(r?),
            Err(_) => None,
        },
        None => Some(read.await?),
    })
}

/// Runs `write`, waiting at most `deadline` for it: a peer that takes no more (it reads
/// nothing; its receive window and our send buffer are full) gets [`std::io::ErrorKind::TimedOut`],
/// and the caller closes the stream (`spec/dmtp.md` §8).
pub(crate) async fn within<T>(
    deadline: std::time::Duration,
    write: impl Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    match tokio::time::timeout(deadline, write).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "write not taken within the write deadline",
        )),
    }
}

/// The most octets of frames gathered into one write.
const WRITE_GATHER: usize = 64 * 1024;

/// A frame as a machine gives it: one or two pieces, written back to back (a DMTP BODY frame
/// is its header, then a chunk shared with the body, not copied into the frame).
pub(crate) trait Pieces {
    /// The pieces, in order (either may be empty).
    fn pieces(&self) -> [&[u8]; 2];
}

impl Pieces for Vec<u8> {
    fn pieces(&self) -> [&[u8]; 2] {
        [self, &[]]
    }
}

/// Writes every frame `next` gives, gathered: the frames ready at once go out in one write (a
/// pipelined transaction, the replies to it) rather than one each, up to [`WRITE_GATHER`]
/// octets per write, and a frame's piece of that size or more goes alone, uncopied (a body chunk is
/// never copied). Returns whether anything was written. The DMTP drivers write this way
/// (`spec/dmtp.md` §2).
pub(crate) async fn write_frames<W: tokio::io::AsyncWrite + Unpin, F: Pieces>(
    writer: &mut W,
    mut next: impl FnMut() -> Option<F>,
) -> std::io::Result<bool> {
    use tokio::io::AsyncWriteExt;
    let mut out = Vec::new();
    let mut wrote = false;
    while let Some(frame) = next() {
        for piece in frame.pieces() {
            if !out.is_empty() && out.len() + piece.len() > WRITE_GATHER {
                writer.write_all(&out).await?;
                out.clear();
                wrote = true;
            }
            if piece.len() >= WRITE_GATHER {
                writer.write_all(piece).await?;
                wrote = true;
            } else {
                out.extend_from_slice(piece);
            }
        }
    }
    if !out.is_empty() {
        writer.write_all(&out).await?;
        wrote = true;
    }
    Ok(wrote)
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// Keeps each write it is given as one entry.
    #[derive(Default)]
    struct Writes(Vec<Vec<u8>>);

    impl tokio::io::AsyncWrite for Writes {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            self.0.push(buf.to_vec());
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn frames_are_gathered_up_to_the_bound_and_a_large_one_goes_alone() {
        let sizes = [100, 100, 100, 40 * 1024, 40 * 1024, 200 * 1024, 100];
        let frames: Vec<Vec<u8>> =
            sizes.iter().enumerate().map(|(i, &n)| vec![i as u8; n]).collect();
        let mut queue = frames.clone().into_iter();
        let mut w = Writes::default();
        assert!(super::write_frames(&mut w, || queue.next()).await.unwrap());
        let lens: Vec<usize> = w.0.iter().map(Vec::len).collect();
        assert_eq!(lens, [300 + 40 * 1024, 40 * 1024, 200 * 1024, 100]);
        assert_eq!(w.0.concat(), frames.concat(), "every octet, in order");
        let mut none = std::iter::empty::<Vec<u8>>();
        assert!(!super::write_frames(&mut w, || none.next()).await.unwrap());
        assert_eq!(w.0.len(), 4);
    }

    /// A frame of two pieces, as a DMTP BODY frame is.
    struct Two(Vec<u8>, Vec<u8>);

    impl super::Pieces for Two {
        fn pieces(&self) -> [&[u8]; 2] {
            [&self.0, &self.1]
        }
    }

    #[tokio::test]
    async fn a_frames_pieces_go_in_order_its_large_tail_alone() {
        let mut w = Writes::default();
        let frames = [
            Two(vec![1; 10], vec![2; 64 * 1024]),
            Two(vec![3; 10], vec![4; 100]),
            Two(vec![5; 10], Vec::new()),
        ];
        let mut queue = frames.iter().map(|f| Two(f.0.clone(), f.1.clone()));
        assert!(super::write_frames(&mut w, || queue.next()).await.unwrap());
        let lens: Vec<usize> = w.0.iter().map(Vec::len).collect();
        assert_eq!(lens, [10, 64 * 1024, 120], "the header gathered, the chunk alone");
        let sent: Vec<u8> =
            frames.iter().flat_map(|f| [f.0.clone(), f.1.clone()].concat()).collect();
        assert_eq!(w.0.concat(), sent, "every octet, in order");
    }
}

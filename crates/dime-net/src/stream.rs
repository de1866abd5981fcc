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

/// The most octets of frames gathered into one write.
const WRITE_GATHER: usize = 64 * 1024;

/// Writes every frame `next` gives, gathered: the frames ready at once go out in one write (a
/// pipelined transaction, the replies to it) rather than one each, up to [`WRITE_GATHER`]
/// octets per write, and a frame of that size or more goes alone, uncopied (a large body is
/// never copied whole). Returns whether anything was written. The DMTP drivers write this way
/// (`spec/dmtp.md` §2).
pub(crate) async fn write_frames<W: tokio::io::AsyncWrite + Unpin>(
    writer: &mut W,
    mut next: impl FnMut() -> Option<Vec<u8>>,
) -> std::io::Result<bool> {
    use tokio::io::AsyncWriteExt;
    let mut out = Vec::new();
    let mut wrote = false;
    while let Some(frame) = next() {
        if !out.is_empty() && out.len() + frame.len() > WRITE_GATHER {
            writer.write_all(&out).await?;
            out.clear();
            wrote = true;
        }
        if frame.len() >= WRITE_GATHER {
            writer.write_all(&frame).await?;
            wrote = true;
        } else {
            out.extend_from_slice(&frame);
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
        let mut none = std::iter::empty();
        assert!(!super::write_frames(&mut w, || none.next()).await.unwrap());
        assert_eq!(w.0.len(), 4);
    }
}

//! Length-prefixed frames on a libp2p stream.
//!
//! A frame is a 4-byte little-endian length followed by that many bytes. The reader refuses
//! a length above its limit before allocating anything, so a peer cannot make us reserve
//! memory by announcing a huge frame; after such a refusal the stream is out of step and
//! must be closed.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error(transparent)]
    Io(#[from] io::Error),
}

pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame over 4 GiB"))?;
    w.write_all(&len.to_le_bytes()).await?;
    w.write_all(bytes).await?;
    w.flush().await
}

/// Reads one frame into `buf`. `Ok(false)` means the peer closed the stream cleanly
/// between frames.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
    buf: &mut Vec<u8>,
) -> Result<bool, FrameError> {
    let mut len = [0u8; 4];
    // Only an end before a frame's first byte is a clean close: an end inside the length
    // prefix is a truncated frame, as it is anywhere after it.
    match r.read_exact(&mut len[..1]).await {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    r.read_exact(&mut len[1..]).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    buf.clear();
    buf.resize(len, 0);
    r.read_exact(buf).await?;
    Ok(true)
}

/// A frame reader that keeps its progress in itself rather than in a future, so that a
/// task can wait for the next frame and for other work at once (in `select!`) on the one
/// stream it owns: dropping [`FrameReader::poll_frame`]'s caller mid-frame loses nothing.
pub(crate) struct FrameReader {
    max: usize,
    len: [u8; 4],
    /// Bytes of the length prefix read so far, then of the body.
    got: usize,
    /// `Some` once the length prefix is complete.
    body: Option<Vec<u8>>,
}

impl FrameReader {
    pub(crate) fn new(max: usize) -> Self {
        FrameReader {
            max,
            len: [0; 4],
            got: 0,
            body: None,
        }
    }

    /// The next frame; `Ok(None)` if the peer closed the stream cleanly between frames.
    pub(crate) fn poll_frame<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Option<Vec<u8>>, FrameError>> {
        use std::task::Poll;
        loop {
            match &mut self.body {
                None => {
                    let n = match std::pin::Pin::new(&mut *r)
                        .poll_read(cx, &mut self.len[self.got..])
                    {
                        Poll::Ready(Ok(n)) => n,
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                        Poll::Pending => return Poll::Pending,
                    };
                    if n == 0 {
                        if self.got == 0 {
                            return Poll::Ready(Ok(None));
                        }
                        return Poll::Ready(Err(
                            io::Error::from(io::ErrorKind::UnexpectedEof).into()
                        ));
                    }
                    self.got += n;
                    if self.got == 4 {
                        let len = u32::from_le_bytes(self.len) as usize;
                        if len > self.max {
                            return Poll::Ready(Err(FrameError::TooLarge { len, max: self.max }));
                        }
                        self.body = Some(vec![0; len]);
                        self.got = 0;
                    }
                }
                Some(body) if self.got == body.len() => {
                    self.got = 0;
                    return Poll::Ready(Ok(self.body.take()));
                }
                Some(body) => {
                    let n = match std::pin::Pin::new(&mut *r).poll_read(cx, &mut body[self.got..]) {
                        Poll::Ready(Ok(n)) => n,
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                        Poll::Pending => return Poll::Pending,
                    };
                    if n == 0 {
                        return Poll::Ready(Err(
                            io::Error::from(io::ErrorKind::UnexpectedEof).into()
                        ));
                    }
                    self.got += n;
                }
            }
        }
    }
}

/// The frames a reader with limit `max` takes from `bytes`, and whether the bytes ended
/// cleanly between frames: the reader driven over a byte slice, so that fuzzing and
/// property tests reach it without a socket.
#[doc(hidden)]
pub fn read_frames_from(bytes: &[u8], max: usize) -> (Vec<Vec<u8>>, bool) {
    let mut reader = futures::io::Cursor::new(bytes);
    let mut frames = Vec::new();
    loop {
        let mut buf = Vec::new();
        match futures::executor::block_on(read_frame(&mut reader, max, &mut buf)) {
            Ok(true) => frames.push(buf),
            Ok(false) => return (frames, true),
            Err(_) => return (frames, false),
        }
    }
}

/// The bytes [`write_frame`] sends for `frames`, one after another.
#[doc(hidden)]
pub fn write_frames_to_vec(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for frame in frames {
        futures::executor::block_on(write_frame(&mut out, frame))
            .expect("writing a frame under 4 GiB into a Vec cannot fail");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::io::Cursor;

    /// A reader that hands out at most `step` bytes per read and is pending every other
    /// poll, as a socket under load is.
    struct Trickle {
        bytes: Vec<u8>,
        at: usize,
        step: usize,
        ready: bool,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<io::Result<usize>> {
            self.ready = !self.ready;
            if !self.ready {
                cx.waker().wake_by_ref();
                return std::task::Poll::Pending;
            }
            let n = self.step.min(buf.len()).min(self.bytes.len() - self.at);
            buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
            self.at += n;
            std::task::Poll::Ready(Ok(n))
        }
    }

    #[test]
    fn the_frame_reader_resumes_where_it_stopped_and_keeps_the_limit() {
        let frames = vec![b"one".to_vec(), vec![], vec![7; 300], b"last".to_vec()];
        for step in [1, 3, 5, 1000] {
            let mut r = Trickle {
                bytes: write_frames_to_vec(&frames),
                at: 0,
                step,
                ready: false,
            };
            let mut reader = FrameReader::new(300);
            let mut got = Vec::new();
            // Every call is a fresh future, as a `select!` loop makes one per turn.
            while let Some(frame) =
                block_on(futures::future::poll_fn(|cx| reader.poll_frame(&mut r, cx))).unwrap()
            {
                got.push(frame);
            }
            assert_eq!(got, frames, "step {step}");
        }
        let mut over = Cursor::new(write_frames_to_vec(&[vec![0; 301]]));
        let mut reader = FrameReader::new(300);
        assert!(matches!(
            block_on(futures::future::poll_fn(
                |cx| reader.poll_frame(&mut over, cx)
            )),
            Err(FrameError::TooLarge { len: 301, max: 300 })
        ));
        let mut cut = Cursor::new(write_frames_to_vec(&[b"cut".to_vec()])[..5].to_vec());
        let mut reader = FrameReader::new(300);
        assert!(matches!(
            block_on(futures::future::poll_fn(
                |cx| reader.poll_frame(&mut cut, cx)
            )),
            Err(FrameError::Io(_))
        ));
    }

    #[test]
    fn round_trip_and_clean_end() {
        let mut out = Vec::new();
        block_on(write_frame(&mut out, b"hello")).unwrap();
        block_on(write_frame(&mut out, b"")).unwrap();
        let mut r = Cursor::new(out);
        let mut buf = Vec::new();
        assert!(block_on(read_frame(&mut r, 16, &mut buf)).unwrap());
        assert_eq!(buf, b"hello");
        assert!(block_on(read_frame(&mut r, 16, &mut buf)).unwrap());
        assert!(buf.is_empty());
        assert!(!block_on(read_frame(&mut r, 16, &mut buf)).unwrap());
    }

    #[test]
    fn oversized_length_is_refused_before_reading() {
        let mut bytes = u32::MAX.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"xx");
        let mut buf = Vec::new();
        let err = block_on(read_frame(&mut Cursor::new(bytes), 1024, &mut buf)).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { max: 1024, .. }));
        assert!(buf.capacity() < 1024);
    }

    #[test]
    fn an_end_inside_the_length_prefix_is_an_error() {
        // A fuzzing regression: a cut inside the prefix is no clean close between frames.
        for cut in 1..4 {
            let mut r = Cursor::new(vec![5u8; cut]);
            let mut buf = Vec::new();
            assert!(
                matches!(
                    block_on(read_frame(&mut r, 16, &mut buf)),
                    Err(FrameError::Io(_))
                ),
                "{cut} bytes of a length prefix"
            );
        }
        assert_eq!(
            read_frames_from(&[1, 0, 0, 0, 7, 2], 16),
            (vec![vec![7]], false)
        );
        assert_eq!(
            read_frames_from(&[1, 0, 0, 0, 7], 16),
            (vec![vec![7]], true)
        );
    }

    #[test]
    fn truncated_frame_is_an_error() {
        let mut bytes = 10u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"abc");
        let mut buf = Vec::new();
        assert!(matches!(
            block_on(read_frame(&mut Cursor::new(bytes), 1024, &mut buf)),
            Err(FrameError::Io(_))
        ));
    }
}

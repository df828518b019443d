//! A write buffer under h2: h2 writes a large DATA payload as a second write after the
//! frame headers (it cannot use vectored IO over this transport), which would cost a
//! syscall (and a TLS record) each. Buffering writes until h2 flushes sends a request's
//! HEADERS and DATA together. Reads pass straight through.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_lite::io::{AsyncRead, AsyncWrite};

pub struct Coalesce<T> {
    inner: T,
    buf: Vec<u8>,
    /// Bytes of `buf` already written to `inner`.
    written: usize,
    capacity: usize,
}

impl<T> Coalesce<T> {
    pub fn new(inner: T, capacity: usize) -> Self {
        Self {
            inner,
            buf: Vec::with_capacity(capacity),
            written: 0,
            capacity,
        }
    }
}

impl<T: AsyncWrite + Unpin> Coalesce<T> {
    /// Writes out everything buffered.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.buf.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.buf.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Coalesce<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Coalesce<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.buf.len() + data.len() > this.capacity {
            ready!(this.poll_drain(cx))?;
        }
        if data.len() >= this.capacity {
            // Too big to be worth copying: straight through, now that the buffer is empty.
            return Pin::new(&mut this.inner).poll_write(cx, data);
        }
        this.buf.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::AsyncWriteExt;
    use futures_lite::future::block_on;

    /// Records each write it is given.
    #[derive(Default)]
    struct Recorder(Vec<Vec<u8>>);

    impl AsyncWrite for Recorder {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            data: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.get_mut().0.push(data.to_vec());
            Poll::Ready(Ok(data.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn small_writes_go_out_together_at_flush() {
        let mut c = Coalesce::new(Recorder::default(), 64);
        block_on(async {
            c.write_all(b"headers").await.expect("write");
            c.write_all(b"payload").await.expect("write");
            assert!(c.inner.0.is_empty(), "nothing written before the flush");
            c.flush().await.expect("flush");
        });
        assert_eq!(c.inner.0, [b"headerspayload".to_vec()]);
    }

    #[test]
    fn large_writes_pass_through_in_order() {
        let mut c = Coalesce::new(Recorder::default(), 8);
        block_on(async {
            c.write_all(b"hdr").await.expect("write");
            c.write_all(&[7u8; 20]).await.expect("write");
            c.write_all(b"tail").await.expect("write");
            c.flush().await.expect("flush");
        });
        let all: Vec<u8> = c.inner.0.concat();
        assert_eq!(all, [&b"hdr"[..], &[7u8; 20], b"tail"].concat());
        assert_eq!(
            c.inner.0.len(),
            3,
            "buffer, the big write, the tail at flush"
        );
    }
}

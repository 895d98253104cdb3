//! Length-prefixed frames on a libp2p request-response stream: the one codec that sync
//! (`/aidmesh/sync/1`, docs/protocol.md §8.1) and peer exchange (`/aidmesh/pex/1`,
//! §9.2) share. A frame is the message's length, big-endian, in a prefix of 2 or 4
//! bytes ([`Prefix`]), then the message. The reader checks the length against the
//! protocol's limit before it allocates or reads anything more, so a peer cannot make a
//! node hold more than one message's worth of memory per stream. Each protocol names
//! its [`Framing`] (prefix, limit, and what a message is called in errors) and its
//! messages' bytes ([`Message`]); [`Codec`] does the rest, counting the bytes it reads
//! and writes, prefixes included, into [`Counters`] for status.

use std::fmt::Display;
use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

/// The width of a frame's length prefix (big-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    /// 2 bytes: messages of at most 65 535 bytes.
    U16,
    /// 4 bytes.
    U32,
}

impl Prefix {
    /// Bytes of the prefix on the wire.
    pub const fn width(self) -> usize {
        match self {
            Prefix::U16 => 2,
            Prefix::U32 => 4,
        }
    }

    /// The prefix for a message of `n` bytes, or `None` if `n` does not fit in it.
    fn encode(self, n: usize) -> Option<Vec<u8>> {
        match self {
            Prefix::U16 => u16::try_from(n).ok().map(|n| n.to_be_bytes().to_vec()),
            Prefix::U32 => u32::try_from(n).ok().map(|n| n.to_be_bytes().to_vec()),
        }
    }
}

/// How one protocol frames its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// The length prefix.
    pub prefix: Prefix,
    /// The longest message read; a longer length is refused before reading on.
    pub limit: usize,
    /// What a message is called in errors ("sync frame").
    pub name: &'static str,
}

impl Framing {
    /// Reads one frame's message; `Ok` only with the whole of it.
    pub async fn read<T: AsyncRead + Unpin + Send>(&self, io: &mut T) -> io::Result<Vec<u8>> {
        let mut len = [0u8; 4];
        let len = &mut len[..self.prefix.width()];
        io.read_exact(len).await?;
        let n = len.iter().fold(0usize, |n, b| n << 8 | usize::from(*b));
        if n > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} of {n} bytes is over the limit of {}",
                    self.name, self.limit
                ),
            ));
        }
        let mut buf = vec![0u8; n];
        io.read_exact(&mut buf).await?;
        Ok(buf)
    }

    /// Writes `message` as one frame and flushes. A message too long for the prefix is
    /// refused, with nothing written.
    pub async fn write<T: AsyncWrite + Unpin + Send>(
        &self,
        io: &mut T,
        message: &[u8],
    ) -> io::Result<()> {
        let len = self.prefix.encode(message.len()).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} too large", self.name),
            )
        })?;
        io.write_all(&len).await?;
        io.write_all(message).await?;
        io.flush().await
    }

    /// Bytes on the wire of a frame carrying a message of `n` bytes.
    fn wire_len(&self, n: usize) -> u64 {
        (self.prefix.width() + n) as u64
    }
}

/// A message of a framed protocol, as bytes.
pub trait Message: Sized + Send {
    /// Why bytes are not a message.
    type Error: Display;
    /// The message's bytes (a frame's content).
    fn encode(&self) -> Vec<u8>;
    /// The message in a frame's content, refused whole if malformed.
    fn decode(bytes: &[u8]) -> Result<Self, Self::Error>;
}

/// Makes [`Message`]s of types whose own `encode(&self) -> Vec<u8>` and
/// `decode(&[u8]) -> Result<Self, E>` give their bytes:
/// `messages!(DecodeError: SyncRequest, SyncResponse);`.
macro_rules! messages {
    ($error:ty: $($message:ty),+ $(,)?) => {$(
        impl $crate::net::framed::Message for $message {
            type Error = $error;
            fn encode(&self) -> Vec<u8> {
                <$message>::encode(self)
            }
            fn decode(bytes: &[u8]) -> Result<Self, $error> {
                <$message>::decode(bytes)
            }
        }
    )+};
}
pub(crate) use messages;

/// Bytes a codec read and wrote, prefixes included, for status and benchmarks.
#[derive(Debug, Default)]
pub struct Counters {
    /// Bytes read (frames and length prefixes).
    pub bytes_in: AtomicU64,
    /// Bytes written.
    pub bytes_out: AtomicU64,
}

/// A request-response codec of requests `Req` and responses `Resp`, each one frame.
#[derive(Debug)]
pub struct Codec<Req, Resp> {
    framing: Framing,
    counters: Arc<Counters>,
    messages: PhantomData<fn() -> (Req, Resp)>,
}

impl<Req, Resp> Clone for Codec<Req, Resp> {
    fn clone(&self) -> Self {
        Codec {
            framing: self.framing,
            counters: self.counters.clone(),
            messages: PhantomData,
        }
    }
}

impl<Req, Resp> Codec<Req, Resp> {
    /// A codec framing with `framing`, counting into `counters`.
    pub fn new(framing: Framing, counters: Arc<Counters>) -> Self {
        Codec {
            framing,
            counters,
            messages: PhantomData,
        }
    }

    async fn read<M: Message, T: AsyncRead + Unpin + Send>(&self, io: &mut T) -> io::Result<M> {
        let bytes = self.framing.read(io).await?;
        self.counters
            .bytes_in
            .fetch_add(self.framing.wire_len(bytes.len()), Ordering::Relaxed);
        M::decode(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
    }

    async fn write<M: Message, T: AsyncWrite + Unpin + Send>(
        &self,
        io: &mut T,
        message: M,
    ) -> io::Result<()> {
        let bytes = message.encode();
        self.framing.write(io, &bytes).await?;
        self.counters
            .bytes_out
            .fetch_add(self.framing.wire_len(bytes.len()), Ordering::Relaxed);
        Ok(())
    }
}

impl<Req: Message + 'static, Resp: Message + 'static> libp2p::request_response::Codec
    for Codec<Req, Resp>
{
    type Protocol = StreamProtocol;
    type Request = Req;
    type Response = Resp;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Req> {
        self.read(io).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Resp> {
        self.read(io).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Req,
    ) -> io::Result<()> {
        self.write(io, req).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Resp,
    ) -> io::Result<()> {
        self.write(io, res).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::io::Cursor;
    use libp2p::request_response::Codec as _;

    const SHORT: Framing = Framing {
        prefix: Prefix::U16,
        limit: 8,
        name: "short frame",
    };
    const LONG: Framing = Framing {
        prefix: Prefix::U32,
        limit: 70_000,
        name: "long frame",
    };

    fn written(framing: Framing, message: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Cursor::new(Vec::new());
        block_on(framing.write(&mut out, message))?;
        Ok(out.into_inner())
    }

    fn read(framing: Framing, wire: &[u8]) -> io::Result<Vec<u8>> {
        block_on(framing.read(&mut Cursor::new(wire.to_vec())))
    }

    #[test]
    fn a_frame_is_its_big_endian_length_then_the_message() {
        assert_eq!(written(SHORT, b"abc").unwrap(), b"\x00\x03abc");
        assert_eq!(written(LONG, b"abc").unwrap(), b"\x00\x00\x00\x03abc");
        assert_eq!(written(SHORT, b"").unwrap(), b"\x00\x00");
        let big = vec![7u8; 0x1_0203];
        let wire = written(LONG, &big).unwrap();
        assert_eq!(wire[..4], [0x00, 0x01, 0x02, 0x03]);
        assert_eq!(read(LONG, &wire).unwrap(), big);
        for framing in [SHORT, LONG] {
            for message in [&b""[..], b"a", b"12345678"] {
                let wire = written(framing, message).unwrap();
                assert_eq!(read(framing, &wire).unwrap(), message);
            }
        }
    }

    #[test]
    fn a_length_over_the_limit_is_refused_before_the_message_is_read() {
        // Only the prefix arrives: the reader must not wait for (or allocate) the rest.
        let e = read(SHORT, b"\x00\x09").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            e.to_string(),
            "short frame of 9 bytes is over the limit of 8"
        );
        let e = read(LONG, b"\xff\xff\xff\xff").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            e.to_string(),
            "long frame of 4294967295 bytes is over the limit of 70000"
        );
    }

    #[test]
    fn a_frame_cut_short_is_an_error() {
        for wire in [&b""[..], b"\x00", b"\x00\x03ab"] {
            let e = read(SHORT, wire).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{wire:?}");
        }
    }

    #[test]
    fn a_message_too_long_for_its_prefix_is_not_written() {
        let e = written(SHORT, &vec![0u8; 70_000]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(e.to_string(), "short frame too large");
    }

    /// A message of one byte, `Err` for any other length.
    #[derive(Debug, PartialEq)]
    struct Byte(u8);

    impl Message for Byte {
        type Error = &'static str;
        fn encode(&self) -> Vec<u8> {
            vec![self.0]
        }
        fn decode(bytes: &[u8]) -> Result<Self, Self::Error> {
            match bytes {
                [b] => Ok(Byte(*b)),
                _ => Err("not one byte"),
            }
        }
    }

    #[test]
    fn the_codec_frames_both_ways_and_counts_the_prefixes_too() {
        let counters = Arc::new(Counters::default());
        let mut codec = Codec::<Byte, Byte>::new(SHORT, counters.clone());
        let protocol = StreamProtocol::new("/test/1");
        let mut wire = Cursor::new(Vec::new());
        block_on(codec.write_request(&protocol, &mut wire, Byte(1))).unwrap();
        block_on(codec.write_response(&protocol, &mut wire, Byte(2))).unwrap();
        assert_eq!(wire.get_ref(), b"\x00\x01\x01\x00\x01\x02");
        assert_eq!(counters.bytes_out.load(Ordering::Relaxed), 6);

        let mut wire = Cursor::new(wire.into_inner());
        assert_eq!(
            block_on(codec.read_request(&protocol, &mut wire)).unwrap(),
            Byte(1)
        );
        assert_eq!(
            block_on(codec.read_response(&protocol, &mut wire)).unwrap(),
            Byte(2)
        );
        assert_eq!(counters.bytes_in.load(Ordering::Relaxed), 6);

        // A well-framed message that does not decode is refused as invalid data.
        let mut wire = Cursor::new(b"\x00\x02ab".to_vec());
        let e = block_on(codec.read_request(&protocol, &mut wire)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(e.to_string(), "not one byte");
    }

    /// The framings docs/protocol.md specifies: §8.1 (sync, a u32 length) and §9.2
    /// (peer exchange, a u16 length), each message's bytes as its own encoder gives.
    #[test]
    fn sync_and_peer_exchange_frame_as_the_protocol_document_says() {
        use super::super::{pex, sync};
        use aidmesh_protocol::sync::{SyncRequest, MAX_SYNC_MESSAGE};
        assert_eq!(
            (sync::FRAMING.prefix, sync::FRAMING.limit),
            (Prefix::U32, MAX_SYNC_MESSAGE)
        );
        assert_eq!(MAX_SYNC_MESSAGE, 1_069_056);
        assert_eq!(
            (pex::FRAMING.prefix, pex::FRAMING.limit),
            (Prefix::U16, 4_130)
        );

        let protocol = StreamProtocol::new("/test/1");
        let req = SyncRequest::Fetch {
            ids: vec![aidmesh_protocol::EventId([9; 32])],
        };
        let mut wire = Cursor::new(Vec::new());
        let mut codec = sync::codec(Arc::default());
        block_on(codec.write_request(&protocol, &mut wire, req.clone())).unwrap();
        let body = req.encode();
        let mut expected = (body.len() as u32).to_be_bytes().to_vec();
        expected.extend(&body);
        assert_eq!(wire.into_inner(), expected);

        let req = pex::PexRequest { ports: vec![4610] };
        let mut wire = Cursor::new(Vec::new());
        let mut codec = pex::codec(Arc::default());
        block_on(codec.write_request(&protocol, &mut wire, req.clone())).unwrap();
        assert_eq!(wire.into_inner(), b"\x00\x04Q\x01\x12\x02");
    }
}

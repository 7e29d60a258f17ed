//! A tonic codec over pre-encoded responses: the encoder writes a `SubscribeResponse` that is
//! already Protobuf bytes as it is (events are encoded once and shared by every stream), and the
//! decoder reads the one `SubscribeRequest` of a call. Buffers start small, since an idle
//! stream holds its encode buffer for as long as it lives.

use bytes::{Buf, BufMut, Bytes};
use prost::Message;
use streamweaver_proto::v1::SubscribeRequest;
use tonic::{
    Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
};

/// Initial size of a stream's encode buffer (it grows by this much as needed).
const BUFFER_BYTES: usize = 512;
/// Responses ready at once are gathered into one write up to this many bytes.
const YIELD_THRESHOLD: usize = 16 * 1024;

fn buffer_settings() -> BufferSettings {
    BufferSettings::new(BUFFER_BYTES, YIELD_THRESHOLD)
}

/// The codec; see the module documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct PreEncoded;

impl Codec for PreEncoded {
    type Encode = Bytes;
    type Decode = SubscribeRequest;
    type Encoder = PreEncoded;
    type Decoder = RequestDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        PreEncoded
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestDecoder
    }
}

impl Encoder for PreEncoded {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }

    fn buffer_settings(&self) -> BufferSettings {
        buffer_settings()
    }
}

/// Decodes the call's `SubscribeRequest` (its size is limited before it gets here).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestDecoder;

impl Decoder for RequestDecoder {
    type Item = SubscribeRequest;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<SubscribeRequest>, Status> {
        let length = src.remaining();
        SubscribeRequest::decode(src.copy_to_bytes(length))
            .map(Some)
            .map_err(|error| {
                Status::invalid_argument(format!("malformed SubscribeRequest: {error}"))
            })
    }

    fn buffer_settings(&self) -> BufferSettings {
        buffer_settings()
    }
}

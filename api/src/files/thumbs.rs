//! Thumbnails: made off the request path, at most [`THUMB_MAX`] pixels on the long side,
//! JPEG for opaque images and PNG for those with transparency. Decoding is bounded so a
//! small file that claims a huge canvas (a decompression bomb) is refused.

use std::io::Cursor;

use image::{DynamicImage, ImageReader, Limits};

/// What a thumbnail is: PNG when the image has transparency, JPEG otherwise.
pub const THUMBNAIL_TYPES: &[&str] = &["image/png", "image/jpeg"];

pub const THUMB_MAX: u32 = 320;
/// The largest canvas decoded for a thumbnail: 40 megapixels, 16,384 px on a side.
const MAX_PIXELS: u64 = 40_000_000;
const MAX_SIDE: u32 = 16_384;
const MAX_ALLOC: u64 = 256 * 1024 * 1024;

/// A thumbnail and the original's dimensions.
pub struct Thumbnail {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub width: u32,
    pub height: u32,
    pub original: (u32, u32),
}

pub fn make(bytes: &[u8]) -> Result<Thumbnail, String> {
    // The header's claimed size is checked before anything is decoded.
    let (w, h) = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?
        .into_dimensions()
        .map_err(|e| e.to_string())?;
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(format!("{w}×{h} is too large to make a thumbnail of"));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| e.to_string())?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| e.to_string())?;
    let original = (image.width(), image.height());
    let thumb =
        if original.0 > THUMB_MAX || original.1 > THUMB_MAX { image.thumbnail(THUMB_MAX, THUMB_MAX) } else { image };
    let mut out = Cursor::new(Vec::new());
    let content_type = if thumb.color().has_alpha() {
        thumb.write_to(&mut out, image::ImageFormat::Png).map_err(|e| e.to_string())?;
        THUMBNAIL_TYPES[0]
    } else {
        let rgb = DynamicImage::ImageRgb8(thumb.to_rgb8());
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80);
        rgb.write_with_encoder(encoder).map_err(|e| e.to_string())?;
        THUMBNAIL_TYPES[1]
    };
    Ok(Thumbnail { bytes: out.into_inner(), content_type, width: thumb.width(), height: thumb.height(), original })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(img).write_to(&mut out, image::ImageFormat::Png).expect("encode");
        out.into_inner()
    }

    #[test]
    fn a_large_image_gets_a_320px_jpeg() {
        let t = make(&png(1000, 500)).expect("thumbnail");
        assert_eq!((t.width, t.height, t.original), (320, 160, (1000, 500)));
        assert_eq!(t.content_type, "image/jpeg");
        assert!(t.bytes.starts_with(&[0xff, 0xd8]));
    }

    /// PNG's chunk checksum (CRC-32, IEEE), bit by bit.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for byte in bytes {
            crc ^= u32::from(*byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    #[test]
    fn a_huge_canvas_is_refused_before_decoding() {
        // A valid PNG header claiming 20,000 × 20,000 pixels, with no pixel data.
        let mut header = png(1, 1);
        header[16..20].copy_from_slice(&20_000u32.to_be_bytes());
        header[20..24].copy_from_slice(&20_000u32.to_be_bytes());
        let crc = crc32(&header[12..29]);
        header[29..33].copy_from_slice(&crc.to_be_bytes());
        let err = make(&header).err().unwrap_or_default();
        assert!(err.contains("too large"), "{err}");
    }

    #[test]
    fn garbage_is_refused() {
        assert!(make(b"not an image at all").is_err());
    }
}

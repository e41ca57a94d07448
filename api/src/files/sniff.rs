//! What a file is, from its bytes: the client's name and declared type are never trusted.

/// Bytes read before deciding a file's type (enough for every format's signature and for
/// the image headers that give width and height).
pub const SNIFF_BYTES: usize = 16 * 1024;

/// The types accepted when `SYNCCHAT_FILES_ALLOWED_TYPES` is not set: images, PDF, plain
/// text and common office documents.
pub const DEFAULT_ALLOWED: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
    "application/rtf",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
];

/// The MIME type of a file from its first bytes (`head`, at most [`SNIFF_BYTES`]; `complete`
/// when that is the whole file). Text is recognised as UTF-8 without NUL bytes.
pub fn detect(head: &[u8], complete: bool) -> Option<String> {
    if let Some(kind) = infer::get(head) {
        return Some(kind.mime_type().to_owned());
    }
    if head.is_empty() || head.contains(&0) {
        return None;
    }
    match std::str::from_utf8(head) {
        Ok(_) => Some("text/plain".into()),
        // Cut in the middle of a character at the end of the sample: still text.
        Err(e) if !complete && e.error_len().is_none() && e.valid_up_to() + 4 > head.len() => Some("text/plain".into()),
        Err(_) => None,
    }
}

/// Width and height of an image from its first bytes, when the header is in them.
pub fn dimensions(head: &[u8]) -> Option<(u32, u32)> {
    let size = imagesize::blob_size(head).ok()?;
    Some((u32::try_from(size.width).ok()?, u32::try_from(size.height).ok()?))
}

pub fn is_image(content_type: &str) -> bool {
    matches!(content_type, "image/png" | "image/jpeg" | "image/gif" | "image/webp")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG_1X1: &[u8] = &[
        0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0, 0, 3, 0, 0, 0, 2, 8,
        6, 0, 0, 0,
    ];

    #[test]
    fn types_come_from_the_bytes() {
        assert_eq!(detect(PNG_1X1, true).as_deref(), Some("image/png"));
        assert_eq!(dimensions(PNG_1X1), Some((3, 2)));
        assert_eq!(detect(b"%PDF-1.7\n", true).as_deref(), Some("application/pdf"));
        assert_eq!(detect("héllo, world\n".as_bytes(), true).as_deref(), Some("text/plain"));
        let elf = [0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0x3e, 0];
        let elf_type = detect(&elf, true).unwrap_or_default();
        assert!(!DEFAULT_ALLOWED.contains(&elf_type.as_str()), "an executable is not allowed: {elf_type}");
        assert_eq!(detect(&[0, 1, 2, 3], true), None, "binary without a signature");
        // A UTF-8 character cut by the sample's end is still text.
        let cut = "aé".as_bytes();
        assert_eq!(detect(&cut[..2], false).as_deref(), Some("text/plain"));
    }
}

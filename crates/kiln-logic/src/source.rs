//! Reading example files from disk: plain or gzip-compressed, detected by content, with a bound
//! on the inflated size so a small "zip bomb" cannot exhaust memory.

use std::io::Read;
use std::path::Path;

use crate::table::TableError;

/// Default bound on the bytes a file may inflate to (1 GiB). The IWLS sample files inflate to about
/// 200 KiB; a table of 10⁶ rows of 500 inputs is 500 MB.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// The first two bytes of every gzip member (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads `path`, inflating it when it starts with the gzip magic bytes, and refuses files whose
/// (inflated) size exceeds `max_bytes`.
pub fn read_bytes(path: &Path, max_bytes: u64) -> Result<Vec<u8>, TableError> {
    let file = path.display().to_string();
    let io = |e: std::io::Error| TableError::Io {
        file: file.clone(),
        message: e.to_string(),
    };
    let raw = std::fs::File::open(path).map_err(io)?;
    let mut head = Vec::with_capacity(2);
    raw.take(2).read_to_end(&mut head).map_err(io)?;
    let raw = std::fs::File::open(path).map_err(io)?;
    let reader: Box<dyn Read> = if head == GZIP_MAGIC {
        Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(raw)))
    } else {
        Box::new(raw)
    };
    read_bounded(reader, max_bytes).map_err(|e| match e {
        Bounded::Io(e) => io(e),
        Bounded::TooLarge => TableError::TooLarge {
            file: file.clone(),
            message: format!(
                "{} larger than {max_bytes} bytes; refusing to read it whole",
                if head == GZIP_MAGIC { "inflates to" } else { "is" }
            ),
        },
    })
}

/// The first `len` bytes of `path`'s content (inflated when gzip), for telling formats apart
/// without reading a whole file that the real reader will read again.
pub fn read_head(path: &Path, len: u64) -> Result<Vec<u8>, TableError> {
    let file = path.display().to_string();
    let io = |e: std::io::Error| TableError::Io {
        file: file.clone(),
        message: e.to_string(),
    };
    let raw = std::fs::File::open(path).map_err(io)?;
    let mut reader = std::io::BufReader::new(raw);
    let gzip = std::io::BufRead::fill_buf(&mut reader).map_err(io)?.starts_with(&GZIP_MAGIC);
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let mut out = Vec::new();
    reader.take(len).read_to_end(&mut out).map_err(io)?;
    Ok(out)
}

enum Bounded {
    Io(std::io::Error),
    TooLarge,
}

fn read_bounded(reader: impl Read, max_bytes: u64) -> Result<Vec<u8>, Bounded> {
    let mut out = Vec::new();
    // One byte past the bound tells "exactly at the limit" from "over it".
    reader
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(Bounded::Io)?;
    if out.len() as u64 > max_bytes {
        return Err(Bounded::TooLarge);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_is_detected_by_content_and_bounded() {
        let dir = std::env::temp_dir().join(format!("kiln-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("data.txt"); // no .gz suffix: detection is by content
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&vec![b'1'; 10_000]).unwrap();
        std::fs::write(&path, enc.finish().unwrap()).unwrap();
        assert_eq!(read_bytes(&path, 10_000).unwrap().len(), 10_000);
        assert_eq!(read_head(&path, 5).unwrap(), b"11111");
        let err = read_bytes(&path, 9_999).unwrap_err().to_string();
        assert!(err.contains("inflates to larger than 9999 bytes"), "{err}");
        std::fs::write(&path, b"plain").unwrap();
        assert_eq!(read_bytes(&path, 5).unwrap(), b"plain");
        assert!(read_bytes(&path, 4).unwrap_err().to_string().contains("is larger than 4 bytes"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

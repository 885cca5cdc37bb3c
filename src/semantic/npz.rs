//! Reading numpy `.npz` archives: a zip of `.npy` files, one per array.
//!
//! The `zip` crate handles the archive (numpy writes deflated members with
//! `savez_compressed`); the `.npy` header is small enough to parse here. Only
//! what the encoder's weights need is supported: little-endian `f4`/`f8`
//! (returned as `f32`) and `u1`/`i1` bytes, in C order.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// Why an array could not be read from an `.npz` file. Every variant names the
/// file, and the array when there is one, so a broken download is easy to spot.
#[derive(Debug, thiserror::Error)]
pub enum NpzError {
    /// The file could not be opened (missing, unreadable).
    #[error("{path}: cannot open: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    /// The file is not a readable zip archive (truncated download, wrong file).
    #[error("{path}: not a readable npz (zip) archive: {source}")]
    Archive { path: PathBuf, source: zip::result::ZipError },
    /// The archive has no member `<name>.npy`.
    #[error("{path}: no array named {name:?}")]
    MissingArray { path: PathBuf, name: String },
    /// The member could not be decompressed or read in full.
    #[error("{path}: array {name:?}: cannot read: {source}")]
    Read { path: PathBuf, name: String, source: std::io::Error },
    /// The `.npy` header or payload is malformed or uses a layout we do not
    /// read (Fortran order, big-endian, object arrays, wrong payload length).
    #[error("{path}: array {name:?}: {reason}")]
    Format { path: PathBuf, name: String, reason: String },
}

/// An array's shape and its elements in C (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub struct Array<T> {
    /// Length of each axis; empty for a 0-d scalar.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` elements.
    pub data: Vec<T>,
}

/// An open `.npz` archive. Arrays are read on demand so the caller decides
/// how long each decompressed buffer lives.
pub struct Npz {
    path: PathBuf,
    archive: zip::ZipArchive<BufReader<File>>,
}

/// The element types the header can declare and we can read.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Dtype {
    F32,
    F64,
    U8,
    I8,
}

impl Dtype {
    fn parse(descr: &str) -> Option<Dtype> {
        match descr {
            "<f4" => Some(Dtype::F32),
            "<f8" => Some(Dtype::F64),
            "|u1" | "<u1" => Some(Dtype::U8),
            "|i1" | "<i1" => Some(Dtype::I8),
            _ => None,
        }
    }

    fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
            Dtype::U8 | Dtype::I8 => 1,
        }
    }
}

impl Npz {
    /// Opens the archive and reads its central directory.
    pub fn open(path: &Path) -> Result<Npz, NpzError> {
        let file = File::open(path).map_err(|source| NpzError::Open { path: path.to_path_buf(), source })?;
        let archive = zip::ZipArchive::new(BufReader::new(file))
            .map_err(|source| NpzError::Archive { path: path.to_path_buf(), source })?;
        Ok(Npz { path: path.to_path_buf(), archive })
    }

    /// Reads a floating-point array as `f32` (`f8` is narrowed, as numpy's
    /// `astype(np.float32)` would).
    pub fn f32_array(&mut self, name: &str) -> Result<Array<f32>, NpzError> {
        let (dtype, shape, bytes) = self.raw(name)?;
        let data = match dtype {
            Dtype::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Dtype::F64 => bytes
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
                .collect(),
            Dtype::U8 | Dtype::I8 => return Err(self.format(name, "expected a float array, found bytes".into())),
        };
        Ok(Array { shape, data })
    }

    /// Reads a `u1` array (the quantised embedding table).
    pub fn u8_array(&mut self, name: &str) -> Result<Array<u8>, NpzError> {
        let (dtype, shape, data) = self.raw(name)?;
        if dtype != Dtype::U8 {
            return Err(self.format(name, format!("expected uint8, found {dtype:?}")));
        }
        Ok(Array { shape, data })
    }

    fn format(&self, name: &str, reason: String) -> NpzError {
        NpzError::Format { path: self.path.clone(), name: name.to_string(), reason }
    }

    /// The member's dtype, shape and payload bytes, checked against each other.
    fn raw(&mut self, name: &str) -> Result<(Dtype, Vec<usize>, Vec<u8>), NpzError> {
        let member = format!("{name}.npy");
        let mut bytes = Vec::new();
        {
            let mut entry = match self.archive.by_name(&member) {
                Ok(entry) => entry,
                Err(zip::result::ZipError::FileNotFound) => {
                    return Err(NpzError::MissingArray { path: self.path.clone(), name: name.to_string() })
                }
                Err(source) => return Err(NpzError::Archive { path: self.path.clone(), source }),
            };
            // The declared size is only a hint for the allocation; a lying
            // header cannot make us reserve more than a sane bound.
            let hint = usize::try_from(entry.size()).unwrap_or(0).min(1 << 30);
            bytes.reserve(hint);
            entry.read_to_end(&mut bytes).map_err(|source| NpzError::Read {
                path: self.path.clone(),
                name: name.to_string(),
                source,
            })?;
        }
        let header = parse_npy(&bytes).map_err(|reason| self.format(name, reason))?;
        let payload = bytes.split_off(header.data_offset);
        let count = header
            .shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| self.format(name, "shape overflows".into()))?;
        let expected = count.checked_mul(header.dtype.size());
        if expected != Some(payload.len()) {
            return Err(self.format(
                name,
                format!(
                    "payload is {} bytes, shape {:?} of {:?} needs {}",
                    payload.len(),
                    header.shape,
                    header.dtype,
                    expected.map_or_else(|| "too many".to_string(), |n| n.to_string())
                ),
            ));
        }
        Ok((header.dtype, header.shape, payload))
    }
}

/// The parts of an `.npy` header we use.
#[derive(Debug, PartialEq)]
struct NpyHeader {
    dtype: Dtype,
    shape: Vec<usize>,
    /// Where the payload starts in the member's bytes.
    data_offset: usize,
}

/// Parses the `.npy` preamble: magic, version, header length and the Python
/// dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
fn parse_npy(bytes: &[u8]) -> Result<NpyHeader, String> {
    const MAGIC: &[u8] = b"\x93NUMPY";
    if bytes.len() < 10 || !bytes.starts_with(MAGIC) {
        return Err("not an .npy file (bad magic)".into());
    }
    let (len, start): (usize, usize) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => {
            let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            (usize::try_from(len).map_err(|_| "header too long")?, 12)
        }
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let end = start.checked_add(len).filter(|&e| e <= bytes.len()).ok_or("header runs past the end of the file")?;
    let dict = std::str::from_utf8(&bytes[start..end]).map_err(|_| "header is not text")?;

    let descr = dict_value(dict, "descr").ok_or("header has no 'descr'")?;
    let descr = descr.trim().trim_matches(|c| c == '\'' || c == '"');
    let dtype = Dtype::parse(descr).ok_or_else(|| format!("unsupported dtype {descr:?}"))?;

    let fortran = dict_value(dict, "fortran_order").ok_or("header has no 'fortran_order'")?;
    match fortran.trim() {
        "False" => {}
        "True" => return Err("Fortran-order arrays are not supported".into()),
        other => return Err(format!("bad fortran_order {other:?}")),
    }

    let shape = dict_value(dict, "shape").ok_or("header has no 'shape'")?;
    let inner = shape
        .trim()
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("bad shape {shape:?}"))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| format!("bad shape {shape:?}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(NpyHeader { dtype, shape, data_offset: end })
}

/// The raw text of `key`'s value in the header dict: up to the next top-level
/// comma (a tuple's commas are inside parentheses).
fn dict_value<'a>(dict: &'a str, key: &str) -> Option<&'a str> {
    let at = dict.find(&format!("'{key}'")).or_else(|| dict.find(&format!("\"{key}\"")))?;
    let rest = &dict[at + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?;
    let mut depth = 0usize;
    for (i, c) in rest.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' | '}' if depth == 0 => return Some(&rest[..i]),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// An `.npy` member's bytes.
    pub(crate) fn npy(descr: &str, shape: &str, payload: &[u8]) -> Vec<u8> {
        npy_with_order(descr, "False", shape, payload)
    }

    fn npy_with_order(descr: &str, fortran: &str, shape: &str, payload: &[u8]) -> Vec<u8> {
        let dict = format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}");
        let mut header = dict.into_bytes();
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(b' ');
        }
        header.push(b'\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(payload);
        out
    }

    /// Writes `w.npz` in `dir` with the given members.
    pub(crate) fn write_npz(dir: &Path, members: &[(&str, Vec<u8>)]) -> PathBuf {
        let path = dir.join("w.npz");
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        for (name, bytes) in members {
            let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
            zip.start_file(format!("{name}.npy"), options).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
        path
    }

    #[test]
    fn reads_f32_f64_and_u8_arrays() {
        let dir = tempfile::tempdir().unwrap();
        let f32s: Vec<u8> = [1.5f32, -2.0, 3.25, 0.0, 1e-3, 7.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let path = write_npz(
            dir.path(),
            &[
                ("a", npy("<f4", "(2, 3)", &f32s)),
                ("eps", npy("<f8", "()", &1e-12f64.to_le_bytes())),
                ("q", npy("|u1", "(3,)", &[1, 2, 255])),
            ],
        );
        let mut npz = Npz::open(&path).unwrap();
        let a = npz.f32_array("a").unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, vec![1.5, -2.0, 3.25, 0.0, 1e-3, 7.0]);
        let eps = npz.f32_array("eps").unwrap();
        assert!(eps.shape.is_empty());
        assert_eq!(eps.data, vec![1e-12f32]);
        assert_eq!(npz.u8_array("q").unwrap().data, vec![1, 2, 255]);
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = Npz::open(Path::new("/nonexistent/weights.npz")).err().unwrap();
        assert!(matches!(err, NpzError::Open { .. }));
        assert!(err.to_string().contains("/nonexistent/weights.npz"));
    }

    #[test]
    fn a_file_that_is_not_a_zip_is_an_archive_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weights.npz");
        std::fs::write(&path, b"<html>rate limited</html>").unwrap();
        let err = Npz::open(&path).err().unwrap();
        assert!(matches!(err, NpzError::Archive { .. }), "{err}");
    }

    #[test]
    fn missing_array_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_npz(dir.path(), &[("q", npy("|u1", "(1,)", &[0]))]);
        let err = Npz::open(&path).unwrap().f32_array("d0").unwrap_err();
        assert!(matches!(err, NpzError::MissingArray { ref name, .. } if name == "d0"));
    }

    #[test]
    fn short_payload_unsupported_dtype_and_fortran_order_are_format_errors() {
        let dir = tempfile::tempdir().unwrap();
        let fortran = npy_with_order("<f4", "True", "(1,)", &[0; 4]);
        let path = write_npz(
            dir.path(),
            &[
                ("short", npy("<f4", "(2, 2)", &[0; 12])),
                ("big_endian", npy(">f4", "(1,)", &[0; 4])),
                ("fortran", fortran),
                ("garbage", b"not numpy at all".to_vec()),
            ],
        );
        let mut npz = Npz::open(&path).unwrap();
        for name in ["short", "big_endian", "fortran", "garbage"] {
            let err = npz.f32_array(name).unwrap_err();
            assert!(matches!(err, NpzError::Format { .. }), "{name}: {err}");
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn header_dict_values_respect_tuple_commas() {
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (7530, 512), }";
        assert_eq!(dict_value(dict, "shape").map(str::trim), Some("(7530, 512)"));
        assert_eq!(dict_value(dict, "descr").map(str::trim), Some("'<f4'"));
    }
}

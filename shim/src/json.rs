//! The JSON the shim needs: an ASCII-only string writer that matches Python's
//! `encode_basestring_ascii` over `surrogateescape`-decoded bytes, and a validating
//! reader that picks a few top-level keys out of an object.
//!
//! The reader follows CPython's `json` scanner (strict mode): NaN, Infinity and
//! -Infinity are numbers, the last of duplicate keys wins, control characters are
//! not allowed in strings, integers have at most 4300 digits. Strings decode to
//! bytes: `\udc80`..`\udcff` become the raw byte (surrogateescape).

/// Deeper nesting is reported as not a document (CPython would raise RecursionError).
const MAX_DEPTH: usize = 512;
/// CPython's default `sys.int_info.str_digits_check_threshold`.
const MAX_INT_DIGITS: usize = 4300;
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a JSON string: bytes that are not UTF-8 as `\udcXX`, everything
/// outside printable ASCII as `\uXXXX` (surrogate pairs above U+FFFF).
pub fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    let mut rest = s;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                write_valid(out, valid);
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                // valid_up_to() marks a UTF-8 boundary, so this cannot fail.
                write_valid(out, std::str::from_utf8(valid).unwrap_or(""));
                let bad = e.error_len().unwrap_or(after.len()).max(1);
                for &b in &after[..bad] {
                    write_u16(out, 0xdc00 | u16::from(b));
                }
                rest = &after[bad..];
            }
        }
    }
    out.push(b'"');
}

fn write_valid(out: &mut Vec<u8>, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            ' '..='~' => out.push(c as u8),
            _ => {
                let mut units = [0u16; 2];
                for &u in c.encode_utf16(&mut units).iter() {
                    write_u16(out, u);
                }
            }
        }
    }
}

fn write_u16(out: &mut Vec<u8>, u: u16) {
    out.extend_from_slice(b"\\u");
    for shift in [12, 8, 4, 0] {
        out.push(HEX[usize::from((u >> shift) & 0xf)]);
    }
}

/// A top-level value that the caller asked for.
#[derive(Debug, PartialEq)]
pub enum Value {
    /// A string as bytes; `lossy` when it held a surrogate that is not a
    /// surrogate escape (those are written as U+FFFD).
    Str { bytes: Vec<u8>, lossy: bool },
    /// A number as written (`NaN`, `Infinity` and `-Infinity` included).
    Num(String),
    /// Anything else (object, array, true, false, null).
    Other,
}

impl Value {
    /// The string when it maps to bytes exactly.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Str {
                bytes,
                lossy: false,
            } => Some(bytes),
            _ => None,
        }
    }

    /// The number of seconds `s` when this is a finite number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Num(s) => s.parse::<f64>().ok().filter(|f| f.is_finite()),
            _ => None,
        }
    }

    /// An integer (no fraction, no exponent) reduced to its low 8 bits, two's
    /// complement: what Python's `n & 0xFF` gives.
    pub fn as_exit_code(&self) -> Option<u8> {
        let s = match self {
            Value::Num(s) => s,
            _ => return None,
        };
        let (neg, digits) = match s.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, s.as_str()),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let low = digits
            .bytes()
            .fold(0u8, |acc, d| acc.wrapping_mul(10).wrapping_add(d - b'0'));
        Some(if neg { low.wrapping_neg() } else { low })
    }
}

/// The values of `keys` in the JSON object `text` (the last one of duplicates),
/// or None when `text` is not one JSON document or not an object.
pub fn object_fields(text: &[u8], keys: &[&str]) -> Option<Vec<Option<Value>>> {
    let mut p = Parser {
        s: text,
        i: 0,
        depth: 0,
    };
    p.skip_outer_ws();
    let mut found: Vec<Option<Value>> = keys.iter().map(|_| None).collect();
    if p.peek() != Some(b'{') {
        p.value()?;
        p.skip_outer_ws();
        return None; // a document, but not an object
    }
    p.i += 1;
    p.depth = 1;
    p.ws();
    if p.peek() == Some(b'}') {
        p.i += 1;
    } else {
        loop {
            p.ws();
            if p.peek() != Some(b'"') {
                return None;
            }
            let (key, _) = p.string()?;
            p.ws();
            p.expect(b':')?;
            p.ws();
            match keys.iter().position(|k| k.as_bytes() == key.as_slice()) {
                Some(n) => found[n] = Some(p.value()?),
                None => {
                    p.value()?;
                }
            }
            p.ws();
            match p.next()? {
                b',' => continue,
                b'}' => break,
                _ => return None,
            }
        }
    }
    p.skip_outer_ws();
    (p.i == text.len()).then_some(found)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.i += 1;
        Some(b)
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        (self.next()? == b).then_some(())
    }

    /// JSON whitespace, between tokens.
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// Around the document CPython strips `str.isspace()` characters: the ASCII ones
    /// here (a netconf starting with U+00A0 is not worth a Unicode table).
    fn skip_outer_ws(&mut self) {
        while matches!(
            self.peek(),
            Some(b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0x1c..=0x1f)
        ) {
            self.i += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.s.get(self.i..self.i + word.len())? == word {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    fn value(&mut self) -> Option<Value> {
        match self.peek()? {
            b'"' => {
                let (bytes, lossy) = self.string()?;
                Some(Value::Str { bytes, lossy })
            }
            b'{' | b'[' => {
                self.container()?;
                Some(Value::Other)
            }
            b't' => self.literal(b"true").map(|_| Value::Other),
            b'f' => self.literal(b"false").map(|_| Value::Other),
            b'n' => self.literal(b"null").map(|_| Value::Other),
            b'N' => self.literal(b"NaN").map(|_| Value::Num("NaN".into())),
            b'I' => self.literal(b"Infinity").map(|_| Value::Num("inf".into())),
            b'-' if self.s.get(self.i + 1) == Some(&b'I') => {
                self.i += 1;
                self.literal(b"Infinity").map(|_| Value::Num("-inf".into()))
            }
            _ => self.number().map(Value::Num),
        }
    }

    fn container(&mut self) -> Option<()> {
        let close = if self.next()? == b'{' { b'}' } else { b']' };
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        if self.peek() == Some(close) {
            self.i += 1;
        } else {
            loop {
                self.ws();
                if close == b'}' {
                    if self.peek() != Some(b'"') {
                        return None;
                    }
                    self.string()?;
                    self.ws();
                    self.expect(b':')?;
                    self.ws();
                }
                self.value()?;
                self.ws();
                match self.next()? {
                    b',' => continue,
                    b if b == close => break,
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        Some(())
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?`, as text.
    fn number(&mut self) -> Option<String> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let int_start = self.i;
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        let int_digits = self.i - int_start;
        let mut integer = true;
        if self.peek() == Some(b'.') && self.s.get(self.i + 1).map_or(false, u8::is_ascii_digit) {
            self.i += 1;
            self.digits();
            integer = false;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            let save = self.i;
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.peek().map_or(false, |b| b.is_ascii_digit()) {
                self.digits();
                integer = false;
            } else {
                self.i = save; // not an exponent: the document fails on what follows
            }
        }
        if integer && int_digits > MAX_INT_DIGITS {
            return None;
        }
        // Only ASCII was consumed.
        std::str::from_utf8(&self.s[start..self.i])
            .ok()
            .map(str::to_owned)
    }

    fn digits(&mut self) {
        while self.peek().map_or(false, |b| b.is_ascii_digit()) {
            self.i += 1;
        }
    }

    fn hex4(&mut self) -> Option<u16> {
        let digits = self.s.get(self.i..self.i + 4)?;
        let mut v = 0u16;
        for &d in digits {
            v = (v << 4) | u16::from((d as char).to_digit(16)? as u8);
        }
        self.i += 4;
        Some(v)
    }

    /// A string (at the opening quote) as bytes, and whether it was lossy.
    fn string(&mut self) -> Option<(Vec<u8>, bool)> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        let mut lossy = false;
        loop {
            let b = self.next()?;
            match b {
                b'"' => return Some((out, lossy)),
                0..=0x1f => return None,
                b'\\' => {
                    let e = self.next()?;
                    let simple = match e {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 8,
                        b'f' => 12,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => 0,
                        _ => return None,
                    };
                    if e != b'u' {
                        out.push(simple);
                        continue;
                    }
                    let u = self.hex4()?;
                    let c = match u {
                        0xd800..=0xdbff => self.low_surrogate(u),
                        0xdc80..=0xdcff => {
                            out.push((u & 0xff) as u8);
                            continue;
                        }
                        _ => char::from_u32(u32::from(u)),
                    };
                    let c = c.unwrap_or_else(|| {
                        lossy = true;
                        char::REPLACEMENT_CHARACTER
                    });
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
                _ => out.push(b),
            }
        }
    }

    /// The character of the pair starting with high surrogate `hi`, when a
    /// `\uDC00`..`\uDFFF` escape follows (else the lone `hi`: None).
    fn low_surrogate(&mut self, hi: u16) -> Option<char> {
        if self.s.get(self.i..self.i + 2) != Some(b"\\u") {
            return None;
        }
        let save = self.i;
        self.i += 2;
        match self.hex4() {
            Some(lo @ 0xdc00..=0xdfff) => {
                let c = 0x10000 + ((u32::from(hi) - 0xd800) << 10) + (u32::from(lo) - 0xdc00);
                char::from_u32(c)
            }
            _ => {
                self.i = save; // the next escape stands on its own
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(s: &[u8]) -> String {
        let mut out = Vec::new();
        write_str(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    fn field(text: &str, key: &str) -> Option<Option<Value>> {
        object_fields(text.as_bytes(), &[key]).map(|mut v| v.remove(0))
    }

    fn str_value(s: &[u8]) -> Value {
        Value::Str {
            bytes: s.to_vec(),
            lossy: false,
        }
    }

    #[test]
    fn writes_like_encode_basestring_ascii() {
        // Expected values: json.encoder.encode_basestring_ascii(b.decode("utf-8", "surrogateescape"))
        assert_eq!(quoted(b""), r#""""#);
        assert_eq!(quoted(b"plain ~"), r#""plain ~""#);
        assert_eq!(quoted(b"\"\\/\n\r\t\x08\x0c"), r#""\"\\/\n\r\t\b\f""#);
        assert_eq!(quoted(b"\x00\x1f\x7f"), r#""\u0000\u001f\u007f""#);
        assert_eq!(quoted("é€".as_bytes()), r#""\u00e9\u20ac""#);
        assert_eq!(quoted("😀".as_bytes()), r#""\ud83d\ude00""#);
        assert_eq!(quoted(b"a\xffb\x80"), r#""a\udcffb\udc80""#);
        // Truncated and overlong sequences: every byte on its own.
        assert_eq!(quoted(b"\xe2\x82"), r#""\udce2\udc82""#);
        assert_eq!(quoted(b"\xf0\x9f\x98A"), r#""\udcf0\udc9f\udc98A""#);
        assert_eq!(quoted(b"\xc0\xaf"), r#""\udcc0\udcaf""#);
        // UTF-8 encoded surrogates are not UTF-8.
        assert_eq!(quoted(b"\xed\xa0\x80"), r#""\udced\udca0\udc80""#);
    }

    #[test]
    fn round_trips_bytes() {
        let all: Vec<u8> = (0..=255u8).collect();
        let doc = format!("{{\"k\": {}}}", quoted(&all));
        assert_eq!(field(&doc, "k"), Some(Some(str_value(&all))));
    }

    #[test]
    fn picks_top_level_keys() {
        let doc = r#" {"a": {"b": [1, 2.5e3, null, true, false, "x"]}, "b": "one", "b": "two", "n": -0.5E+2 } "#;
        let got = object_fields(doc.as_bytes(), &["b", "n", "a", "missing"]).unwrap();
        assert_eq!(got[0], Some(str_value(b"two")));
        assert_eq!(got[1].as_ref().and_then(Value::as_f64), Some(-50.0));
        assert_eq!(got[2], Some(Value::Other));
        assert_eq!(got[3], None);
        assert_eq!(field("{}", "a"), Some(None));
    }

    #[test]
    fn rejects_what_python_rejects() {
        for bad in [
            "",
            " ",
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{\"a\":1} x",
            "{'a':1}",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":.5}",
            "{\"a\":+1}",
            "{\"a\":\"\x01\"}",
            "{\"a\":\"\\x\"}",
            "{\"a\":\"\\u12\"}",
            "{\"a\":[1 2]}",
            "{\"a\":tru}",
            "{\"a\":\"open}",
            "{1:2}",
            "{\"a\":1e}",
        ] {
            assert_eq!(field(bad, "a"), None, "{bad:?}");
        }
        // Valid documents that are not objects.
        for other in ["[]", "1", "\"s\"", "null"] {
            assert_eq!(field(other, "a"), None, "{other:?}");
        }
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(field(&format!("{{\"a\":{deep}}}"), "a"), None);
        let long = "1".repeat(MAX_INT_DIGITS + 1);
        assert_eq!(field(&format!("{{\"a\":{long}}}"), "a"), None);
    }

    #[test]
    fn reads_python_constants_and_whitespace() {
        assert_eq!(
            field("\x0c{\"a\": NaN}\x1f", "a"),
            Some(Some(Value::Num("NaN".into())))
        );
        let inf = field("{\"a\": -Infinity}", "a").unwrap().unwrap();
        assert_eq!(inf.as_f64(), None);
        assert_eq!(inf, Value::Num("-inf".into()));
    }

    #[test]
    fn decodes_escapes() {
        let doc = r#"{"a": "\u00e9\ud83d\ude00\/\udc80\udcff"}"#;
        let mut want = "é😀/".as_bytes().to_vec();
        want.extend_from_slice(b"\x80\xff");
        assert_eq!(field(doc, "a"), Some(Some(str_value(&want))));
        // Lone surrogates that are not escapes: U+FFFD and lossy.
        for doc in [
            r#"{"a": "\ud800"}"#,
            r#"{"a": "\udc7f"}"#,
            r#"{"a": "\udfff"}"#,
            r#"{"a": "\ud800\u0041"}"#,
        ] {
            let v = field(doc, "a").unwrap().unwrap();
            let (bytes, lossy) = match v {
                Value::Str { bytes, lossy } => (bytes, lossy),
                _ => panic!("{doc}"),
            };
            assert!(lossy, "{doc}");
            assert!(bytes.starts_with("\u{fffd}".as_bytes()), "{doc}");
        }
        let v = field(r#"{"a": "\ud800\u0041"}"#, "a").unwrap().unwrap();
        assert_eq!(
            v,
            Value::Str {
                bytes: "\u{fffd}A".as_bytes().to_vec(),
                lossy: true
            }
        );
        assert_eq!(v.as_bytes(), None);
    }

    #[test]
    fn exit_codes_are_the_low_byte() {
        let code = |s: &str| Value::Num(s.into()).as_exit_code();
        assert_eq!(code("0"), Some(0));
        assert_eq!(code("-0"), Some(0));
        assert_eq!(code("1"), Some(1));
        assert_eq!(code("255"), Some(255));
        assert_eq!(code("256"), Some(0));
        assert_eq!(code("-1"), Some(255));
        assert_eq!(code("-256"), Some(0));
        assert_eq!(code("-257"), Some(255));
        assert_eq!(
            code("123456789012345678901234567890"),
            Some((123456789012345678901234567890u128 & 0xff) as u8)
        );
        assert_eq!(code("1.0"), None);
        assert_eq!(code("1e2"), None);
        assert_eq!(code("NaN"), None);
        assert_eq!(Value::Other.as_exit_code(), None);
    }
}

//! Small SQL text utilities: splitting a script into statements (a no-transaction script must send each statement
//! on its own, since PostgreSQL runs a multi-statement query string as one transaction) and turning PostgreSQL's
//! error position into a line and column of the file.

/// Split `sql` into statements at top-level semicolons, honouring quotes, `E''` escapes, dollar quotes and both
/// comment styles. Returns each statement with its byte offset in `sql`; statements holding only white space and
/// comments are dropped.
pub(crate) fn split_statements(sql: &str) -> Vec<(usize, &str)> {
    let bytes = sql.as_bytes();
    let mut statements = Vec::new();
    let mut start = 0;
    let mut has_code = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        let skip_to = match b {
            b'-' if next == Some(b'-') => Some(sql[i..].find('\n').map_or(bytes.len(), |n| i + n + 1)),
            b'/' if next == Some(b'*') => Some(block_comment_end(bytes, i)),
            _ => None,
        };
        if let Some(end) = skip_to {
            i = end;
            continue;
        }
        match b {
            b'\'' => {
                let escapes = i > 0 && matches!(bytes[i - 1], b'e' | b'E') && (i < 2 || !is_ident_byte(bytes[i - 2]));
                i = quoted_end(bytes, i, b'\'', escapes);
                has_code = true;
            }
            b'"' => {
                i = quoted_end(bytes, i, b'"', false);
                has_code = true;
            }
            b'$' if i == 0 || !is_ident_byte(bytes[i - 1]) => {
                i = match dollar_tag(&sql[i..]) {
                    Some(tag) => sql[i + tag.len()..].find(tag).map_or(bytes.len(), |n| i + tag.len() + n + tag.len()),
                    None => i + 1,
                };
                has_code = true;
            }
            b';' => {
                if has_code {
                    statements.push((start, &sql[start..i]));
                }
                i += 1;
                start = i;
                has_code = false;
            }
            _ => {
                has_code |= !b.is_ascii_whitespace();
                i += 1;
            }
        }
    }
    if has_code {
        statements.push((start, &sql[start..]));
    }
    statements
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

fn block_comment_end(bytes: &[u8], mut i: usize) -> usize {
    let mut depth = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"/*") {
            depth += 1;
            i += 2;
        } else if bytes[i..].starts_with(b"*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// The index just past the closing quote of the quoted text opening at `i`; a doubled quote is an escaped quote.
fn quoted_end(bytes: &[u8], mut i: usize, quote: u8, backslash_escapes: bool) -> usize {
    i += 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if backslash_escapes => i += 2,
            b if b == quote && bytes.get(i + 1) == Some(&quote) => i += 2,
            b if b == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// `$tag$` or `$$` at the start of `text`.
fn dollar_tag(text: &str) -> Option<&str> {
    let rest = &text[1..];
    let end = rest.find('$')?;
    let tag = &rest[..end];
    let valid = tag.is_empty() || (!tag.as_bytes()[0].is_ascii_digit() && tag.bytes().all(is_ident_byte));
    valid.then(|| &text[..end + 2])
}

/// Line and column (both one-based) of the character at one-based `position` within `text`.
pub(crate) fn line_and_column(text: &str, position: usize) -> (usize, usize) {
    let mut line = 1;
    let mut column = 1;
    for c in text.chars().take(position.saturating_sub(1)) {
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str) -> Vec<&str> {
        split_statements(sql).into_iter().map(|(_, s)| s.trim()).collect()
    }

    #[test]
    fn splits_on_top_level_semicolons_only() {
        let sql = "-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY a ON t (x);\nSELECT 'a;b', \"c;d\", E'\\';'; /* x; /* nested; */ */\n\
                   CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\nDO $$ BEGIN NULL; END $$;\n-- trailing; comment\n";
        assert_eq!(
            texts(sql),
            [
                "-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY a ON t (x)",
                "SELECT 'a;b', \"c;d\", E'\\';'",
                "/* x; /* nested; */ */\nCREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql",
                "DO $$ BEGIN NULL; END $$",
            ]
        );
    }

    #[test]
    fn offsets_point_into_the_script() {
        let sql = "SELECT 1;\n  SELECT 2";
        let statements = split_statements(sql);
        assert_eq!(statements, [(0, "SELECT 1"), (9, "\n  SELECT 2")]);
    }

    #[test]
    fn positional_parameters_and_identifiers_with_dollars_are_not_quotes() {
        assert_eq!(texts("SELECT $1; SELECT a$b$c; SELECT 2"), ["SELECT $1", "SELECT a$b$c", "SELECT 2"]);
    }

    #[test]
    fn unterminated_constructs_swallow_the_rest_instead_of_splitting_inside() {
        assert_eq!(texts("SELECT 'a; SELECT 2"), ["SELECT 'a; SELECT 2"]);
    }

    #[test]
    fn line_and_column_count_characters() {
        let text = "é\nab\ncd";
        assert_eq!(line_and_column(text, 1), (1, 1));
        assert_eq!(line_and_column(text, 4), (2, 2));
        assert_eq!(line_and_column(text, 6), (3, 1));
    }
}

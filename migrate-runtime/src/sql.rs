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

/// The name of the index a `CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] name ON ...` statement builds, as
/// stored (a quoted name as written, an unquoted one folded to lower case); `None` for any other statement or an
/// index left to PostgreSQL to name.
pub(crate) fn created_index_name(statement: &str) -> Option<String> {
    let words: Vec<String> = words(statement);
    let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
    let mut i = 0;
    let expect = |word: &str, i: &mut usize| {
        let found = upper.get(*i).is_some_and(|w| w == word);
        if found {
            *i += 1;
        }
        found
    };
    if !expect("CREATE", &mut i) {
        return None;
    }
    expect("UNIQUE", &mut i);
    if !(expect("INDEX", &mut i) && expect("CONCURRENTLY", &mut i)) {
        return None;
    }
    if expect("IF", &mut i) && !(expect("NOT", &mut i) && expect("EXISTS", &mut i)) {
        return None;
    }
    let name = words.get(i)?;
    if upper[i] == "ON" {
        return None;
    }
    Some(match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => name.to_ascii_lowercase(),
    })
}

/// The words of a statement, comments dropped: runs of anything but white space, parentheses and commas, a quoted
/// part (with its quotes) kept whole, so `"my schema".orders` and `'a, b'` are one word each.
fn words(statement: &str) -> Vec<String> {
    word_spans(statement).into_iter().map(|(start, end)| statement[start..end].to_owned()).collect()
}

/// The byte ranges of [`words`].
pub(crate) fn word_spans(statement: &str) -> Vec<(usize, usize)> {
    let bytes = statement.as_bytes();
    let separator = |b: u8| b.is_ascii_whitespace() || b == b'(' || b == b')' || b == b',' || b == b';';
    let mut spans = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'-' if bytes.get(i + 1) == Some(&b'-') => i = statement[i..].find('\n').map_or(bytes.len(), |n| i + n + 1),
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = block_comment_end(bytes, i),
            b if separator(b) => i += 1,
            _ => {
                let start = i;
                while i < bytes.len() && !separator(bytes[i]) {
                    i = match bytes[i] {
                        quote @ (b'"' | b'\'') => quoted_end(bytes, i, quote, false),
                        _ => i + 1,
                    };
                }
                spans.push((start, i));
            }
        }
    }
    spans
}

/// A statement that must run outside a transaction (`CREATE INDEX CONCURRENTLY`, `DROP INDEX CONCURRENTLY`,
/// `REINDEX ... CONCURRENTLY`), with each unqualified relation it names qualified with `schema` (already quoted).
/// Outside a transaction `search_path` is a session setting, which a transaction pooler does not carry from one
/// server connection to the next; a qualified name needs none. Other statements are returned as they are.
pub(crate) fn qualify_relations(statement: &str, schema: &str) -> String {
    let spans = word_spans(statement);
    let upper: Vec<String> = spans.iter().map(|&(a, b)| statement[a..b].to_ascii_uppercase()).collect();
    let at = |i: usize, word: &str| upper.get(i).is_some_and(|w| w == word);
    let mut targets = Vec::new();
    if at(0, "CREATE") && upper.iter().take(4).any(|w| w == "CONCURRENTLY") {
        if let Some(on) = upper.iter().position(|w| w == "ON") {
            targets.push(if at(on + 1, "ONLY") { on + 2 } else { on + 1 });
        }
    } else if at(0, "DROP") && at(1, "INDEX") && at(2, "CONCURRENTLY") {
        let first = if at(3, "IF") && at(4, "EXISTS") { 5 } else { 3 };
        targets.extend((first..spans.len()).filter(|&i| !matches!(upper[i].as_str(), "CASCADE" | "RESTRICT")));
    } else if at(0, "REINDEX") {
        if let Some(kind) = upper.iter().position(|w| w == "INDEX" || w == "TABLE") {
            if at(kind + 1, "CONCURRENTLY") {
                targets.push(kind + 2);
            }
        }
    }
    let mut qualified = statement.to_owned();
    for &i in targets.iter().rev() {
        let Some(&(start, end)) = spans.get(i) else { continue };
        if !has_unquoted_dot(&statement[start..end]) {
            qualified.insert_str(start, &format!("{schema}."));
        }
    }
    qualified
}

/// A `.` outside double quotes: the name is already qualified.
fn has_unquoted_dot(word: &str) -> bool {
    let mut quoted = false;
    word.chars().any(|c| {
        if c == '"' {
            quoted = !quoted;
        }
        c == '.' && !quoted
    })
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
    fn index_names_of_concurrent_builds() {
        assert_eq!(
            created_index_name("CREATE INDEX CONCURRENTLY orders_by_customer ON orders (customer_id)").as_deref(),
            Some("orders_by_customer")
        );
        assert_eq!(
            created_index_name("-- c\ncreate unique index concurrently if not exists \"Odd \"\"Name\" on t (x)")
                .as_deref(),
            Some("Odd \"Name")
        );
        assert_eq!(created_index_name("CREATE INDEX CONCURRENTLY Mixed ON t(x)").as_deref(), Some("mixed"));
        assert_eq!(created_index_name("CREATE INDEX CONCURRENTLY ON t (x)"), None);
        assert_eq!(created_index_name("CREATE INDEX i ON t (x)"), None);
        assert_eq!(created_index_name("DROP INDEX CONCURRENTLY i"), None);
    }

    #[test]
    fn relations_of_concurrent_index_statements_are_qualified() {
        let q = |sql| qualify_relations(sql, "\"tenant-1\"");
        assert_eq!(
            q("CREATE INDEX CONCURRENTLY i ON orders (customer_id)"),
            "CREATE INDEX CONCURRENTLY i ON \"tenant-1\".orders (customer_id)"
        );
        assert_eq!(
            q("create unique index concurrently if not exists i on only \"Odd\"(x)"),
            "create unique index concurrently if not exists i on only \"tenant-1\".\"Odd\"(x)"
        );
        assert_eq!(q("CREATE INDEX CONCURRENTLY i ON public.t (x)"), "CREATE INDEX CONCURRENTLY i ON public.t (x)");
        assert_eq!(
            q("CREATE INDEX CONCURRENTLY i ON \"a.b\" (x)"),
            "CREATE INDEX CONCURRENTLY i ON \"tenant-1\".\"a.b\" (x)"
        );
        assert_eq!(
            q("DROP INDEX CONCURRENTLY IF EXISTS a, s.b CASCADE"),
            "DROP INDEX CONCURRENTLY IF EXISTS \"tenant-1\".a, s.b CASCADE"
        );
        assert_eq!(q("REINDEX (VERBOSE) INDEX CONCURRENTLY i"), "REINDEX (VERBOSE) INDEX CONCURRENTLY \"tenant-1\".i");
        assert_eq!(q("-- note\nVACUUM t"), "-- note\nVACUUM t");
        assert_eq!(q("CREATE INDEX i ON t (x)"), "CREATE INDEX i ON t (x)", "not concurrent: runs in a transaction");
    }

    #[test]
    fn line_and_column_count_characters() {
        let text = "é\nab\ncd";
        assert_eq!(line_and_column(text, 1), (1, 1));
        assert_eq!(line_and_column(text, 4), (2, 2));
        assert_eq!(line_and_column(text, 6), (3, 1));
    }
}

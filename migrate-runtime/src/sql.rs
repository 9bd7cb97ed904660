//! Small SQL text utilities: splitting a script into statements (a no-transaction script must send each statement
//! on its own, since PostgreSQL runs a multi-statement query string as one transaction) and turning PostgreSQL's
//! error position into a line and column of the file.

use std::borrow::Cow;

/// Split `sql` into statements at top-level semicolons, honouring quotes, `E''` escapes, dollar quotes, both
/// comment styles and SQL-standard function bodies (`BEGIN ATOMIC ... END`, whose statements end in semicolons of
/// their own, `CASE ... END` inside). Returns each statement with its byte offset in `sql`; statements holding only
/// white space and comments are dropped.
pub fn split_statements(sql: &str) -> Vec<(usize, &str)> {
    let bytes = sql.as_bytes();
    let mut statements = Vec::new();
    let mut start = 0;
    let mut has_code = false;
    // How deep inside `BEGIN ATOMIC` bodies (and the `CASE`s within them) the scan is, and the word before.
    let mut atomic_depth = 0usize;
    let mut previous_word = "";
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
            b';' if atomic_depth == 0 => {
                if has_code {
                    statements.push((start, &sql[start..i]));
                }
                i += 1;
                start = i;
                has_code = false;
                previous_word = "";
            }
            b if is_ident_byte(b) && !b.is_ascii_digit() && (i == 0 || !is_ident_byte(bytes[i - 1])) => {
                let end = sql[i..]
                    .find(|c: char| !c.is_alphanumeric() && c != '_' && c != '$')
                    .map_or(bytes.len(), |n| i + n);
                let word = &sql[i..end];
                let opens_body = word.eq_ignore_ascii_case("atomic") && previous_word.eq_ignore_ascii_case("begin");
                if opens_body || (atomic_depth > 0 && word.eq_ignore_ascii_case("case")) {
                    atomic_depth += 1;
                } else if atomic_depth > 0 && word.eq_ignore_ascii_case("end") {
                    atomic_depth -= 1;
                }
                previous_word = word;
                has_code = true;
                i = end;
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

/// The script's last statement ends with a top-level semicolon (what follows it, if anything, is white space and
/// comments): appended SQL starts a statement of its own after a newline.
pub(crate) fn ends_with_semicolon(script: &str) -> bool {
    match split_statements(script).last() {
        Some((offset, statement)) => script.as_bytes().get(offset + statement.len()) == Some(&b';'),
        None => true,
    }
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
pub(crate) fn words(statement: &str) -> Vec<String> {
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

/// The words naming relations in a concurrent index statement (`CREATE [UNIQUE] INDEX CONCURRENTLY ... ON t`,
/// `DROP INDEX CONCURRENTLY a, b`, `REINDEX [(...)] {INDEX | TABLE} CONCURRENTLY x`), as indexes into `spans` (the
/// statement's [`word_spans`]); `None` for any other statement.
fn concurrent_targets(statement: &str, spans: &[(usize, usize)]) -> Option<Vec<usize>> {
    let upper: Vec<String> = spans.iter().map(|&(a, b)| statement[a..b].to_ascii_uppercase()).collect();
    let at = |i: usize, word: &str| upper.get(i).is_some_and(|w| w == word);
    let targets: Vec<usize> = if at(0, "CREATE") && upper.iter().take(4).any(|w| w == "CONCURRENTLY") {
        let on = upper.iter().position(|w| w == "ON");
        on.map(|on| if at(on + 1, "ONLY") { on + 2 } else { on + 1 }).into_iter().collect()
    } else if at(0, "DROP") && at(1, "INDEX") && at(2, "CONCURRENTLY") {
        let first = if at(3, "IF") && at(4, "EXISTS") { 5 } else { 3 };
        (first..spans.len()).filter(|&i| !matches!(upper[i].as_str(), "CASCADE" | "RESTRICT")).collect()
    } else if at(0, "REINDEX") {
        let kind = upper.iter().position(|w| w == "INDEX" || w == "TABLE");
        kind.filter(|&kind| at(kind + 1, "CONCURRENTLY")).map(|kind| kind + 2).into_iter().collect()
    } else {
        return None;
    };
    Some(targets.into_iter().filter(|&i| i < spans.len()).collect())
}

/// A statement that must run outside a transaction (`CREATE INDEX CONCURRENTLY`, `DROP INDEX CONCURRENTLY`,
/// `REINDEX ... CONCURRENTLY`), with each unqualified relation it names qualified with `schema` (already quoted).
/// Outside a transaction `search_path` is a session setting, which a transaction pooler does not carry from one
/// server connection to the next; a qualified name needs none. Other statements are returned as they are.
pub(crate) fn qualify_relations(statement: &str, schema: &str) -> String {
    let mut qualified = statement.to_owned();
    for at in unqualified_relations(statement).into_iter().rev() {
        qualified.insert_str(at, &format!("{schema}."));
    }
    qualified
}

/// Where each unqualified relation named by a concurrent index statement starts, in bytes, in order.
fn unqualified_relations(statement: &str) -> Vec<usize> {
    let spans = word_spans(statement);
    let targets = concurrent_targets(statement, &spans).unwrap_or_default();
    targets
        .into_iter()
        .map(|i| spans[i])
        .filter(|&(a, b)| !has_unquoted_dot(&statement[a..b]))
        .map(|(a, _)| a)
        .collect()
}

/// The statement with the `CONCURRENTLY` of `CREATE [UNIQUE] INDEX`, `DROP INDEX`, `REINDEX [(...)] {INDEX | TABLE
/// | SCHEMA | DATABASE | SYSTEM}` or `ALTER TABLE ... DETACH PARTITION ...` removed, so it can run in a
/// transaction; any other statement unchanged. Matches keywords outside comments, quotes and parentheses only.
pub fn without_concurrently(statement: &str) -> Cow<'_, str> {
    match concurrently_span(statement) {
        Some((start, end)) => Cow::Owned(format!("{}{}", &statement[..start], &statement[end..])),
        None => Cow::Borrowed(statement),
    }
}

/// The bytes [`without_concurrently`] removes: the keyword and the blanks after it on its line.
fn concurrently_span(statement: &str) -> Option<(usize, usize)> {
    let tokens = word_spans(statement);
    let word = |i: usize| tokens.get(i).map(|&(s, e)| &statement[s..e]);
    let is = |i: usize, keyword: &str| word(i).is_some_and(|w| w.eq_ignore_ascii_case(keyword));
    let position = if is(0, "CREATE") {
        let at = if is(1, "UNIQUE") { 2 } else { 1 };
        (is(at, "INDEX") && is(at + 1, "CONCURRENTLY")).then_some(at + 1)
    } else if is(0, "DROP") {
        (is(1, "INDEX") && is(2, "CONCURRENTLY")).then_some(2)
    } else if is(0, "REINDEX") {
        // Options in parentheses come first, as words of their own.
        let object =
            (1..tokens.len()).find(|&i| ["INDEX", "TABLE", "SCHEMA", "DATABASE", "SYSTEM"].iter().any(|k| is(i, k)));
        object.and_then(|at| is(at + 1, "CONCURRENTLY").then_some(at + 1))
    } else if is(0, "ALTER") && is(1, "TABLE") {
        let detach = (2..tokens.len()).find(|&i| is(i, "DETACH") && is(i + 1, "PARTITION"));
        detach.and_then(|d| (d + 2..tokens.len()).find(|&i| is(i, "CONCURRENTLY")))
    } else {
        None
    };
    let (start, end) = tokens[position?];
    let blanks = statement[end..].len() - statement[end..].trim_start_matches([' ', '\t']).len();
    Some((start, end + blanks))
}

/// Whether a no-transaction script can run inside a transaction that also creates its schema: every statement is
/// kept out of transactions only by its `CONCURRENTLY` (an index built, dropped or rebuilt) and names only
/// relations of the schema it runs in (no qualified name). Until that transaction commits nobody else can see the
/// schema, so building concurrently would only wait for other transactions, and the index comes out the same.
pub(crate) fn runs_in_creating_transaction(script: &str) -> bool {
    let statements = split_statements(script);
    !statements.is_empty()
        && statements.iter().all(|&(_, statement)| {
            let spans = word_spans(statement);
            let targets = concurrent_targets(statement, &spans).unwrap_or_default();
            !targets.is_empty()
                && targets.len() == unqualified_relations(statement).len()
                && concurrently_span(statement).is_some()
        })
}

/// A script that [`runs_in_creating_transaction`], as it runs there, and how its positions map back to the file.
pub(crate) struct Rewritten {
    /// Each statement without `CONCURRENTLY`, its relations qualified with the schema as when it runs on its own
    /// (so a name missing from the schema cannot resolve to a shared schema later in `search_path`); comments and
    /// line breaks kept, so every line stays where the file has it.
    pub text: String,
    /// After each change: the character where it ends in `text`, and how many characters `text` has gained over
    /// the file up to there.
    shifts: Vec<(usize, isize)>,
}

impl Rewritten {
    /// The one-based character position in the file of one-based position `position` in [`text`](Self::text).
    pub(crate) fn file_position(&self, position: usize) -> usize {
        let gained = self.shifts.iter().take_while(|&&(end, _)| end < position).last().map_or(0, |&(_, g)| g);
        (position as isize - gained).max(1) as usize
    }
}

/// `script` as it runs in the transaction that creates its schema (`schema` already quoted).
pub(crate) fn in_creating_transaction(script: &str, schema: &str) -> Rewritten {
    let qualifier = format!("{schema}.");
    // (byte in the script, bytes removed, text inserted), in order.
    let mut edits: Vec<(usize, usize, &str)> = Vec::new();
    for (offset, statement) in split_statements(script) {
        if let Some((start, end)) = concurrently_span(statement) {
            edits.push((offset + start, end - start, ""));
        }
        edits.extend(unqualified_relations(statement).into_iter().map(|at| (offset + at, 0, qualifier.as_str())));
    }
    edits.sort_by_key(|&(at, ..)| at);
    let (mut text, mut shifts) = (String::with_capacity(script.len() + 64), Vec::new());
    let (mut copied, mut chars, mut gained) = (0, 0, 0);
    for (at, removed, inserted) in edits {
        text.push_str(&script[copied..at]);
        text.push_str(inserted);
        chars += script[copied..at].chars().count() + inserted.chars().count();
        gained += inserted.chars().count() as isize - script[at..at + removed].chars().count() as isize;
        copied = at + removed;
        shifts.push((chars, gained));
    }
    text.push_str(&script[copied..]);
    Rewritten { text, shifts }
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

    #[test]
    fn a_script_ends_its_own_last_statement_only_with_a_top_level_semicolon() {
        assert!(ends_with_semicolon("CREATE TABLE t (id int);\n"));
        assert!(ends_with_semicolon("CREATE TABLE t (id int); -- done\n/* and this */"));
        assert!(!ends_with_semicolon("CREATE TABLE t (id int)"));
        assert!(!ends_with_semicolon("CREATE TABLE t (id int) -- done;"));
        assert!(!ends_with_semicolon("SELECT 'a;'"));
        assert!(!ends_with_semicolon("DO $$ BEGIN PERFORM 1; END $$"));
        assert!(ends_with_semicolon("DO $$ BEGIN PERFORM 1; END $$;"));
    }

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
    fn sql_standard_function_bodies_stay_whole() {
        let sql = "CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;\n  SELECT 2;\nEND;\nCREATE TABLE begin_atomic (\"end\" int);\nSELECT 3";
        assert_eq!(
            texts(sql),
            [
                "CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;\n  SELECT 2;\nEND",
                "CREATE TABLE begin_atomic (\"end\" int)",
                "SELECT 3",
            ]
        );
        // A transaction's BEGIN is not a body, and words that merely contain the keywords are words.
        assert_eq!(texts("BEGIN; SELECT atomic_end FROM t; COMMIT"), ["BEGIN", "SELECT atomic_end FROM t", "COMMIT"]);
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
    fn concurrently_is_removed_where_it_keeps_a_statement_out_of_transactions() {
        let cases = [
            (
                "-- migrate:no-transaction\n-- why\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON orders (a)",
                "-- migrate:no-transaction\n-- why\nCREATE INDEX IF NOT EXISTS i ON orders (a)",
            ),
            ("create unique index concurrently i on t (a)", "create unique index i on t (a)"),
            ("DROP INDEX CONCURRENTLY IF EXISTS i", "DROP INDEX IF EXISTS i"),
            ("REINDEX (VERBOSE) INDEX CONCURRENTLY i", "REINDEX (VERBOSE) INDEX i"),
            ("REINDEX TABLE CONCURRENTLY t", "REINDEX TABLE t"),
            ("ALTER TABLE p DETACH PARTITION \"p 1\" CONCURRENTLY", "ALTER TABLE p DETACH PARTITION \"p 1\" "),
            (
                "/* CREATE INDEX CONCURRENTLY */ CREATE INDEX CONCURRENTLY i ON t (a)",
                "/* CREATE INDEX CONCURRENTLY */ CREATE INDEX i ON t (a)",
            ),
        ];
        for (statement, expected) in cases {
            assert_eq!(without_concurrently(statement), expected, "{statement}");
        }
    }

    #[test]
    fn other_statements_are_left_alone() {
        for statement in [
            "REFRESH MATERIALIZED VIEW CONCURRENTLY v",
            "SELECT 'CREATE INDEX CONCURRENTLY'",
            "CREATE INDEX \"CONCURRENTLY\" ON t (a)",
            "CREATE DATABASE x",
            "VACUUM t",
            "COMMENT ON INDEX i IS 'built CONCURRENTLY'",
        ] {
            assert!(matches!(without_concurrently(statement), Cow::Borrowed(s) if s == statement), "{statement}");
        }
    }

    #[test]
    fn concurrent_index_scripts_on_the_schemas_own_relations_run_in_the_creating_transaction() {
        let script = "-- no-transaction\n-- why: orders is big\nCREATE INDEX CONCURRENTLY IF NOT EXISTS by_customer\n    ON orders (customer_id);\n\
                      create unique index concurrently u on \"Odd\" (x); -- trailing\n";
        assert!(runs_in_creating_transaction(script));
        assert_eq!(
            in_creating_transaction(script, "\"tenant-1\"").text,
            "-- no-transaction\n-- why: orders is big\nCREATE INDEX IF NOT EXISTS by_customer\n    ON \"tenant-1\".orders (customer_id);\n\
             create unique index u on \"tenant-1\".\"Odd\" (x); -- trailing\n"
        );
        assert!(runs_in_creating_transaction("DROP INDEX CONCURRENTLY IF EXISTS a;\nREINDEX INDEX CONCURRENTLY b"));
        assert_eq!(
            in_creating_transaction("DROP INDEX CONCURRENTLY IF EXISTS a;\nREINDEX INDEX CONCURRENTLY b", "s").text,
            "DROP INDEX IF EXISTS s.a;\nREINDEX INDEX s.b"
        );
    }

    #[test]
    fn positions_in_the_rewritten_script_map_back_to_the_file() {
        let script = "-- é\nCREATE INDEX CONCURRENTLY i ON t (a) WITH nonsense;\nCREATE INDEX CONCURRENTLY j ON u (b)";
        let rewritten = in_creating_transaction(script, "\"tenant-1\"");
        let at = |text: &str, word: &str| text[..text.find(word).unwrap()].chars().count() + 1;
        for word in ["-- é", "CREATE INDEX i", "t (a)", "nonsense", "CREATE INDEX j", "u (b)"] {
            let file_word = word.replace("INDEX ", "INDEX CONCURRENTLY ");
            assert_eq!(rewritten.file_position(at(&rewritten.text, word)), at(script, &file_word), "{word}");
        }
    }

    #[test]
    fn other_no_transaction_scripts_keep_their_own_transactions() {
        for script in [
            // A relation of another schema: a shared table would be locked for the whole creating transaction.
            "CREATE INDEX CONCURRENTLY i ON public.t (x)",
            "DROP INDEX CONCURRENTLY a, shared.b",
            // Statements that refuse a transaction for other reasons, or whose effect needs a commit.
            "VACUUM t",
            "CREATE INDEX CONCURRENTLY i ON t (x);\nVACUUM ANALYZE t",
            "ALTER TYPE mood ADD VALUE 'meh'",
            "REINDEX SCHEMA CONCURRENTLY s",
            "ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY",
            // Not concurrent at all: marked no-transaction for a reason we cannot see.
            "CREATE INDEX i ON t (x)",
            "-- no-transaction\n-- nothing here\n",
        ] {
            assert!(!runs_in_creating_transaction(script), "{script}");
        }
    }

    #[test]
    fn line_and_column_count_characters() {
        let text = "é\nab\ncd";
        assert_eq!(line_and_column(text, 1), (1, 1));
        assert_eq!(line_and_column(text, 4), (2, 2));
        assert_eq!(line_and_column(text, 6), (3, 1));
    }
}

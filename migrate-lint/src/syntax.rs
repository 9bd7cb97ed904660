//! Parse a script with PostgreSQL's parser (libpg_query, through the `pg_query` crate): its statements, or where
//! parsing stopped.

use std::ffi::{c_char, c_int, CStr, CString};

/// Why a script does not parse: the parser's message and the byte offset where it stopped.
pub(crate) struct SyntaxError {
    pub message: String,
    pub byte_offset: usize,
}

/// The script's statements, each with the byte offset its text starts at.
pub(crate) fn parse(sql: &str) -> Result<Vec<(usize, pg_query::NodeEnum)>, SyntaxError> {
    match pg_query::parse(sql) {
        Ok(parsed) => Ok(parsed
            .protobuf
            .stmts
            .into_iter()
            .filter_map(|raw| {
                let node = raw.stmt?.node?;
                Some((usize::try_from(raw.stmt_location).unwrap_or(0), node))
            })
            .collect()),
        Err(error) => {
            let message = match error {
                pg_query::Error::Parse(message) => message,
                other => other.to_string(),
            };
            Err(SyntaxError { byte_offset: error_offset(sql).unwrap_or(0), message })
        }
    }
}

/// libpg_query's own error record (`pg_query.h`), which the `pg_query` crate reads only the message of.
#[repr(C)]
struct PgQueryError {
    message: *mut c_char,
    funcname: *mut c_char,
    filename: *mut c_char,
    lineno: c_int,
    cursorpos: c_int,
    context: *mut c_char,
}

#[repr(C)]
struct PgQueryParseResult {
    parse_tree: *mut c_char,
    stderr_buffer: *mut c_char,
    error: *mut PgQueryError,
}

extern "C" {
    fn pg_query_parse(input: *const c_char) -> PgQueryParseResult;
    fn pg_query_free_parse_result(result: PgQueryParseResult);
}

/// Where the parser stopped, as a byte offset of `sql`: libpg_query's `cursorpos` (one-based, in characters), which
/// the `pg_query` crate drops.
fn error_offset(sql: &str) -> Option<usize> {
    let input = CString::new(sql).ok()?;
    // SAFETY: `input` is a valid NUL-terminated string that outlives the call; the result is read only while it
    // is alive and freed exactly once with libpg_query's own function, as pg_query.h prescribes.
    let cursor = unsafe {
        let result = pg_query_parse(input.as_ptr());
        let cursor = match result.error.as_ref() {
            Some(error) if !error.message.is_null() && CStr::from_ptr(error.message).to_bytes().is_empty() => None,
            Some(error) => Some(error.cursorpos),
            None => None,
        };
        pg_query_free_parse_result(result);
        cursor
    };
    let characters = usize::try_from(cursor?).ok()?.checked_sub(1)?;
    Some(sql.char_indices().nth(characters).map_or(sql.len(), |(byte, _)| byte))
}

//! The words of [`Direction`], so no caller matches on strings: one up/down vocabulary for files, steps, reports
//! and output.

use crate::file_name::Direction;

impl Direction {
    /// `up` or `down`.
    pub fn label(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }

    /// What a step in this direction does: `apply` or `revert`.
    pub fn verb(self) -> &'static str {
        match self {
            Direction::Up => "apply",
            Direction::Down => "revert",
        }
    }

    /// What a step in this direction did: `applied` or `reverted`.
    pub fn past_tense(self) -> &'static str {
        match self {
            Direction::Up => "applied",
            Direction::Down => "reverted",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(
            (Direction::Up.label(), Direction::Up.verb(), Direction::Up.past_tense()),
            ("up", "apply", "applied")
        );
        assert_eq!(
            (Direction::Down.label(), Direction::Down.verb(), Direction::Down.past_tense()),
            ("down", "revert", "reverted")
        );
    }
}

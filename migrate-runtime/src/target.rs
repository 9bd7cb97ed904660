use std::fmt;
use std::str::FromStr;

use migrate_core::Direction;

/// Where to move a schema: parsed from `head`, `base`, a version (`42`), or a relative step (`+2`, `-1`).
///
/// ```
/// use migrate_runtime::Target;
///
/// assert_eq!("head".parse(), Ok(Target::Head));
/// assert_eq!("0042".parse(), Ok(Target::Version(42)));
/// assert_eq!("-1".parse(), Ok(Target::Relative(-1)));
/// assert_eq!("+2".parse(), Ok(Target::Relative(2)));
/// assert!("abc".parse::<Target>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The newest migration of the set.
    Head,
    /// No migration applied.
    Base,
    /// Exactly this version.
    Version(i64),
    /// N steps from the current version: positive up, negative down.
    Relative(i64),
}

/// A target that is not `head`, `base`, a positive version, `+N` or `-N`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid target {text:?}: expected `head`, `base`, a version such as `42`, or a step such as `+1` or `-1`")]
pub struct InvalidTarget {
    /// The text as given.
    pub text: String,
}

/// A target that points the other way from the command: `upgrade base`, `downgrade +1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", match .direction {
    Direction::Up => format!("cannot upgrade to `{}`: use head, a version or +N (downgrade goes down)", .target),
    Direction::Down => format!("cannot downgrade to `{}`: use base, a version or -N (upgrade goes up)", .target),
})]
pub struct WrongDirection {
    /// The target as given.
    pub target: Target,
    /// Which way the command moves: up for upgrade, down for downgrade.
    pub direction: Direction,
}

impl Target {
    /// Whether the target can be reached moving in `direction`: `head` and `+N` only up, `base` and `-N` only
    /// down, a version either way.
    pub fn goes(self, direction: Direction) -> bool {
        match self {
            Target::Version(_) => true,
            Target::Head => direction == Direction::Up,
            Target::Base => direction == Direction::Down,
            Target::Relative(n) => (n > 0) == (direction == Direction::Up),
        }
    }

    /// The target, when it can be reached moving in `direction`. The planner and the CLI both check with this, so
    /// they refuse alike and in the same words.
    ///
    /// ```
    /// use migrate_runtime::{Direction, Target};
    ///
    /// assert_eq!(Target::Head.towards(Direction::Up), Ok(Target::Head));
    /// let refused = Target::Base.towards(Direction::Up).unwrap_err();
    /// assert_eq!(refused.to_string(), "cannot upgrade to `base`: use head, a version or +N (downgrade goes down)");
    /// ```
    pub fn towards(self, direction: Direction) -> Result<Target, WrongDirection> {
        if self.goes(direction) {
            Ok(self)
        } else {
            Err(WrongDirection { target: self, direction })
        }
    }
}

impl FromStr for Target {
    type Err = InvalidTarget;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidTarget { text: text.to_owned() };
        let digits = |s: &str| -> Result<i64, InvalidTarget> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            match s.parse::<i64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(invalid()),
            }
        };
        match text {
            "head" => Ok(Target::Head),
            "base" => Ok(Target::Base),
            _ => {
                if let Some(up) = text.strip_prefix('+') {
                    digits(up).map(Target::Relative)
                } else if let Some(down) = text.strip_prefix('-') {
                    digits(down).map(|n| Target::Relative(-n))
                } else {
                    digits(text).map(Target::Version)
                }
            }
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Head => f.write_str("head"),
            Target::Base => f.write_str("base"),
            Target::Version(v) => write!(f, "{v}"),
            Target::Relative(n) => write!(f, "{n:+}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_round_trips() {
        for text in ["head", "base", "7", "+3", "-2"] {
            assert_eq!(text.parse::<Target>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn directions() {
        for (text, up, down) in
            [("head", true, false), ("+1", true, false), ("base", false, true), ("-1", false, true), ("3", true, true)]
        {
            let target: Target = text.parse().unwrap();
            assert_eq!((target.goes(Direction::Up), target.goes(Direction::Down)), (up, down), "{text}");
        }
    }

    #[test]
    fn rejects_malformed_targets() {
        for text in ["", "+", "-", "0", "-0", "+-1", "1.5", " 1", "HEAD", "9223372036854775808", "--1", "é"] {
            assert_eq!(text.parse::<Target>(), Err(InvalidTarget { text: text.into() }), "{text:?}");
        }
    }
}
